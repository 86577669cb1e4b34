/**
 * applyLayer against hostile layers (SECURITY.md "Layers", items 1-10) and ordinary ones.
 * Each hostile case checks: a clear error naming the layer and entry (or a contained effect),
 * the sentinel directory outside the root unchanged, and the target removed on failure.
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { type Digest, RealHost, sha256 } from "../base/mod.ts";
import { applyLayer } from "./apply.ts";
import { encodeHeader, END_OF_ARCHIVE } from "./_tar.ts";
import { fileHash, IS_ROOT, Sandbox, streamOf, type TestEntry, tarOf } from "./_testutil.ts";

const host = new RealHost();
const needsRoot = IS_ROOT ? false : "needs root (mknod, chown, trusted.* xattrs)";
let sb: Sandbox;
let passwdHash: string;

before(() => {
  sb = new Sandbox();
  passwdHash = fileHash("/etc/passwd");
});
after(() => sb.cleanup());

async function apply(
  tar: Buffer,
  root: string,
  options: { lowers?: string[]; maxSize?: number; maxEntries?: number; chunk?: number } = {},
) {
  const { chunk, ...rest } = options;
  return await applyLayer(streamOf(tar, chunk ?? 0), root, { host, layerName: "sha256:test", ...rest });
}

/** Applies a layer that must fail: checks the message, the sentinel, and that the target is gone. */
async function rejects(
  entries: TestEntry[] | Buffer,
  pattern: RegExp,
  options: { lowers?: string[]; maxSize?: number; maxEntries?: number } = {},
) {
  const tar = Buffer.isBuffer(entries) ? entries : await tarOf(entries);
  const before = sb.sentinel();
  const root = sb.root();
  await assert.rejects(apply(tar, root, options), (e: Error) => {
    assert.match(e.message, /^Cannot unpack layer "sha256:test"/);
    assert.match(e.message, pattern);
    return true;
  });
  assert.equal(existsSync(root), false, "target removed after failure");
  assert.equal(sb.sentinel(), before, "sentinel unchanged");
  assert.equal(fileHash("/etc/passwd"), passwdHash);
}

/** Applies a layer that must succeed and leave the sentinel alone; returns the root. */
async function contained(entries: TestEntry[], options: { lowers?: string[] } = {}): Promise<string> {
  const before = sb.sentinel();
  const root = sb.root();
  await apply(await tarOf(entries), root, options);
  assert.equal(sb.sentinel(), before, "sentinel unchanged");
  assert.equal(fileHash("/etc/passwd"), passwdHash);
  return root;
}

