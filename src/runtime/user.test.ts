import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { isInvalidArgument, isNotFound, RealHost } from "../base/mod.ts";
import { mkdirInRoot, readFileInRoot, resolveInRoot } from "./rootfs.ts";
import { resolveUser, resolveUserFrom } from "./user.ts";

const PASSWD =
  "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\nbroken line\nnobody:x:65534:65534::/nonexistent:/bin/false\n";
const GROUP = "root:x:0:\nwheel:x:10:root,app\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n";

test("user specs resolve like Docker (the primary group leads the supplementary ones, as containerd)", () => {
  assert.deepEqual(resolveUserFrom("", [], PASSWD, GROUP), { uid: 0, gid: 0, additionalGids: [0, 10], home: "/root" });
  assert.deepEqual(resolveUserFrom("app", [], PASSWD, GROUP), { uid: 1000, gid: 1000, additionalGids: [1000, 10, 50], home: "/home/app" });
  assert.deepEqual(resolveUserFrom("1000", [], PASSWD, GROUP), { uid: 1000, gid: 1000, additionalGids: [1000, 10, 50], home: "/home/app" });
  assert.deepEqual(resolveUserFrom("app:staff", [], PASSWD, GROUP), { uid: 1000, gid: 50, additionalGids: [50], home: "/home/app" });
  assert.deepEqual(resolveUserFrom("4242:4343", ["wheel", "77"], PASSWD, GROUP), {
    uid: 4242,
    gid: 4343,
    additionalGids: [4343, 10, 77],
    home: "/",
  });
  assert.deepEqual(resolveUserFrom("0", [], undefined, undefined), { uid: 0, gid: 0, additionalGids: [0], home: "/root" });
  assert.deepEqual(resolveUserFrom("nobody", [], PASSWD, GROUP).home, "/nonexistent");
});

test("bad users are clear errors", () => {
  assert.throws(() => resolveUserFrom("ghost", [], PASSWD, GROUP), isNotFound);
  assert.throws(() => resolveUserFrom("app:ghosts", [], PASSWD, GROUP), isNotFound);
  assert.throws(() => resolveUserFrom("-1", [], PASSWD, GROUP), isInvalidArgument);
  assert.throws(() => resolveUserFrom("4294967295", [], PASSWD, GROUP), isInvalidArgument);
  assert.throws(() => resolveUserFrom("1:2:3", [], PASSWD, GROUP), isInvalidArgument);
  assert.throws(() => resolveUserFrom("", ["nogroup-x"], PASSWD, GROUP), isNotFound);
});

const dir = mkdtempSync(join(tmpdir(), "berth-user-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function root(name: string): string {
  const r = join(dir, name);
  mkdirSync(join(r, "etc"), { recursive: true });
  return r;
}

test("passwd is read inside the root", async () => {
  const r = root("plain");
  writeFileSync(join(r, "etc/passwd"), PASSWD);
  writeFileSync(join(r, "etc/group"), GROUP);
  assert.equal((await resolveUser(r, "app")).uid, 1000);
});

test("a passwd symlink to the host resolves inside the root", async () => {
  const r = root("symlink");
  const outside = join(dir, "host-passwd");
  writeFileSync(outside, "evil:x:0:0::/:/bin/sh\n");
  symlinkSync(outside, join(r, "etc/passwd"));
  // The absolute target is re-rooted: <root>/<dir>/host-passwd does not exist.
  assert.equal(await readFileInRoot(r, "/etc/passwd"), undefined);
  assert.throws(() => resolveUserFrom("evil", [], undefined, undefined), isNotFound);
  await assert.rejects(resolveUser(r, "evil"), isNotFound);
  symlinkSync("../../../../../../../../..", join(r, "up"));
  assert.equal(await resolveInRoot(r, "/up/etc/group"), join(r, "etc/group"));
  symlinkSync("loop", join(r, "loop"));
  await assert.rejects(resolveInRoot(r, "/loop/x"), isInvalidArgument);
});

test("a passwd FIFO or directory does not hang, a huge passwd is bounded", async () => {
  const r = root("fifo");
  await new RealHost().run("mkfifo", [join(r, "etc/passwd")]);
  await assert.rejects(resolveUser(r, "app"), isInvalidArgument);
  const d = root("dir");
  mkdirSync(join(d, "etc/passwd"));
  await assert.rejects(resolveUser(d, "app"), isInvalidArgument);
  const h = root("huge");
  writeFileSync(join(h, "etc/passwd"), "u:x:1:1::/:/bin/sh\n".repeat(300000));
  await assert.rejects(readFileInRoot(h, "/etc/passwd", 1024 * 1024), /larger than/);
});

test("working directories are created inside the root", async () => {
  const r = root("workdir");
  symlinkSync("/", join(r, "escape"));
  await mkdirInRoot(r, "/escape/created/deep");
  assert.ok(existsSync(join(r, "created/deep")));
  writeFileSync(join(r, "file"), "");
  await assert.rejects(mkdirInRoot(r, "/file/sub"), isInvalidArgument);
});
