import assert from "node:assert/strict";
import { lstatSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { linkDockerSocket, unlinkDockerSocket } from "./docker_socket.ts";

test("docker.sock: linked to berthd's socket only where nothing is, removed only while it is ours", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-dsock-"));
  try {
    const link = join(dir, "run", "docker.sock");
    const target = join(dir, "berth.sock");
    assert.equal(linkDockerSocket(target, link), true);
    assert.equal(readlinkSync(link), target);
    assert.equal(linkDockerSocket(join(dir, "other.sock"), link), false, "an existing link is left alone");
    unlinkDockerSocket(join(dir, "other.sock"), link);
    assert.equal(readlinkSync(link), target, "not removed for another target");
    unlinkDockerSocket(target, link);
    assert.equal(lstatSync(link, { throwIfNoEntry: false }), undefined);
    // dockerd's socket (here a plain file) is neither replaced nor removed.
    writeFileSync(link, "");
    assert.equal(linkDockerSocket(target, link), false);
    unlinkDockerSocket(target, link);
    assert.ok(lstatSync(link).isFile());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