describe("basic apply", () => {
  test("files, dirs, symlinks, hard links and the diff ID", async () => {
    const tar = await tarOf([
      { name: "etc/", mode: 0o755 },
      { name: "etc/hosts", data: "127.0.0.1 localhost\n", mode: 0o644, mtime: new Date(1_500_000_000_000) },
      { name: "bin/", mode: 0o755 },
      { name: "bin/tool", data: "#!/bin/sh\n", mode: 0o4755 },
      { name: "bin/alias", type: "symlink", linkname: "tool" },
      { name: "bin/hard", type: "link", linkname: "bin/tool" },
      { name: "ro/", mode: 0o555, mtime: new Date(1_400_000_000_000) },
      { name: "ro/inside", data: "x" },
    ]);
    const root = sb.root();
    const r = await apply(tar, root, { chunk: 700 });
    assert.equal(r.diffId, sha256(tar));
    assert.equal(r.size, tar.length);
    assert.equal(r.compression, "none");
    assert.equal(r.entries, 8);
    assert.equal(readFileSync(join(root, "etc/hosts"), "utf8"), "127.0.0.1 localhost\n");
    assert.equal(lstatSync(join(root, "etc/hosts")).mtimeMs, 1_500_000_000_000);
    assert.equal(lstatSync(join(root, "bin/tool")).mode & 0o7777, 0o4755);
    assert.equal(readlinkSync(join(root, "bin/alias")), "tool");
    assert.equal(lstatSync(join(root, "bin/hard")).ino, lstatSync(join(root, "bin/tool")).ino);
    const ro = lstatSync(join(root, "ro"));
    assert.equal(ro.mode & 0o7777, 0o555);
    assert.equal(ro.mtimeMs, 1_400_000_000_000, "directory mtime set after its contents");
  });

  test("gzip and zstd blobs give the diff ID of the tar", async () => {
    const tar = await tarOf([{ name: "a", data: "hello" }]);
    for (const [blob, kind] of [
      [gzipSync(tar), "gzip"],
      [zstdCompressSync(tar), "zstd"],
    ] as const) {
      const root = sb.root();
      const r = await apply(blob, root, { chunk: 7 });
      assert.equal(r.compression, kind);
      assert.equal(r.diffId, sha256(tar));
      assert.equal(readFileSync(join(root, "a"), "utf8"), "hello");
    }
  });

  test("owners are applied and setuid survives chown", { skip: needsRoot }, async () => {
    const root = await contained([
      { name: "home/", uid: 1000, gid: 1000, mode: 0o2750 },
      { name: "home/f", data: "x", uid: 1000, gid: 100, mode: 0o6755 },
      { name: "home/l", type: "symlink", linkname: "f", uid: 1001, gid: 1001 },
    ]);
    const d = lstatSync(join(root, "home"));
    assert.deepEqual([d.uid, d.gid, d.mode & 0o7777], [1000, 1000, 0o2750]);
    const f = lstatSync(join(root, "home/f"));
    assert.deepEqual([f.uid, f.gid, f.mode & 0o7777], [1000, 100, 0o6755]);
    const l = lstatSync(join(root, "home/l"));
    assert.deepEqual([l.uid, l.gid], [1001, 1001]);
  });

  test("modes the umask would strip, and special bits, are exact without a chown", async () => {
    const old = process.umask(0o027);
    let root: string;
    try {
      root = await contained([
        { name: "d/", mode: 0o777 },
        { name: "ro/", mode: 0o555 },
        { name: "ro/f", data: "x", mode: 0o444 },
        { name: "tmp/", mode: 0o1777 },
        { name: "g/", mode: 0o2775 },
        { name: "d/f", data: "x", mode: 0o666 },
        { name: "d/s", data: "x", mode: 0o4755 },
        { name: "d/e", data: "", mode: 0o604 },
        { name: "d/t", data: "", mode: 0o1644 },
      ]);
    } finally {
      process.umask(old);
    }
    const mode = (p: string) => lstatSync(join(root, p)).mode & 0o7777;
    assert.deepEqual(
      ["d", "ro", "ro/f", "tmp", "g", "d/f", "d/s", "d/e", "d/t"].map(mode),
      [0o777, 0o555, 0o444, 0o1777, 0o2775, 0o666, 0o4755, 0o604, 0o1644],
    );
    assert.equal(readFileSync(join(root, "ro/f"), "utf8"), "x");
  });

  test("under a setgid target, entries still get the group of the tar", { skip: needsRoot }, async () => {
    const root = sb.root();
    chownSync(root, 0, 4242);
    chmodSync(root, 0o2755);
    await apply(
      await tarOf([
        { name: "d/", mode: 0o755 },
        { name: "d/f", data: "x", mode: 0o644 },
        { name: "l", type: "symlink", linkname: "d" },
      ]),
      root,
    );
    for (const p of ["d", "d/f", "l"]) {
      const st = lstatSync(join(root, p));
      assert.deepEqual([p, st.uid, st.gid], [p, 0, 0]);
    }
    assert.equal(lstatSync(join(root, "d")).mode & 0o7777, 0o755, "no setgid inherited by a directory of the layer");
  });

  test("a later entry replaces an earlier one", async () => {
    const root = await contained([
      { name: "a", data: "one" },
      { name: "a", data: "two" },
      { name: "d/", mode: 0o700 },
      { name: "d/x", data: "x" },
      { name: "d/", mode: 0o755 },
    ]);
    assert.equal(readFileSync(join(root, "a"), "utf8"), "two");
    assert.equal(lstatSync(join(root, "d")).mode & 0o777, 0o755);
    assert.equal(readFileSync(join(root, "d/x"), "utf8"), "x", "a directory entry over a directory merges");
  });

  test("the target must be empty", async () => {
    const root = sb.root();
    writeFileSync(join(root, "keep"), "x");
    await assert.rejects(apply(await tarOf([{ name: "a" }]), root), /is not empty/);
    assert.equal(readFileSync(join(root, "keep"), "utf8"), "x");
  });

  test("an expected diff ID that does not match fails and removes the target", async () => {
    const root = sb.root();
    const tar = await tarOf([{ name: "a", data: "x" }]);
    await assert.rejects(
      applyLayer(streamOf(tar), root, { host, layerName: "l", diffId: `sha256:${"0".repeat(64)}` as Digest }),
      /hashes to "sha256:[0-9a-f]{64}", but "sha256:0+" was expected/,
    );
    assert.equal(existsSync(root), false);
  });

  test("an empty stream is an empty layer", async () => {
    const r = await apply(Buffer.alloc(0), sb.root());
    assert.equal(r.entries, 0);
    assert.equal(r.diffId, sha256(""));
  });

  test("cancellation removes the target", async () => {
    const root = sb.root();
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(applyLayer(streamOf(await tarOf([{ name: "a" }])), root, { host, signal: ac.signal }), /canceled/);
    assert.equal(existsSync(root), false);
  });
});

