import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { byteOrder, globMatch, hashMatch, resolveSources, type SourceTree } from "./fsops.ts";
import { PatternMatcher } from "./ignore.ts";

let dir = "";
let outside = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "berth-fsops-"));
  outside = mkdtempSync(join(tmpdir(), "berth-outside-"));
  writeFileSync(join(outside, "secret"), "do not read\n");
  mkdirSync(join(dir, "src/sub"), { recursive: true });
  writeFileSync(join(dir, "src/a.txt"), "a\n");
  writeFileSync(join(dir, "src/b.txt"), "b\n");
  writeFileSync(join(dir, "src/sub/c.md"), "c\n");
  writeFileSync(join(dir, "ignored.key"), "k\n");
  symlinkSync(outside, join(dir, "out-abs"));
  symlinkSync("../../../../../../..", join(dir, "up"));
  symlinkSync("src", join(dir, "src-link"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

const tree = (): SourceTree => ({ root: dir, ignore: new PatternMatcher(["*.key"]), keepOwners: false });

test("resolveSources: paths, globs, and symlinks followed inside the tree", async () => {
  assert.deepEqual(
    (await resolveSources(tree(), "src/a.txt")).map((m) => m.rel),
    ["src/a.txt"],
  );
  assert.deepEqual(
    (await resolveSources(tree(), "/src/a.txt")).map((m) => m.rel),
    ["src/a.txt"],
  );
  assert.deepEqual(
    (await resolveSources(tree(), "src/*.txt")).map((m) => m.rel),
    ["src/a.txt", "src/b.txt"],
  );
  assert.deepEqual(
    (await resolveSources(tree(), "src-link/a.txt")).map((m) => m.rel),
    ["src/a.txt"],
  );
  assert.deepEqual(
    (await resolveSources(tree(), "*/sub/*.md")).map((m) => m.rel),
    ["src/sub/c.md"],
  );
});

test("resolveSources: nothing outside the tree is reachable", async () => {
  await assert.rejects(resolveSources(tree(), "../x"), /outside the build context/);
  await assert.rejects(resolveSources(tree(), "src/../../x"), /outside the build context/);
  // A symlink to an absolute path resolves inside the tree (where "secret" does not exist).
  await assert.rejects(resolveSources(tree(), "out-abs/secret"), /not found/);
  // `..` in a symlink stops at the root: "up" is the tree itself.
  assert.deepEqual(
    (await resolveSources(tree(), "up/src/a.txt")).map((m) => m.rel),
    ["src/a.txt"],
  );
  await assert.rejects(resolveSources(tree(), "ignored.key"), /not found/);
  await assert.rejects(resolveSources(tree(), "*.key"), /not found/);
});

test("hashMatch depends on content and mode, not on modification times", async () => {
  const digest = async () => {
    const h = createHash("sha256");
    for (const m of await resolveSources(tree(), "src")) await hashMatch(tree(), m, h);
    return h.digest("hex");
  };
  const a = await digest();
  utimesSync(join(dir, "src/a.txt"), new Date(0), new Date(0));
  assert.equal(await digest(), a);
  writeFileSync(join(dir, "src/a.txt"), "changed\n");
  assert.notEqual(await digest(), a);
});

test("globMatch is filepath.Match for one component", () => {
  assert.equal(globMatch("*.txt", "a.txt"), true);
  assert.equal(globMatch("?.txt", "ab.txt"), false);
  assert.equal(globMatch("[ab].txt", "b.txt"), true);
  assert.equal(globMatch("[^ab].txt", "c.txt"), true);
  assert.equal(globMatch("a\\*b", "a*b"), true);
  assert.equal(globMatch("a.b", "aXb"), false);
});

test("byteOrder sorts names as their UTF-8 bytes, with and without characters above U+D800", () => {
  const bytes = (xs: string[]) => [...xs].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const ascii = ["b", "a.txt", "A", "_x", "a", "Z9"];
  assert.deepEqual(byteOrder([...ascii]), bytes(ascii));
  const wide = ["\uE000", "😀", "é", "z", "\uFFFD", "a"];
  assert.deepEqual(byteOrder([...wide]), bytes(wide));
  assert.deepEqual(byteOrder([...wide]), ["a", "z", "é", "\uE000", "\uFFFD", "😀"]);
});
