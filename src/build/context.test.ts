import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { RealHost } from "../base/mod.ts";
import { receiveContext } from "./context.ts";
import { copyInto, hashMatch, resolveSources, type SourceTree } from "./fsops.ts";
import { PatternMatcher } from "./ignore.ts";

const host = new RealHost();
let src = "";
let work = "";
let outside = "";

before(() => {
  src = mkdtempSync(join(tmpdir(), "berth-ctx-src-"));
  work = mkdtempSync(join(tmpdir(), "berth-ctx-work-"));
  outside = mkdtempSync(join(tmpdir(), "berth-ctx-out-"));
  writeFileSync(join(outside, "secret"), "do not read\n");
  mkdirSync(join(src, "src/sub"), { recursive: true });
  writeFileSync(join(src, "src/a.txt"), "a\n");
  writeFileSync(join(src, "src/b.txt"), "b\n");
  writeFileSync(join(src, "src/run.sh"), "#!/bin/sh\n");
  chmodSync(join(src, "src/run.sh"), 0o755);
  writeFileSync(join(src, "src/sub/c.md"), "c\n");
  writeFileSync(join(src, "big.bin"), Buffer.alloc(300_000, 7));
  writeFileSync(join(src, "ignored.key"), "k\n");
  writeFileSync(join(src, "Dockerfile"), "FROM scratch\n");
  symlinkSync("src/sub/c.md", join(src, "df-link"));
  symlinkSync(outside, join(src, "out-abs"));
  symlinkSync("../../../../../../..", join(src, "up"));
  symlinkSync("src", join(src, "src-link"));
  linkSync(join(src, "src/a.txt"), join(src, "hard.txt"));
});
after(() => {
  for (const d of [src, work, outside]) rmSync(d, { recursive: true, force: true });
});