describe("1. names that climb out, absolute names", () => {
  test("../ escapes are refused", async () => {
    await rejects([{ name: "../outside/pwned", data: "x" }], /entry "\.\.\/outside\/pwned": path escapes the root/);
    await rejects([{ name: "a/../../outside/pwned", data: "x" }], /path escapes the root/);
    await rejects([{ name: "./../../../../../../../../tmp/pwned", data: "x" }], /path escapes the root/);
    await rejects([{ name: "ok", data: "x" }, { name: "../outside/dir/" }], /entry "\.\.\/outside\/dir\/": path escapes the root/);
  });

  test("absolute names land inside the root", async () => {
    const root = await contained([
      { name: "/etc/passwd", data: "root:x:0:0::/root:/bin/sh\n" },
      { name: `${sb.outside}/pwned`, data: "x" },
    ]);
    assert.equal(readFileSync(join(root, "etc/passwd"), "utf8"), "root:x:0:0::/root:/bin/sh\n");
    assert.equal(readFileSync(join(root, sb.outside, "pwned"), "utf8"), "x");
  });

  test("inner .. that stays inside is cleaned lexically", async () => {
    const root = await contained([{ name: "a/b/../c", data: "x" }]);
    assert.equal(readFileSync(join(root, "a/c"), "utf8"), "x");
  });
});

describe("2. hard links", () => {
  test("to ../outside and /../outside are refused", async () => {
    await rejects(
      [{ name: "h", type: "link", linkname: "../outside/secret" }],
      /entry "h": hard link target "\.\.\/outside\/secret" escapes the root/,
    );
    await rejects([{ name: "h", type: "link", linkname: "/../outside/secret" }], /escapes the root/);
  });

  test("an absolute hard link target is inside the root", async () => {
    await rejects([{ name: "h", type: "link", linkname: `${sb.outside}/secret` }], /hard link target .* does not exist/);
    const root = await contained([
      { name: "etc/shadow", data: "s" },
      { name: "h", type: "link", linkname: "/etc/shadow" },
    ]);
    assert.equal(lstatSync(join(root, "h")).ino, lstatSync(join(root, "etc/shadow")).ino);
  });

  test("to a directory (inside or outside), then writes under it", async () => {
    await rejects(
      [
        { name: "d", type: "link", linkname: "../outside/dir" },
        { name: "d/pwned", data: "x" },
      ],
      /escapes the root/,
    );
    await rejects(
      [{ name: "etc/" }, { name: "d", type: "link", linkname: "etc" }, { name: "d/pwned", data: "x" }],
      /entry "d": hard link to a directory/,
    );
  });

  test("through a symlink to outside resolves inside the root", async () => {
    await rejects(
      [
        { name: "s", type: "symlink", linkname: sb.outside },
        { name: "h", type: "link", linkname: "s/secret" },
      ],
      /hard link target "s\/secret" does not exist/,
    );
  });
});

describe("3. writes through a symlink to outside", () => {
  test("in the same layer the write lands inside the root", async () => {
    const root = await contained([
      { name: "x", type: "symlink", linkname: join(sb.outside, ".ssh") },
      { name: "x/authorized_keys", data: "ssh-ed25519 EVIL\n" },
    ]);
    assert.equal(readFileSync(join(root, sb.outside, ".ssh/authorized_keys"), "utf8"), "ssh-ed25519 EVIL\n");
    assert.equal(readlinkSync(join(root, "x")), join(sb.outside, ".ssh"));
  });

  test("a relative symlink climbing out is clamped at the root", async () => {
    const root = await contained([
      { name: "a/b/", mode: 0o755 },
      { name: "a/b/up", type: "symlink", linkname: "../../../../../../outside" },
      { name: "a/b/up/secret", data: "EVIL" },
    ]);
    assert.equal(readFileSync(join(root, "outside/secret"), "utf8"), "EVIL");
  });

  test("across layers (layer 1 x -> ~/.ssh, layer 2 x/authorized_keys)", async () => {
    const lower = await contained([{ name: "x", type: "symlink", linkname: join(sb.outside, ".ssh") }]);
    const root = await contained([{ name: "x/authorized_keys", data: "ssh-ed25519 EVIL\n" }], { lowers: [lower] });
    assert.equal(readFileSync(join(root, sb.outside, ".ssh/authorized_keys"), "utf8"), "ssh-ed25519 EVIL\n");
    assert.equal(existsSync(join(root, "x")), false, "the lower symlink is followed, not copied");
  });

  test("a symlink in a lower layer is never followed when looking into lowers", async () => {
    // Layer 1: d -> outside dir. Layer 2 hides it with a real directory d and links to d/secret:
    // the lookup of d/secret in the lowers must not read through layer 1's symlink.
    const lower = await contained([{ name: "d", type: "symlink", linkname: sb.outside }]);
    await rejects([{ name: "d/" }, { name: "h", type: "link", linkname: "d/secret" }], /hard link target "d\/secret" does not exist/, {
      lowers: [lower],
    });
  });
});

