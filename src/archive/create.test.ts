/** tarDirectory / diffDirectories / compressLayer: round trips through applyLayer and GNU tar. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, test } from "node:test";
import { gunzipSync, zstdDecompressSync } from "node:zlib";
import { RealHost, sha256 } from "../base/mod.ts";
import { applyLayer } from "./apply.ts";
import { compressLayer, digestLayer } from "./compress.ts";
import { diffDirectories, tarDirectory } from "./create.ts";
import { TarReader, type TarHeader } from "./_tar.ts";
import { IS_ROOT, Sandbox } from "./_testutil.ts";

const host = new RealHost();
let sb: Sandbox;
before(() => {
  sb = new Sandbox();
});
after(() => sb.cleanup());

async function collect(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function headers(tar: Buffer): TarHeader[] {
  const out: TarHeader[] = [];
  const r = new TarReader({ entry: (h) => out.push(h), data: () => {}, entryEnd: () => {} });
  r.push(tar);
  r.end();
  return out;
}

/** Everything `applyLayer` must preserve, per path. */
function describeTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (rel: string) => {
    const p = rel ? join(dir, rel) : dir;
    for (const n of readdirSync(p).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(dir, r));
      let d = `${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} nlink=${st.nlink}`;
      d += ` mtime=${Math.floor(st.mtimeMs / 1000)}`;
      if (st.isSymbolicLink()) d += ` -> ${readlinkSync(join(dir, r))}`;
      else if (st.isFile()) d += ` ${sha256(readFileSync(join(dir, r)))}`;
      else if (st.isCharacterDevice() || st.isBlockDevice()) d += ` rdev=${st.rdev}`;
      out[r] = d;
      if (st.isDirectory()) visit(r);
    }
  };
  visit("");
  return out;
}

function buildTree(dir: string): void {
  mkdirSync(join(dir, "etc/ssl"), { recursive: true });
  mkdirSync(join(dir, "bin"));
  mkdirSync(join(dir, "tmp"));
  writeFileSync(join(dir, "etc/hosts"), "127.0.0.1 localhost\n");
  writeFileSync(join(dir, "etc/ssl/big"), Buffer.alloc(3 * 1024 * 1024 + 17, 7));
  writeFileSync(join(dir, "bin/busybox"), "BB");
  chmodSync(join(dir, "bin/busybox"), 0o4755);
  linkSync(join(dir, "bin/busybox"), join(dir, "bin/sh"));
  linkSync(join(dir, "bin/busybox"), join(dir, "bin/ls"));
  symlinkSync("/etc/hosts", join(dir, "hosts-link"));
  symlinkSync("busybox", join(dir, "bin/rel"));
  writeFileSync(join(dir, `${"n".repeat(200)}`), "long name");
  writeFileSync(join(dir, "é ü"), "utf8");
  chmodSync(join(dir, "tmp"), 0o1777);
  if (IS_ROOT) {
    execFileSync("mknod", [join(dir, "null"), "c", "1", "3"]);
    execFileSync("mkfifo", [join(dir, "fifo")]);
    execFileSync("chown", ["1000:1001", join(dir, "etc/hosts")]);
    execFileSync("chown", ["-h", "7:8", join(dir, "bin/rel")]);
    execFileSync("setfattr", ["-n", "security.capability", "-v", "0x0100000200200000000000000000000000000000", join(dir, "bin/busybox")]);
    execFileSync("setfattr", ["-n", "user.note", "-v", "hello", join(dir, "etc")]);
  }
  for (const p of ["etc/hosts", "etc/ssl/big", "bin/busybox", "etc/ssl", "etc", "bin", "tmp"])
    utimesSync(join(dir, p), 1_000_000, 1_500_000_000);
  lutimesSync(join(dir, "hosts-link"), 1_000_000, 1_400_000_000);
}

test("tarDirectory → applyLayer reproduces the tree", async () => {
  const src = sb.root();
  buildTree(src);
  const tar = await collect(tarDirectory(src, { host }));
  const dst = sb.root();
  const r = await applyLayer(Readable.from([tar]), dst, { host });
  assert.equal(r.diffId, sha256(tar));
  assert.deepEqual(describeTree(dst), describeTree(src));
  if (IS_ROOT) {
    const x = await host.run("getfattr", ["-d", "-m", "-", "-e", "hex", join(dst, "bin/busybox"), join(dst, "etc")]);
    assert.match(x.stdout, /security.capability=0x0100000200200000000000000000000000000000/);
    assert.match(x.stdout, /user.note=0x68656c6c6f/);
  }
});

