/**
 * Unit tests of the container file operations on plain temporary trees (no root, no daemon):
 * Docker's entry names for `cp` out, extraction with hostile names and symlinks, the stat
 * header's Go file modes, and `diff` over an upper and a lower directory.
 */
import assert from "node:assert/strict";
import {
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { encodeHeader, END_OF_ARCHIVE, type HeaderSpec, padding, type TarHeader, TarReader } from "../archive/mod.ts";
import { archiveInTree, containerPath, extractInTree, goBase, goFileMode, treeChanges } from "./archive.ts";

function tarOf(entries: (Partial<HeaderSpec> & { name: string; data?: string })[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? "");
    const spec: HeaderSpec = {
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: 1_700_000_000,
      ...e,
      size: e.type && e.type !== "file" ? 0 : data.length,
    };
    parts.push(encodeHeader(spec));
    if (spec.type === "file") parts.push(data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

async function entries(body: AsyncIterable<Buffer>): Promise<{ name: string; type: string; data: string; linkname: string }[]> {
  const out: { name: string; type: string; data: string; linkname: string }[] = [];
  let cur: { name: string; type: string; data: string; linkname: string } | undefined;
  const r = new TarReader({
    entry(h: TarHeader) {
      cur = { name: h.name, type: h.type, data: "", linkname: h.linkname };
      out.push(cur);
    },
    data(c: Buffer) {
      if (cur) cur.data += c.toString();
    },
    entryEnd() {},
  });
  for await (const c of body) r.push(c);
  r.end();
  return out;
}

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

describe("container archive on a plain tree", () => {
  let dir = "";
  let rootDir = "";
  let outside = "";
  let root = -1;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "berth-archive-"));
    rootDir = join(dir, "root");
    outside = join(dir, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "secret"), "HOST\n");
    mkdirSync(join(rootDir, "d/sub"), { recursive: true });
    mkdirSync(join(rootDir, "etc"));
    writeFileSync(join(rootDir, "d/y"), "x\n");
    writeFileSync(join(rootDir, "d/sub/z"), "z\n");
    writeFileSync(join(rootDir, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
    symlinkSync("/d", join(rootDir, "lnk"));
    symlinkSync("../../../../../../..", join(rootDir, "up"));
    symlinkSync(outside, join(rootDir, "abs"));
    symlinkSync("loop2", join(rootDir, "loop1"));
    symlinkSync("loop1", join(rootDir, "loop2"));
    root = openSync(rootDir, constants.O_RDONLY | constants.O_DIRECTORY);
  });
  after(() => {
    closeSync(root);
    rmSync(dir, { recursive: true, force: true });
  });

  test("Go file modes and Docker's path forms", () => {
    assert.equal(goFileMode(0o40755), 2 ** 31 + 0o755);
    assert.equal(goFileMode(0o120777), 2 ** 27 + 0o777);
    assert.equal(goFileMode(0o104755), 2 ** 23 + 0o755);
    assert.equal(goFileMode(0o20666), 2 ** 26 + 2 ** 21 + 0o666);
    assert.equal(goFileMode(0o41777), 2 ** 31 + 2 ** 20 + 0o777);
    assert.equal(containerPath("d/."), "/d/.");
    assert.equal(containerPath("/a/../d/"), "/d/");
    assert.equal(containerPath("../../x"), "/x");
    assert.equal(containerPath("/"), "/");
    assert.equal(goBase("/d/."), ".");
    assert.equal(goBase("/d/"), "d");
    assert.equal(goBase("/"), "/");
  });

  test("cp out: entry names as the docker CLI expects them", async () => {
    const names = async (p: string) => (await entries(archiveInTree(root, p).body)).map((e) => e.name);
    assert.deepEqual(await names("/d"), ["d/", "d/sub/", "d/sub/z", "d/y"]);
    assert.deepEqual(await names("/d/."), ["./", "./sub/", "./sub/z", "./y"]);
    assert.deepEqual(await names("/d/y"), ["y"]);
    assert.deepEqual(await names("/lnk/"), ["lnk/", "lnk/sub/", "lnk/sub/z", "lnk/y"]);
    const link = await entries(archiveInTree(root, "/lnk").body);
    assert.deepEqual(
      link.map((e) => [e.name, e.type, e.linkname]),
      [["lnk", "symlink", "/d"]],
    );
    assert.ok((await names("/")).includes("/d/y"));
    const st = archiveInTree(root, "/lnk").stat;
    assert.equal(st.linkTarget, "/d");
    assert.equal(st.name, "lnk");
    assert.equal(archiveInTree(root, "/d").stat.mode, 2 ** 31 + (lstatSync(join(rootDir, "d")).mode & 0o777));
  });

  test("cp out: symlinks resolve inside the tree, never on the host", async () => {
    // "abs" points at a host directory by absolute path: inside the tree that path does not exist.
    assert.throws(() => archiveInTree(root, "/abs/secret", { ref: "ctr" }), /Could not find the file \/abs\/secret in container ctr/);
    // "up" climbs: it stops at the tree's root.
    const viaUp = await entries(archiveInTree(root, "/up/d/y").body);
    assert.equal(viaUp[0]?.data, "x\n");
    assert.equal(archiveInTree(root, "/abs").stat.linkTarget, outside);
    assert.throws(() => archiveInTree(root, "/loop1/x"), /too many levels of symbolic links/);
  });

  test("cp in: files, directories, merge, and noOverwriteDirNonDir", async () => {
    mkdirSync(join(rootDir, "in"));
    await extractInTree(
      root,
      "/in",
      once(
        tarOf([
          { name: "a/", type: "dir", mode: 0o750 },
          { name: "a/f", data: "f\n", mode: 0o600 },
        ]),
      ),
    );
    assert.equal(readFileSync(join(rootDir, "in/a/f"), "utf8"), "f\n");
    assert.equal(lstatSync(join(rootDir, "in/a")).mode & 0o777, 0o750);
    assert.equal(lstatSync(join(rootDir, "in/a/f")).mode & 0o777, 0o600);
    // Implied parents are created; an existing directory is merged into.
    await extractInTree(
      root,
      "/in",
      once(
        tarOf([
          { name: "a/g", data: "g\n" },
          { name: "b/c/d", data: "d\n" },
        ]),
      ),
    );
    assert.ok(existsSync(join(rootDir, "in/a/f")) && existsSync(join(rootDir, "in/a/g")) && existsSync(join(rootDir, "in/b/c/d")));
    await assert.rejects(
      extractInTree(root, "/in", once(tarOf([{ name: "a", data: "not a dir" }])), { noOverwriteDirNonDir: true }),
      /cannot overwrite directory/,
    );
    await extractInTree(root, "/in", once(tarOf([{ name: "a", data: "now a file\n" }])));
    assert.equal(readFileSync(join(rootDir, "in/a"), "utf8"), "now a file\n");
    await assert.rejects(extractInTree(root, "/d/y", once(tarOf([{ name: "x", data: "" }]))), /extraction point is not a directory/);
    await assert.rejects(extractInTree(root, "/nope", once(tarOf([{ name: "x", data: "" }]))), /Could not find the file/);
  });

  test("cp in: hostile names and symlinks stay inside the tree", async () => {
    mkdirSync(join(rootDir, "h"));
    await assert.rejects(
      extractInTree(root, "/h", once(tarOf([{ name: "../../../outside/pwned", data: "x" }]))),
      /outside of the destination/,
    );
    // An absolute name lands below the destination.
    await extractInTree(root, "/h", once(tarOf([{ name: `${outside}/abs`, data: "abs\n" }])));
    assert.equal(readFileSync(join(rootDir, "h", outside, "abs"), "utf8"), "abs\n");
    // A symlink to "/" (or one that climbs), then a write through it: lands in the tree's root.
    await extractInTree(
      root,
      "/h",
      once(
        tarOf([
          { name: "s1", type: "symlink", linkname: "/" },
          { name: "s1/through1", data: "1\n" },
          { name: "s2", type: "symlink", linkname: "../../../../../../../../" },
          { name: "s2/through2", data: "2\n" },
          { name: "s3", type: "symlink", linkname: outside },
          { name: "s3/through3", data: "3\n" },
        ]),
      ),
    );
    assert.equal(readFileSync(join(rootDir, "through1"), "utf8"), "1\n");
    assert.equal(readFileSync(join(rootDir, "through2"), "utf8"), "2\n");
    assert.equal(readFileSync(join(rootDir, outside, "through3"), "utf8"), "3\n");
    // A symlink to a host file is replaced by a later file of the same name, not written through.
    await extractInTree(
      root,
      "/h",
      once(
        tarOf([
          { name: "t", type: "symlink", linkname: join(outside, "secret") },
          { name: "t", data: "mine\n" },
        ]),
      ),
    );
    assert.equal(readFileSync(join(rootDir, "h/t"), "utf8"), "mine\n");
    // Hard links: by name they cannot leave the destination; through a symlink they resolve in the tree.
    await assert.rejects(
      extractInTree(root, "/h", once(tarOf([{ name: "hl", type: "link", linkname: "../../outside/secret" }]))),
      /outside/,
    );
    await assert.rejects(extractInTree(root, "/h", once(tarOf([{ name: "hl", type: "link", linkname: "s3/secret" }]))), /no such file/);
    // The destination itself through the "abs" symlink: the tree's path, not the host's.
    mkdirSync(join(rootDir, outside), { recursive: true });
    await extractInTree(root, "/abs", once(tarOf([{ name: "dest-through-link", data: "d\n" }])));
    assert.ok(existsSync(join(rootDir, outside, "dest-through-link")));
    assert.deepEqual(readFileSync(join(outside, "secret"), "utf8"), "HOST\n");
    assert.ok(
      !existsSync(join(outside, "pwned")) && !existsSync(join(outside, "through3")) && !existsSync(join(outside, "dest-through-link")),
    );
    assert.equal(readlinkSync(join(rootDir, "abs")), outside);
  });

  test("diff: added, modified and deleted with parents, same directories skipped", () => {
    const lower = join(dir, "lower");
    const upper = join(dir, "upper");
    mkdirSync(join(lower, "etc"), { recursive: true });
    mkdirSync(join(lower, "same"), { recursive: true });
    writeFileSync(join(lower, "etc/group"), "g");
    writeFileSync(join(lower, "etc/keep"), "k");
    writeFileSync(join(lower, "same/old"), "o");
    mkdirSync(join(upper, "etc"), { recursive: true });
    mkdirSync(join(upper, "same"), { recursive: true });
    mkdirSync(join(upper, "new/deep"), { recursive: true });
    writeFileSync(join(upper, "etc/keep"), "changed");
    writeFileSync(join(upper, "new/deep/f"), "f");
    writeFileSync(join(upper, "same/added"), "a");
    writeFileSync(join(upper, "etc/hosts"), ""); // runc's placeholder mount point
    // "same" keeps the lower's metadata: only its added child makes it appear (as a parent).
    const t = lstatSync(join(lower, "same")).mtime;
    utimesSync(join(upper, "same"), t, t);
    // "etc" was written to in this layer: its time differs, so it is reported itself.
    utimesSync(join(upper, "etc"), new Date(946684800000), new Date(946684800000));
    const changes = treeChanges(upper, [lower]).map((c) => `${"CAD"[c.Kind]} ${c.Path}`);
    assert.deepEqual(changes, ["C /etc", "C /etc/keep", "A /new", "A /new/deep", "A /new/deep/f", "C /same", "A /same/added"]);
  });
});