describe("4. absolute symlinks resolve inside the root", () => {
  test("etc2 -> /etc then etc2/passwd", async () => {
    const root = await contained([
      { name: "etc/" },
      { name: "etc2", type: "symlink", linkname: "/etc" },
      { name: "etc2/passwd", data: "mine\n" },
    ]);
    assert.equal(readFileSync(join(root, "etc/passwd"), "utf8"), "mine\n");
  });

  test("the same with /etc only in a lower layer copies its metadata up", { skip: needsRoot }, async () => {
    const lower = await contained([{ name: "etc/", mode: 0o751, uid: 7, gid: 8, mtime: new Date(1_000_000_000_000) }]);
    const root = await contained(
      [
        { name: "etc2", type: "symlink", linkname: "/etc" },
        { name: "etc2/passwd", data: "mine\n" },
      ],
      {
        lowers: [lower],
      },
    );
    const st = lstatSync(join(root, "etc"));
    assert.deepEqual([st.mode & 0o7777, st.uid, st.gid, st.mtimeMs], [0o751, 7, 8, 1_000_000_000_000]);
    assert.equal(readFileSync(join(root, "etc/passwd"), "utf8"), "mine\n");
  });
});

describe("5. chains, long .. runs, links to symlinks, chmod through symlinks", () => {
  test("symlink chains are followed inside the root", async () => {
    const root = await contained([
      { name: "a", type: "symlink", linkname: "b" },
      { name: "b", type: "symlink", linkname: "/c/../d" },
      { name: "d", type: "symlink", linkname: sb.outside },
      { name: "a/pwned", data: "x" },
    ]);
    assert.equal(readFileSync(join(root, sb.outside, "pwned"), "utf8"), "x");
  });

  test("a long ../../.. run stops at the root", async () => {
    const up = "../".repeat(500);
    const root = await contained([
      { name: "deep/er/", mode: 0o755 },
      { name: "deep/er/u", type: "symlink", linkname: `${up}tmp` },
      { name: "deep/er/u/x", data: "x" },
    ]);
    assert.equal(readFileSync(join(root, "tmp/x"), "utf8"), "x");
  });

  test("a symlink loop is an error", async () => {
    await rejects(
      [
        { name: "l1", type: "symlink", linkname: "l2" },
        { name: "l2", type: "symlink", linkname: "l1" },
        { name: "l1/x", data: "x" },
      ],
      /entry "l1\/x": too many levels of symbolic links/,
    );
  });

  test("a hard link to a symlink links the symlink, not its target", async () => {
    const root = await contained([
      { name: "s", type: "symlink", linkname: join(sb.outside, "secret") },
      { name: "h", type: "link", linkname: "s" },
    ]);
    const st = lstatSync(join(root, "h"));
    assert.ok(st.isSymbolicLink());
    assert.equal(st.nlink, 2);
  });

  test("modes and owners of symlink entries never reach the target", async () => {
    await contained([
      { name: "s", type: "symlink", linkname: join(sb.outside, "secret"), mode: 0o777, uid: 1234 },
      { name: "s2", type: "symlink", linkname: join(sb.outside, "dir"), mode: 0o777, mtime: new Date(0) },
    ]);
  });

  test("a directory replaced by a symlink later gets no deferred chmod through it", async () => {
    await contained([
      { name: "d/", mode: 0o777, mtime: new Date(0) },
      { name: "d/f", data: "x" },
      { name: "d", type: "symlink", linkname: join(sb.outside, "dir") },
    ]);
  });
});

describe("6. directory replacing a symlink and the reverse", () => {
  test("a directory replaces a symlink, never traverses it", async () => {
    const root = await contained([
      { name: "x", type: "symlink", linkname: sb.outside },
      { name: "x/", mode: 0o700 },
      { name: "x/f", data: "x" },
    ]);
    assert.ok(lstatSync(join(root, "x")).isDirectory());
    assert.equal(readFileSync(join(root, "x/f"), "utf8"), "x");
  });

  test("a symlink replaces a directory, and later writes follow it inside the root", async () => {
    const root = await contained([
      { name: "x/", mode: 0o755 },
      { name: "x/f", data: "old" },
      { name: "x", type: "symlink", linkname: "/y" },
      { name: "x/g", data: "new" },
    ]);
    assert.ok(lstatSync(join(root, "x")).isSymbolicLink());
    assert.equal(readFileSync(join(root, "y/g"), "utf8"), "new");
  });

  test("a directory over a lower layer's symlink is a real directory", async () => {
    const lower = await contained([{ name: "x", type: "symlink", linkname: sb.outside }]);
    const root = await contained([{ name: "x/" }, { name: "x/secret", data: "mine" }], { lowers: [lower] });
    assert.ok(lstatSync(join(root, "x")).isDirectory());
    assert.equal(readFileSync(join(root, "x/secret"), "utf8"), "mine");
  });

  test("a file replaces a symlink to outside", async () => {
    const root = await contained([
      { name: "x", type: "symlink", linkname: join(sb.outside, "secret") },
      { name: "x", data: "replaced", mode: 0o666 },
    ]);
    assert.equal(readFileSync(join(root, "x"), "utf8"), "replaced");
  });
});