test("tarDirectory is deterministic, sorted, and readable by GNU tar", async () => {
  const src = sb.root();
  buildTree(src);
  const a = await collect(tarDirectory(src, { host }));
  const b = await collect(tarDirectory(src, { host }));
  assert.equal(sha256(a), sha256(b));
  const names = headers(a).map((h) => h.name);
  assert.deepEqual(names.slice(0, 6), ["bin/", "bin/busybox", "bin/ls", "bin/rel", "bin/sh", "etc/"]);
  const hs = headers(a);
  assert.equal(hs.find((h) => h.name === "bin/ls")?.type, "link");
  assert.equal(hs.find((h) => h.name === "bin/ls")?.linkname, "bin/busybox");
  const file = join(sb.base, "ours.tar");
  writeFileSync(file, a);
  const listing = execFileSync("tar", ["-tf", file], { encoding: "utf8" });
  assert.ok(listing.includes(`${"n".repeat(200)}\n`));
});

test("sourceDateEpoch clamps mtimes", async () => {
  const src = sb.root();
  writeFileSync(join(src, "new"), "x");
  writeFileSync(join(src, "old"), "x");
  utimesSync(join(src, "old"), 100, 100);
  const hs = headers(await collect(tarDirectory(src, { sourceDateEpoch: 1000 })));
  assert.deepEqual(
    hs.map((h) => [h.name, h.mtime]),
    [
      ["new", 1000],
      ["old", 100],
    ],
  );
});

test("diffDirectories turns overlay whiteouts and opaque dirs into tar markers", { skip: !IS_ROOT && "needs root" }, async () => {
  const upper = sb.root();
  mkdirSync(join(upper, "etc"));
  execFileSync("mknod", [join(upper, "etc/motd"), "c", "0", "0"]);
  mkdirSync(join(upper, "var/cache"), { recursive: true });
  execFileSync("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", join(upper, "var/cache")]);
  execFileSync("setfattr", ["-n", "trusted.overlay.origin", "-v", "0x00", join(upper, "var")]);
  writeFileSync(join(upper, "var/cache/new"), "n");
  const tar = await collect(diffDirectories(upper, { host }));
  const hs = headers(tar);
  assert.deepEqual(
    hs.map((h) => h.name),
    ["etc/", "etc/.wh.motd", "var/", "var/cache/", "var/cache/.wh..wh..opq", "var/cache/new"],
  );
  assert.ok(hs.every((h) => !h.xattrs || [...h.xattrs.keys()].every((k) => !k.startsWith("trusted.overlay."))));
  // And back: applying the diff over a lower recreates the overlay format.
  const lower = sb.root();
  mkdirSync(join(lower, "etc"));
  writeFileSync(join(lower, "etc/motd"), "m");
  mkdirSync(join(lower, "var/cache"), { recursive: true });
  writeFileSync(join(lower, "var/cache/old"), "o");
  const again = sb.root();
  await applyLayer(Readable.from([tar]), again, { host, lowers: [lower] });
  assert.equal(lstatSync(join(again, "etc/motd")).rdev, 0);
  assert.ok(lstatSync(join(again, "etc/motd")).isCharacterDevice());
  const r = await host.run("getfattr", ["-h", "-n", "trusted.overlay.opaque", "--only-values", join(again, "var/cache")]);
  assert.equal(r.stdout, "y");
});

test("compressLayer gives the blob digest and the diff ID in one pass", async () => {
  const src = sb.root();
  writeFileSync(join(src, "f"), Buffer.alloc(200_000, 3));
  const tar = await collect(tarDirectory(src));
  for (const format of ["gzip", "zstd"] as const) {
    const c = compressLayer(Readable.from([tar]), { format });
    const blob = await collect(c.stream);
    const info = await c.info;
    assert.equal(info.digest, sha256(blob));
    assert.equal(info.size, blob.length);
    assert.equal(info.diffId, sha256(tar));
    assert.equal(info.diffSize, tar.length);
    const back = format === "gzip" ? gunzipSync(blob) : zstdDecompressSync(blob);
    assert.equal(sha256(back), sha256(tar));
    const d = await digestLayer(Readable.from([blob]));
    assert.equal(d.diffId, sha256(tar));
  }
});
