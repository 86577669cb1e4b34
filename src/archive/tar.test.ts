/** The tar reader and header writer, against tar-stream, GNU tar and hand-made blocks. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { END_OF_ARCHIVE, encodeHeader, type HeaderSpec, padding, type TarHeader, TarReader } from "./_tar.ts";
import { tarOf } from "./_testutil.ts";

interface Seen {
  h: TarHeader;
  data: Buffer;
}

function read(tar: Buffer, chunk = 0, limits = {}): Seen[] {
  const out: Seen[] = [];
  let cur: Buffer[] = [];
  const r = new TarReader(
    {
      entry: (h) => {
        cur = [];
        out.push({ h, data: Buffer.alloc(0) });
      },
      data: (c) => {
        cur.push(Buffer.from(c));
      },
      entryEnd: () => {
        out[out.length - 1]!.data = Buffer.concat(cur);
      },
    },
    limits,
  );
  if (!chunk) r.push(tar);
  else for (let i = 0; i < tar.length; i += chunk) r.push(tar.subarray(i, i + chunk));
  r.end();
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), "berth-tar-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("reads tar-stream output, any chunking", async () => {
  const tar = await tarOf([
    { name: "dir/", mode: 0o750, uid: 5, gid: 6 },
    { name: "dir/file", data: "x".repeat(1000), mode: 0o4755, mtime: new Date(1_234_567_000) },
    { name: "dir/link", type: "symlink", linkname: "file" },
    { name: `long/${"n".repeat(150)}/${"m".repeat(120)}`, data: "deep" },
    { name: "pax", data: "p", pax: { "SCHILY.xattr.user.a": "1" } },
  ]);
  for (const chunk of [0, 1, 7, 511, 512, 513, 4096]) {
    const e = read(tar, chunk);
    assert.equal(e.length, 5);
    assert.deepEqual(
      e.map((x) => [x.h.name, x.h.type]),
      [
        ["dir/", "dir"],
        ["dir/file", "file"],
        ["dir/link", "symlink"],
        [`long/${"n".repeat(150)}/${"m".repeat(120)}`, "file"],
        ["pax", "file"],
      ],
    );
    assert.equal(e[0]!.h.mode, 0o750);
    assert.equal(e[0]!.h.uid, 5);
    assert.equal(e[1]!.data.toString(), "x".repeat(1000));
    assert.equal(e[1]!.h.mode, 0o4755);
    assert.equal(e[1]!.h.mtime, 1_234_567);
    assert.equal(e[2]!.h.linkname, "file");
    assert.equal(e[3]!.data.toString(), "deep");
    assert.equal(e[4]!.h.xattrs?.get("user.a")?.toString(), "1");
  }
});

test("reads GNU tar in gnu, posix, ustar and v7 formats", () => {
  const src = join(tmp, "src");
  mkdirSync(join(src, "d", "n".repeat(120)), { recursive: true });
  writeFileSync(join(src, "d", "n".repeat(120), "f".repeat(110)), "long");
  writeFileSync(join(src, "d", "é-ü"), "utf8 name");
  symlinkSync("x".repeat(150), join(src, "d", "longlink"));
  let checked = 0;
  for (const format of ["gnu", "posix", "ustar", "v7"]) {
    const file = join(tmp, `${format}.tar`);
    try {
      execFileSync("tar", [`--format=${format}`, "-cf", file, "-C", src, "."], { stdio: "pipe" });
    } catch {
      continue; // ustar/v7 cannot hold every long name; GNU tar refuses, which is fine
    }
    const e = read(execFileSync("cat", [file]));
    const names = e.map((x) => x.h.name);
    assert.ok(names.includes(`./d/${"n".repeat(120)}/${"f".repeat(110)}`), `${format}: long name`);
    assert.ok(names.includes("./d/é-ü"), `${format}: UTF-8 name`);
    const ll = e.find((x) => x.h.name === "./d/longlink");
    assert.equal(ll?.h.linkname, "x".repeat(150));
    checked++;
  }
  assert.ok(checked >= 2, "GNU and POSIX formats were checked");
});

test("encodeHeader round-trips through the reader and GNU tar", () => {
  const specs: HeaderSpec[] = [
    { name: "a/", type: "dir", mode: 0o2755, uid: 1, gid: 2, size: 0, mtime: 100 },
    { name: "a/f", type: "file", mode: 0o644, uid: 3_000_000, gid: 4_000_000, size: 3, mtime: 2 ** 34 },
    { name: `a/${"x".repeat(300)}`, type: "symlink", mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: "y".repeat(200) },
    {
      name: "a/cap",
      type: "file",
      mode: 0o755,
      uid: 0,
      gid: 0,
      size: 0,
      mtime: 0,
      xattrs: new Map([["security.capability", Buffer.from([1, 0, 0, 2, 0x20, 0, 0, 0, 10, 0xff])]]),
    },
    { name: "a/null", type: "char", mode: 0o666, uid: 0, gid: 0, size: 0, mtime: 0, devmajor: 1, devminor: 3 },
    { name: "a/hard", type: "link", mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: "a/f" },
  ];
  const parts: Buffer[] = [];
  for (const s of specs) {
    parts.push(encodeHeader(s));
    if (s.type === "file" && s.size) parts.push(Buffer.from("abc"), padding(3));
  }
  parts.push(END_OF_ARCHIVE);
  const tar = Buffer.concat(parts);
  const e = read(tar);
  assert.equal(e.length, specs.length);
  assert.equal(e[1]!.h.uid, 3_000_000);
  assert.equal(e[1]!.h.gid, 4_000_000);
  assert.equal(e[1]!.h.mtime, 2 ** 34);
  assert.equal(e[1]!.data.toString(), "abc");
  assert.equal(e[2]!.h.name, `a/${"x".repeat(300)}`);
  assert.equal(e[2]!.h.linkname, "y".repeat(200));
  assert.deepEqual([...e[3]!.h.xattrs!.get("security.capability")!], [1, 0, 0, 2, 0x20, 0, 0, 0, 10, 0xff], "binary xattr kept");
  assert.deepEqual([e[4]!.h.devmajor, e[4]!.h.devminor], [1, 3]);
  assert.equal(e[5]!.h.type, "link");
  const file = join(tmp, "ours.tar");
  writeFileSync(file, tar);
  const listing = execFileSync("tar", ["-tvf", file], { encoding: "utf8" });
  assert.match(listing, /a\/f/);
  assert.match(listing, /xxxxxxxx -> yyyy/);
});

test("base-256 numbers are read", () => {
  const h = encodeHeader({ name: "f", type: "file", mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 });
  // uid field as GNU base-256: 0x80 then big-endian value
  h.fill(0, 108, 116);
  h[108] = 0x80;
  h.writeUInt32BE(5_000_000, 112);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "latin1");
  const e = read(Buffer.concat([h, END_OF_ARCHIVE]));
  assert.equal(e[0]!.h.uid, 5_000_000);
});

test("a data-carrying size on a link header is ignored, like Go's reader", () => {
  const link = encodeHeader({ name: "h", type: "link", mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: "f" });
  const e = read(Buffer.concat([link, END_OF_ARCHIVE]));
  assert.equal(e[0]!.h.size, 0);
});

test("global PAX headers are ignored; sparse entries are refused", () => {
  const g = encodeHeader({
    name: "x",
    type: "file",
    mode: 0,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: 0,
    xattrs: new Map([["k", Buffer.from("v")]]),
  });
  // Turn the extended header's type flag into 'g' and fix its checksum.
  g[156] = "g".charCodeAt(0);
  g.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += g[i]!;
  g.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "latin1");
  const e = read(Buffer.concat([g, END_OF_ARCHIVE]));
  assert.equal(e.length, 1);
  assert.equal(e[0]!.h.xattrs, undefined);
  const s = encodeHeader({ name: "s", type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: 0 });
  s[156] = "S".charCodeAt(0);
  s.fill(0x20, 148, 156);
  sum = 0;
  for (let i = 0; i < 512; i++) sum += s[i]!;
  s.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "latin1");
  assert.throws(() => read(Buffer.concat([s, END_OF_ARCHIVE])), /Sparse/);
});

test("malformed PAX records are refused", () => {
  const body = Buffer.from("99 path=x\n");
  const hdr = encodeHeader({ name: "p", type: "file", mode: 0, uid: 0, gid: 0, size: body.length, mtime: 0 });
  hdr[156] = "x".charCodeAt(0);
  hdr.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += hdr[i]!;
  hdr.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "latin1");
  const f = encodeHeader({ name: "f", type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: 0 });
  assert.throws(() => read(Buffer.concat([hdr, body, padding(body.length), f, END_OF_ARCHIVE])), /Invalid PAX record/);
});

test("a PAX header with no entry after it is refused", () => {
  const x = encodeHeader({ name: "x".repeat(300), type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: 0 });
  const paxOnly = x.subarray(0, x.length - 512);
  assert.throws(() => read(Buffer.concat([paxOnly, END_OF_ARCHIVE])), /extension header without entry/);
});