describe("7. whiteouts and overlay attributes", () => {
  test(".wh.. and .wh... are refused", async () => {
    await rejects([{ name: "a/.wh.." }], /entry "a\/\.wh\.\.": invalid whiteout name/);
    await rejects([{ name: "a/.wh..." }], /invalid whiteout name/);
    await rejects([{ name: ".wh." }], /invalid whiteout name/);
    await rejects([{ name: "../.wh.outside" }], /path escapes the root/);
  });

  test("a whiteout becomes a 0/0 character device only where a lower has the name", { skip: needsRoot }, async () => {
    const lower = await contained([{ name: "etc/" }, { name: "etc/motd", data: "hi" }, { name: "etc/keep", data: "k" }]);
    const root = await contained([{ name: "etc/.wh.motd" }, { name: "etc/.wh.nothing" }, { name: ".wh.absent" }], { lowers: [lower] });
    const st = lstatSync(join(root, "etc/motd"));
    assert.ok(st.isCharacterDevice());
    assert.equal(st.rdev, 0);
    assert.equal(existsSync(join(root, "etc/nothing")), false);
    assert.equal(existsSync(join(root, "absent")), false);
    assert.equal(existsSync(join(root, "etc/keep")), false, "only the parent is copied up");
  });

  test("a whiteout removes what this layer created earlier", async () => {
    const root = await contained([{ name: "a/" }, { name: "a/f", data: "x" }, { name: "a/.wh.f" }]);
    assert.equal(existsSync(join(root, "a/f")), false);
  });

  test("whiteouts under a symlinked parent resolve inside the root", { skip: needsRoot }, async () => {
    const lower = await contained([{ name: `${sb.outside}/secret`, data: "inside copy" }]);
    const root = await contained([{ name: "s", type: "symlink", linkname: sb.outside }, { name: "s/.wh.secret" }, { name: "s/.wh.dir" }], {
      lowers: [lower],
    });
    const st = lstatSync(join(root, sb.outside, "secret"));
    assert.ok(st.isCharacterDevice() && st.rdev === 0);
    assert.equal(existsSync(join(root, sb.outside, "dir")), false);
  });

  test(".wh..wh..opq makes only its own directory opaque", { skip: needsRoot }, async () => {
    const lower = await contained([{ name: "d/" }, { name: "d/a", data: "a" }, { name: "e/" }, { name: "e/b", data: "b" }]);
    const root = await contained([{ name: "d/" }, { name: "d/.wh..wh..opq" }, { name: "d/c", data: "c" }, { name: "e/" }], {
      lowers: [lower],
    });
    const opq = await host.run("getfattr", [
      "-h",
      "-d",
      "-m",
      "trusted.overlay",
      "-e",
      "text",
      "--absolute-names",
      join(root, "d"),
      join(root, "e"),
    ]);
    assert.match(opq.stdout, new RegExp(`# file: ${join(root, "d")}\ntrusted.overlay.opaque="y"`));
    assert.doesNotMatch(opq.stdout, /\/e\n/);
    assert.equal(readFileSync(join(root, "d/c"), "utf8"), "c");
  });

  test("an opaque marker hides lower symlinks for later entries of the layer", { skip: needsRoot }, async () => {
    const lower = await contained([{ name: "d/" }, { name: "d/s", type: "symlink", linkname: "/elsewhere" }]);
    const root = await contained([{ name: "d/" }, { name: "d/.wh..wh..opq" }, { name: "d/s/f", data: "x" }], { lowers: [lower] });
    assert.ok(lstatSync(join(root, "d/s")).isDirectory());
    assert.equal(existsSync(join(root, "elsewhere")), false);
  });

  test("trusted.overlay.* attributes in the tar are dropped, others kept", { skip: needsRoot }, async () => {
    const root = await contained([
      { name: "d/", pax: { "SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.keep": "1" } },
      { name: "f", data: "x", pax: { "SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.user.keep": "2" } },
    ]);
    const r = await host.run("getfattr", ["-R", "-h", "-d", "-m", "-", "-e", "text", "--absolute-names", root]);
    assert.doesNotMatch(r.stdout, /trusted\.overlay/);
    assert.match(r.stdout, /user\.keep="1"/);
    assert.match(r.stdout, /user\.keep="2"/);
  });

  test("a file over a lower directory, then a directory again, is opaque", { skip: needsRoot }, async () => {
    const lower = await contained([{ name: "d/" }, { name: "d/old", data: "o" }]);
    const root = await contained([{ name: "d/" }, { name: "d", data: "file now" }, { name: "d/" }], { lowers: [lower] });
    const r = await host.run("getfattr", ["-h", "-n", "trusted.overlay.opaque", "--only-values", join(root, "d")]);
    assert.equal(r.stdout, "y");
  });
});