function tarOf(dir: string, ...extra: string[]): Buffer {
  const r = spawnSync("tar", ["-C", dir, "-cf", "-", ...extra, "."], { maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, String(r.stderr));
  return r.stdout;
}

/** The tar in uneven chunks, as a socket delivers it. */
async function* chunks(b: Buffer, size = 7001): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

function fresh(name: string): string {
  const d = join(work, name);
  mkdirSync(d, { mode: 0o700 });
  return d;
}

async function digestOf(tree: SourceTree, pattern: string): Promise<string> {
  const h = createHash("sha256");
  for (const m of await resolveSources(tree, pattern)) await hashMatch(tree, m, h);
  return h.digest("hex");
}

test("the index resolves, hashes and reads exactly as the unpacked context does, and nothing is written", async () => {
  const dir = fresh("same");
  const ctx = await receiveContext(chunks(tarOf(src)), dir, { host });
  assert.ok(ctx.index, "indexed");
  assert.equal(ctx.onDisk, false);
  assert.equal(existsSync(join(dir, "src")), false, "nothing unpacked");
  const ignore = new PatternMatcher(["*.key"]);
  const mem: SourceTree = { root: dir, ignore, keepOwners: false, fs: ctx.index };
  const disk: SourceTree = { root: dir, ignore, keepOwners: false };
  const patterns = [
    "src/a.txt",
    "/src/a.txt",
    "src/*.txt",
    "src-link/a.txt",
    "*/sub/*.md",
    "up/src/a.txt",
    ".",
    "src",
    "hard.txt",
    "df-link",
  ];
  const before: Record<string, [string[], string]> = {};
  for (const p of patterns) before[p] = [(await resolveSources(mem, p)).map((m) => m.rel), await digestOf(mem, p)];
  await assert.rejects(resolveSources(mem, "../x"), /outside the build context/);
  await assert.rejects(resolveSources(mem, "out-abs/secret"), /not found/);
  await assert.rejects(resolveSources(mem, "ignored.key"), /not found/);
  assert.equal(await ctx.index.readFile("Dockerfile", 1024), "FROM scratch\n");
  assert.equal(await ctx.index.readFile("df-link", 1024), "c\n");
  assert.equal(await ctx.index.readFile("nope", 1024), undefined);
  await assert.rejects(ctx.index.readFile("big.bin", 1024), /larger than 1024 bytes/);
  // The same answers from the files on disk (modes, sizes, contents, link targets).
  await ctx.materialize();
  assert.equal(readFileSync(join(dir, "src/a.txt"), "utf8"), "a\n");
  for (const p of patterns) {
    assert.deepEqual(
      (await resolveSources(disk, p)).map((m) => m.rel),
      before[p]?.[0],
      p,
    );
    assert.equal(await digestOf(disk, p), before[p]?.[1], p);
  }
});

test("COPY from the index writes the same files, modes and times as from disk", async () => {
  const dir = fresh("copy");
  const ctx = await receiveContext(chunks(tarOf(src)), dir, { host });
  assert.ok(ctx.index);
  const mem: SourceTree = { root: dir, keepOwners: false, fs: ctx.index };
  const a = fresh("dest-mem");
  await copyInto(a, mem, await resolveSources(mem, "src"), "/app", { destIsDir: true });
  await copyInto(a, mem, await resolveSources(mem, "big.bin"), "/app/", { destIsDir: true });
  assert.equal(readFileSync(join(a, "app/sub/c.md"), "utf8"), "c\n");
  assert.equal(statSync(join(a, "app/run.sh")).mode & 0o7777, 0o755);
  assert.deepEqual(readFileSync(join(a, "app/big.bin")), Buffer.alloc(300_000, 7));
  assert.equal(statSync(join(a, "app/run.sh")).uid, 0);
  // What copying from the unpacked context gives: names, types, modes, sizes, times, contents.
  await ctx.materialize();
  const disk: SourceTree = { root: dir, keepOwners: false };
  const b = fresh("dest-disk");
  await copyInto(b, disk, await resolveSources(disk, "src"), "/app", { destIsDir: true });
  await copyInto(b, disk, await resolveSources(disk, "big.bin"), "/app/", { destIsDir: true });
  const list = (d: string) =>
    spawnSync("sh", ["-c", `cd ${d} && find . -mindepth 2 -printf '%p %y %m %s %T@ %l\\n' | sort`], { encoding: "utf8" }).stdout;
  assert.equal(list(a), list(b));
  const sum = (d: string) => spawnSync("sh", ["-c", `cd ${d} && find . -type f | sort | xargs sha256sum`], { encoding: "utf8" }).stdout;
  assert.equal(sum(a), sum(b));
});

test("what the index does not serve is unpacked to disk instead: devices, whiteout names, large contexts", async () => {
  const odd = mkdtempSync(join(work, "odd-src-"));
  writeFileSync(join(odd, "Dockerfile"), "FROM scratch\n");
  assert.equal(spawnSync("mkfifo", [join(odd, "pipe")]).status, 0);
  const a = fresh("fifo");
  const c1 = await receiveContext(chunks(tarOf(odd)), a, { host });
  assert.equal(c1.index, undefined);
  assert.equal(c1.onDisk, true);
  assert.equal(readFileSync(join(a, "Dockerfile"), "utf8"), "FROM scratch\n");
  const wh = mkdtempSync(join(work, "wh-src-"));
  writeFileSync(join(wh, ".wh.x"), "");
  const c3 = await receiveContext(chunks(tarOf(wh)), fresh("wh"), { host });
  assert.equal(c3.index, undefined);
  const b = fresh("large");
  const c2 = await receiveContext(chunks(tarOf(src)), b, { host, maxMemory: 100_000 });
  assert.equal(c2.index, undefined);
  assert.deepEqual(readFileSync(join(b, "big.bin")), Buffer.alloc(300_000, 7));
  // An escaping name is refused as applyLayer refuses it.
  await assert.rejects(receiveContext(chunks(escapingTar()), fresh("esc"), { host }), /Cannot read the build context/);
  assert.equal(existsSync(join(work, "evil")), false);
});

/** A tar with one file named `../evil`. */
function escapingTar(): Buffer {
  const h = Buffer.alloc(512);
  h.write("../evil", 0);
  h.write("0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write("00000000002\0", 124);
  h.write("00000000000\0", 136);
  h.write("        ", 148);
  h.write("0", 156);
  h.write("ustar\0" + "00", 257);
  let sum = 0;
  for (const x of h) sum += x;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const data = Buffer.alloc(512);
  data.write("x\n");
  return Buffer.concat([h, data, Buffer.alloc(1024)]);
}
