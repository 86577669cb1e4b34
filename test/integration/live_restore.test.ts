/**
 * Live restore: SIGKILL berthd while containers run, start it again, and everything is adopted:
 * running containers keep running (logs continue, exec, stats, stop work), containers that
 * exited meanwhile show their real exit codes, restart policies act on them.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { waitFor } from "./_wait.ts";

const root = `/var/tmp/berth-live-${process.pid}`;
const exec = `/run/berth-live-${process.pid}`;
const sock = `${exec}/berth.sock`;
const berthd = new URL("../../bin/berthd", import.meta.url).pathname;
const registryUp = spawnSync("curl", ["-sf", "http://127.0.0.1:5000/v2/"]).status === 0;
const skip = process.getuid?.() !== 0 ? "needs root" : !registryUp ? "needs the registry fixture on 127.0.0.1:5000" : false;

let daemon: ChildProcess | undefined;

function start(): Promise<void> {
  daemon = spawn(
    berthd,
    ["--config-file", `${root}/daemon.json`, "--data-root", `${root}/data`, "--exec-root", exec, "-H", `unix://${sock}`],
    {
      stdio: ["ignore", "ignore", "inherit"],
      detached: true,
    },
  );
  return waitFor(() => spawnSync("docker", ["version"], { env: envOf() }).status === 0, 15000).then((ok) => {
    if (!ok) throw new Error("berthd did not come up");
  });
}

function envOf(): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_HOST: `unix://${sock}` };
}

function d(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync("docker", args, { env: envOf(), encoding: "utf8", timeout: 60000 });
  return { code: r.status ?? -1, out: (r.stdout ?? "").trim(), err: (r.stderr ?? "").trim() };
}

before(async () => {
  if (skip) return;
  mkdirSync(root, { recursive: true });
  writeFileSync(`${root}/daemon.json`, JSON.stringify({ "registry-mirrors": ["http://127.0.0.1:5000"] }));
  await start();
  assert.equal(d("pull", "-q", "busybox").code, 0);
});

after(async () => {
  if (skip) return;
  d("rm", "-f", "live-a", "live-b", "live-c");
  if (daemon?.pid) {
    try {
      process.kill(daemon.pid, "SIGTERM");
    } catch {
      // already gone
    }
    await waitFor(() => !existsSync(sock), 10000);
  }
  spawnSync("sh", ["-c", `grep -o ' ${root}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
  rmSync(root, { recursive: true, force: true });
  rmSync(exec, { recursive: true, force: true });
});

test("containers survive SIGKILL of berthd and are adopted on restart", { skip }, async () => {
  assert.equal(
    d(
      "run",
      "-d",
      "--name",
      "live-a",
      "-v",
      "live-vol:/data",
      "busybox",
      "sh",
      "-c",
      "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done",
    ).code,
    0,
  );
  assert.equal(d("run", "-d", "--name", "live-b", "busybox", "sh", "-c", "sleep 1; exit 3").code, 0);
  assert.equal(d("run", "-d", "--name", "live-c", "--restart", "on-failure:1", "busybox", "sh", "-c", "sleep 1; exit 5").code, 0);
  const pidA = d("inspect", "--format", "{{.State.Pid}}", "live-a").out;
  // Kill the daemon hard; the containers and their monitors must not notice.
  process.kill(daemon?.pid ?? 0, "SIGKILL");
  await new Promise((r) => setTimeout(r, 2500));
  assert.ok(existsSync(`/proc/${pidA}`), "the container process outlives berthd");
  await start();
  // Running: adopted with the same pid, logs whole (lines written while berthd was down).
  assert.equal(d("inspect", "--format", "{{.State.Running}} {{.State.Pid}}", "live-a").out, `true ${pidA}`);
  const logs = d("logs", "live-a").out.split("\n");
  const nums = logs.map((l) => Number(l.replace("line ", "")));
  assert.ok(nums.length >= 10, `expected at least 10 lines, got ${nums.length}`);
  assert.deepEqual(
    nums,
    nums.map((_, i) => i),
    "no line lost or duplicated",
  );
  assert.equal(d("exec", "live-a", "echo", "exec-after-restore").out, "exec-after-restore");
  assert.match(d("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "live-a").out, /live-a \d+/);
  // Exited meanwhile: its real exit code.
  assert.equal(d("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "live-b").out, "exited 3");
  // Restart policy acted on a container that exited while berthd was down.
  assert.ok(
    await waitFor(() => d("inspect", "--format", "{{.RestartCount}}", "live-c").out === "1", 10000),
    "on-failure restarted it once",
  );
  // Stop still works on the adopted container.
  const since = String(Math.floor(Date.now() / 1000) - 1);
  assert.equal(d("stop", "-t", "1", "live-a").code, 0);
  assert.equal(d("inspect", "--format", "{{.State.Running}}", "live-a").out, "false");
  // Its volume's unmount is announced though this berthd did not start it.
  const until = String(Math.floor(Date.now() / 1000) + 1);
  assert.equal(d("events", "--since", since, "--until", until, "--filter", "volume=live-vol", "--format", "{{.Action}}").out, "unmount");
  assert.equal(d("rm", "live-a").code, 0);
  assert.equal(d("volume", "rm", "live-vol").code, 0);
});