describe("8. device nodes", () => {
  test("char, block and fifo nodes are created with their numbers", { skip: needsRoot }, async () => {
    const root = await contained([
      { name: "dev/" },
      { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "dev/sda", type: "block-device", devmajor: 8, devminor: 0, mode: 0o660, gid: 6 },
      { name: "dev/fifo", type: "fifo", mode: 0o600 },
      { name: "dev/null2", type: "link", linkname: "dev/null" },
    ]);
    const n = lstatSync(join(root, "dev/null"));
    assert.ok(n.isCharacterDevice());
    assert.equal(n.rdev, (1 << 8) | 3);
    assert.equal(n.mode & 0o7777, 0o666);
    const b = lstatSync(join(root, "dev/sda"));
    assert.ok(b.isBlockDevice());
    assert.equal(b.rdev, 8 << 8);
    assert.equal(b.gid, 6);
    assert.ok(lstatSync(join(root, "dev/fifo")).isFIFO());
    assert.ok(lstatSync(join(root, "dev/null2")).isCharacterDevice());
  });

  test("nodes at long paths, with odd names, many of them, each in place of its placeholder", { skip: needsRoot }, async () => {
    const deep = `${"d".repeat(90)}/${"e".repeat(90)}/${"f".repeat(90)}`;
    const entries: TestEntry[] = [
      { name: "d/" },
      { name: `${"d".repeat(90)}/` },
      { name: `${"d".repeat(90)}/${"e".repeat(90)}/` },
      { name: `${deep}/` },
      { name: `${deep}/${"n".repeat(120)}`, type: "character-device", devmajor: 1, devminor: 5, mode: 0o640 },
      { name: "d/-rf", type: "character-device", devmajor: 1, devminor: 7, mode: 0o644 },
      { name: "d/ sp ace\tand\nnewline", type: "fifo", mode: 0o604 },
    ];
    for (let i = 0; i < 300; i++) entries.push({ name: `d/n${i}`, type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 });
    const root = await contained(entries);
    const long = lstatSync(join(root, deep, "n".repeat(120)));
    assert.ok(long.isCharacterDevice());
    assert.equal(long.rdev, (1 << 8) | 5);
    assert.equal(long.mode & 0o7777, 0o640);
    assert.equal(lstatSync(join(root, "d/-rf")).rdev, (1 << 8) | 7);
    assert.ok(lstatSync(join(root, "d/ sp ace\tand\nnewline")).isFIFO());
    assert.equal(lstatSync(join(root, "d/ sp ace\tand\nnewline")).mode & 0o7777, 0o604);
    for (let i = 0; i < 300; i++) assert.ok(lstatSync(join(root, `d/n${i}`)).isCharacterDevice(), `d/n${i}`);
    // Nothing but the nodes and their directories: no placeholder or stray file left over.
    assert.equal(readdirSync(join(root, "d")).length, 302);
  });

  test("attributes of a device node land on the node; others are set alongside", { skip: needsRoot }, async () => {
    const root = await contained([
      { name: "dev/" },
      { name: "dev/tty", type: "character-device", devmajor: 5, devminor: 0, mode: 0o666, pax: { "SCHILY.xattr.trusted.berth": "node" } },
      { name: "d/", pax: { "SCHILY.xattr.user.dir": "d" } },
      { name: "f", data: "x", pax: { "SCHILY.xattr.user.file": "f" } },
    ]);
    assert.ok(lstatSync(join(root, "dev/tty")).isCharacterDevice());
    const attr = async (p: string, n: string) =>
      (await host.run("getfattr", ["-h", "-n", n, "--only-values", join(root, p)], { allowFailure: true })).stdout;
    assert.equal(await attr("dev/tty", "trusted.berth"), "node");
    assert.equal(await attr("d", "user.dir"), "d");
    assert.equal(await attr("f", "user.file"), "f");
  });
});

