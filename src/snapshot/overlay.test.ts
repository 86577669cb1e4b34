import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Db, FakeHost, RealHost } from "../base/mod.ts";
import { OverlaySnapshotter } from "./overlay.ts";

// Under /var/tmp rather than tmpdir(): placement only matters on a disk file system (ext4).
let dir: string;
let db: Db;

before(() => {
  dir = mkdtempSync("/var/tmp/berth-snapshot-test-");
  db = new Db(join(dir, "berth.db"));
});

after(() => {
  db.sqlite.close();
  rmSync(dir, { recursive: true, force: true });
});

const onExt4 = () => statfsSync("/var/tmp").type === 0xef53;
const hasChattr = () => {
  try {
    execFileSync("lsattr", ["-d", "/var/tmp"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};
const FLEX = 16 * 8192;

test("snapshots live in <id>/fs; no temporary name is left behind", async () => {
  const snaps = new OverlaySnapshotter(join(dir, "a"), db, new FakeHost());
  await snaps.init();
  await snaps.prepare("one", undefined);
  writeFileSync(join(snaps.dir("one"), "f"), "x");
  await snaps.commit("c1", "one");
  await snaps.prepare("two", "c1");
  await snaps.remove("two");
  await snaps.prepare("three", "c1");
  const ids = snaps.list().map((s) => String(s.id));
  assert.deepEqual(readdirSync(snaps.root).sort(), [...ids].sort());
  for (const s of snaps.list()) assert.ok(lstatSync(join(snaps.root, String(s.id), "fs")).isDirectory());
  assert.ok(existsSync(join(snaps.dir("three"), "..", "work")));
  assert.deepEqual(await snaps.orphanDirs(), []);
  for (const k of ["three", "c1"]) await snaps.remove(k);
});

test("orphanDirs never lists the directory of a creation under way", async () => {
  const snaps = new OverlaySnapshotter(join(dir, "b"), db, new RealHost());
  await snaps.init();
  mkdirSync(join(snaps.root, "999"));
  let done = false;
  const creations = Promise.all(Array.from({ length: 12 }, (_, i) => snaps.prepare(`b${i}`, undefined))).finally(() => {
    done = true;
  });
  const seen = new Set<string>();
  while (!done) {
    for (const d of await snaps.orphanDirs()) seen.add(d);
    await new Promise((r) => setImmediate(r));
  }
  await creations;
  assert.deepEqual([...seen], [join(snaps.root, "999")]);
  for (let i = 0; i < 12; i++) await snaps.remove(`b${i}`);
});

test("on ext4 the snapshots directory is a top of hierarchy (+T)", { skip: !onExt4() || !hasChattr() }, async () => {
  const snaps = new OverlaySnapshotter(join(dir, "c"), db, new RealHost());
  await snaps.init();
  const attrs = execFileSync("lsattr", ["-d", snaps.root], { encoding: "utf8" }).split(/\s+/)[0] ?? "";
  assert.match(attrs, /T/);
});

test("on ext4 a new snapshot is not placed in the flex group of one just removed", { skip: !onExt4() || !hasChattr() }, async (t) => {
  const snaps = new OverlaySnapshotter(join(dir, "d"), db, new RealHost());
  await snaps.init();
  // Only meaningful where ext4 has more than one flex group to choose from for new top dirs.
  const probe = join(snaps.root, "probe");
  mkdirSync(probe);
  const groups = new Set<number>();
  for (let i = 0; i < 16; i++) {
    const p = join(snaps.root, `probe-${i}-${Math.random()}`);
    mkdirSync(p);
    groups.add(Math.floor(lstatSync(p).ino / FLEX));
    rmSync(p, { recursive: true });
  }
  rmSync(probe, { recursive: true });
  if (groups.size < 3) {
    t.skip("this file system offers too few flex groups");
    return;
  }
  for (let round = 0; round < 4; round++) {
    await snaps.prepare("x", undefined);
    const removed = Math.floor(lstatSync(join(snaps.dir("x"), "..")).ino / FLEX);
    await snaps.remove("x");
    await snaps.prepare("y", undefined);
    const placed = Math.floor(lstatSync(join(snaps.dir("y"), "..")).ino / FLEX);
    await snaps.remove("y");
    assert.notEqual(placed, removed, `round ${round}: placed in flex group ${placed}, where a snapshot was just removed`);
  }
});