describe("9. bounds: PAX headers, entry counts, deep and long names", () => {
  test("a huge PAX header is refused without buffering it", async () => {
    const big = encodeHeader({
      name: "f",
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: 0,
      mtime: 0,
      xattrs: new Map([["user.big", Buffer.alloc(2 << 20, 0x41)]]),
    });
    await rejects(Buffer.concat([big, END_OF_ARCHIVE]), /PAX header of \d+ bytes exceeds the limit/);
  });

  test("more entries than the cap", async () => {
    const entries: TestEntry[] = [];
    for (let i = 0; i < 101; i++) entries.push({ name: `f${i}` });
    await rejects(entries, /more than 100 entries/, { maxEntries: 100 });
  });

  test("a 10k-deep path and names over PATH_MAX are refused", async () => {
    await rejects([{ name: "a/".repeat(10_000) + "f", data: "x" }], /longer than 4096 bytes/);
    await rejects([{ name: "x".repeat(5000), data: "x" }], /longer than 4096 bytes/);
    await rejects([{ name: "s", type: "symlink", linkname: "y".repeat(5000) }], /longer than 4096 bytes/);
  });

  test("a path that only becomes too long through symlinks is refused", async () => {
    const seg = "d".repeat(200);
    const entries: TestEntry[] = [{ name: "l0", type: "symlink", linkname: `${seg}/${seg}/${seg}/${seg}/${seg}` }];
    for (let i = 1; i < 10; i++) entries.push({ name: `l${i}`, type: "symlink", linkname: `l${i - 1}/${seg}/${seg}/${seg}/${seg}` });
    entries.push({ name: "l9/f", data: "x" });
    await rejects(entries, /PATH_MAX|name too long/i);
  });

  test("oversized extended attributes are refused", async () => {
    const one = (name: string, size: number) =>
      encodeHeader({
        name,
        type: "file",
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: 0,
        xattrs: new Map([["user.v", Buffer.alloc(size, 1)]]),
      });
    await rejects(Buffer.concat([one("f", 70_000), END_OF_ARCHIVE]), /entry "f": extended attribute "user.v" is larger than 65536 bytes/);
    const many: Buffer[] = [];
    for (let i = 0; i < 1100; i++) many.push(one(`f${i}`, 65_000));
    await rejects(Buffer.concat([...many, END_OF_ARCHIVE]), /extended attributes exceed 67108864 bytes/);
  });

  test("a component over NAME_MAX fails cleanly", async () => {
    await rejects([{ name: "n".repeat(300), data: "x" }], /ENAMETOOLONG|name too long/i);
  });
});

describe("10. bombs, truncation, trailing data, not a tar", () => {
  async function bigFileTar(size: number): Promise<Buffer> {
    const h = encodeHeader({ name: "bomb", type: "file", mode: 0o644, uid: 0, gid: 0, size, mtime: 0 });
    return h;
  }

  test("a gzip bomb stops at the size cap with bounded memory", async () => {
    const { createGzip } = await import("node:zlib");
    const gz = createGzip({ level: 9 });
    const parts: Buffer[] = [];
    gz.on("data", (c: Buffer) => parts.push(c));
    gz.write(await bigFileTar(200 * 1024 * 1024));
    const zeros = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 200; i++) gz.write(zeros);
    gz.end(END_OF_ARCHIVE);
    await new Promise((r) => gz.on("end", r));
    const blob = Buffer.concat(parts);
    assert.ok(blob.length < 1024 * 1024, "the bomb is small");
    const rss = process.memoryUsage().rss;
    await rejects(blob, /larger than the limit of 10485760 bytes/, { maxSize: 10 * 1024 * 1024 });
    assert.ok(process.memoryUsage().rss - rss < 200 * 1024 * 1024);
  });

  test("a zstd bomb stops at the size cap", async () => {
    const tar = Buffer.concat([await bigFileTar(64 * 1024 * 1024), Buffer.alloc(64 * 1024 * 1024), END_OF_ARCHIVE]);
    await rejects(zstdCompressSync(tar), /larger than the limit/, { maxSize: 1024 * 1024 });
  });

  test("truncated streams are refused", async () => {
    const tar = await tarOf([
      { name: "a", data: "x".repeat(5000) },
      { name: "b", data: "y" },
    ]);
    await rejects(tar.subarray(0, 3000), /truncated/);
    await rejects(tar.subarray(0, 1536), /truncated/); // ends between entries, no end marker
    await rejects(tar.subarray(0, 100), /truncated/);
    const gz = gzipSync(tar);
    await rejects(gz.subarray(0, gz.length - 4), /unexpected end of file|truncated/);
    const zs = zstdCompressSync(tar);
    await rejects(zs.subarray(0, zs.length - 3), /truncated/);
    await rejects(zs.subarray(0, 5), /truncated/);
  });

  test("trailing garbage is refused, trailing zero padding is not", async () => {
    const tar = await tarOf([{ name: "a", data: "x" }]);
    await rejects(Buffer.concat([tar, Buffer.from("garbage")]), /data after the end-of-archive marker/);
    await rejects(Buffer.concat([tar, await tarOf([{ name: "smuggled", data: "x" }])]), /data after the end-of-archive marker/);
    await rejects(Buffer.concat([gzipSync(tar), Buffer.from("garbage")]), /incorrect header check|after the end of the gzip stream/);
    await rejects(Buffer.concat([gzipSync(tar), Buffer.alloc(64)]), /after the end of the gzip stream/);
    await rejects(Buffer.concat([zstdCompressSync(tar), Buffer.from("garbage!")]), /after the end of the zstd stream/);
    const r = await apply(Buffer.concat([tar, Buffer.alloc(10240)]), sb.root());
    assert.equal(r.size, tar.length + 10240);
  });

  test("concatenated gzip members and zstd frames are one stream", async () => {
    const a = await tarOf([{ name: "a", data: "x" }]);
    const body = a.subarray(0, a.length - 1024);
    const end = a.subarray(a.length - 1024);
    for (const blob of [Buffer.concat([gzipSync(body), gzipSync(end)]), Buffer.concat([zstdCompressSync(body), zstdCompressSync(end)])]) {
      const root = sb.root();
      const r = await apply(blob, root, { chunk: 3 });
      assert.equal(r.diffId, sha256(a));
      assert.equal(readFileSync(join(root, "a"), "utf8"), "x");
    }
    // A first chunk too short to tell the format: the stream decompressor instead of the in-place one.
    const one = await apply(Buffer.concat([gzipSync(body), gzipSync(end)]), sb.root(), { chunk: 1 });
    assert.equal(one.diffId, sha256(a));
    assert.equal(one.compression, "gzip");
    const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]), zstdCompressSync(a)]);
    const withSkip = Buffer.concat([zstdCompressSync(body), skippable.subarray(0, 11), zstdCompressSync(end)]);
    const r = await apply(withSkip, sb.root(), { chunk: 5 });
    assert.equal(r.diffId, sha256(a));
    const skipFirst = await apply(skippable, sb.root(), { chunk: 2 });
    assert.equal(skipFirst.compression, "zstd");
    assert.equal(skipFirst.diffId, sha256(a));
  });

  test("corrupted compressed data is refused", async () => {
    const tar = await tarOf([{ name: "a", data: "some data ".repeat(1000) }]);
    const gz = gzipSync(tar);
    gz.writeUInt8(gz.readUInt8(gz.length >> 1) ^ 0xff, gz.length >> 1);
    await rejects(gz, /invalid|incorrect|corrupt|mismatch|distance/i);
    const gz2 = gzipSync(tar);
    gz2.writeUInt8(gz2.readUInt8(gz2.length - 6) ^ 0xff, gz2.length - 6); // CRC
    await rejects(gz2, /incorrect data check|invalid|mismatch/i);
    const zs = zstdCompressSync(tar);
    zs.writeUInt8(zs.readUInt8(zs.length >> 1) ^ 0xff, zs.length >> 1);
    await rejects(zs, /zstd|corrupt|invalid|truncated|not a tar|checksum/i);
  });

  test("data that is not a tar is refused", async () => {
    await rejects(Buffer.from("this is not a tar archive at all\n".repeat(40)), /not a tar archive/i);
    await rejects(gzipSync(Buffer.from("<html>not a layer</html>".repeat(50))), /not a tar archive/i);
    await rejects(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 1, 2]), /compression "xz" is not supported/);
  });

  test("a corrupted header checksum is refused", async () => {
    const tar = await tarOf([
      { name: "a", data: "x" },
      { name: "b", data: "y" },
    ]);
    tar[1024 + 10] = 0x41; // inside the second header's name
    await rejects(tar, /checksum mismatch/);
  });
});

describe("lowers", () => {
  test("hard link to a file only a lower layer has copies it up", async () => {
    const lower = await contained([{ name: "bin/" }, { name: "bin/busybox", data: "BB", mode: 0o755 }]);
    const root = await contained([{ name: "bin/sh", type: "link", linkname: "bin/busybox" }], { lowers: [lower] });
    assert.equal(readFileSync(join(root, "bin/sh"), "utf8"), "BB");
    assert.equal(lstatSync(join(root, "bin/sh")).ino, lstatSync(join(root, "bin/busybox")).ino);
    assert.equal(lstatSync(join(root, "bin/busybox")).mode & 0o777, 0o755);
  });

  test("a lower whiteout hides deeper layers for parents and links", async () => {
    const l2 = await contained([
      { name: "x", type: "symlink", linkname: "/via-l2" },
      { name: "f", data: "f" },
    ]);
    // l1 is an overlay upper: a 0/0 device hides x; emulate with a regular non-directory file too.
    const l1 = sb.root();
    writeFileSync(join(l1, "f"), "shadow");
    mkdirSync(join(l1, "unrelated"));
    const root = await contained(
      [
        { name: "x/y", data: "1" },
        { name: "g", type: "link", linkname: "f" },
      ],
      { lowers: [l1, l2] },
    );
    assert.equal(readFileSync(join(root, "via-l2/y"), "utf8"), "1", "x is still visible from l2 (l1 does not hide it)");
    assert.equal(readFileSync(join(root, "g"), "utf8"), "shadow", "the topmost lower wins");
  });

  test("a parent that is a file in a lower is an error", async () => {
    const lower = await contained([{ name: "f", data: "x" }]);
    await rejects([{ name: "f/child", data: "x" }], /entry "f\/child": "f" is not a directory/, { lowers: [lower] });
  });

  test("symlinks in lowers are not followed by parent lookups outside the root", async () => {
    const lowerDir = join(sb.base, "plain-lower");
    mkdirSync(lowerDir);
    symlinkSync(sb.outside, join(lowerDir, "o"));
    const root = await contained([{ name: "o/dir/pwned", data: "x" }], { lowers: [lowerDir] });
    assert.equal(readFileSync(join(root, sb.outside, "dir/pwned"), "utf8"), "x");
  });
});
