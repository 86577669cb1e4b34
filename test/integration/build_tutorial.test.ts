/**
 * The image-building tutorial through the real docker CLI's classic builder against a berthd of
 * our own: on `debian:bookworm` (the fixture registry as docker.io's mirror), RUN
 * `apt-get update && apt-get install -y figlet` reaches deb.debian.org over berth's default
 * bridge, ENTRYPOINT makes the image a command, and `run --rm figlet hello` prints the banner.
 * Skipped, with the reason, where deb.debian.org or the debian fixture is not reachable.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { waitFor } from "./_wait.ts";

const root = `/var/tmp/berth-tutorial-${process.pid}`;
const exec = `/run/berth-tutorial-${process.pid}`;
const sock = `${exec}/berth.sock`;
const berthd = new URL("../../bin/berthd", import.meta.url).pathname;

function reachable(url: string): boolean {
  return spawnSync("curl", ["-sf", "-o", "/dev/null", "--max-time", "10", url]).status === 0;
}

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return "needs root";
  if (spawnSync("docker", ["--version"]).status !== 0) return "needs the docker CLI";
  if (!reachable("http://127.0.0.1:5000/v2/")) return "needs the registry fixture on 127.0.0.1:5000";
  const tags = spawnSync("curl", ["-sf", "--max-time", "10", "http://127.0.0.1:5000/v2/library/debian/tags/list"], { encoding: "utf8" });
  if (!/"bookworm"/.test(tags.stdout ?? "")) return "needs debian:bookworm in the registry fixture (start it with SEED_DEBIAN=1)";
  if (!reachable("http://deb.debian.org/debian/dists/bookworm/InRelease"))
    return "deb.debian.org is not reachable from this host: apt-get inside the build could not reach it either";
  return false;
}
const skip = skipReason();
if (skip) process.stderr.write(`build_tutorial: skipped: ${skip}\n`);

let daemon: ChildProcess | undefined;
let tmp = "";

function env(): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_BUILDKIT: "0" };
}

function d(args: string[], timeout = 120_000): { code: number; out: string; err: string } {
  const r = spawnSync("docker", args, { env: env(), encoding: "utf8", timeout, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status ?? -1, out: r.stdout ?? "", err: `${r.stderr ?? ""}${r.error ? `\n${r.error.message}` : ""}` };
}

before(async () => {
  if (skip) return;
  mkdirSync(root, { recursive: true });
  tmp = mkdtempSync("/tmp/berth-tutorial-");
  writeFileSync(`${root}/daemon.json`, JSON.stringify({ "registry-mirrors": ["http://127.0.0.1:5000"] }));
  daemon = spawn(
    berthd,
    ["--config-file", `${root}/daemon.json`, "--data-root", `${root}/data`, "--exec-root", exec, "-H", `unix://${sock}`],
    {
      stdio: ["ignore", "ignore", "inherit"],
      detached: true,
    },
  );
  if (!(await waitFor(() => spawnSync("docker", ["version"], { env: env() }).status === 0, 20_000)))
    throw new Error("berthd did not come up");
});

after(async () => {
  if (skip) return;
  if (daemon?.pid) {
    try {
      process.kill(daemon.pid, "SIGTERM");
    } catch {
      // already gone
    }
    await waitFor(() => !existsSync(sock), 15_000);
  }
  for (const dir of [root, exec]) {
    const mounts = readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[1] ?? "")
      .filter((m) => m === dir || m.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) spawnSync("umount", ["-l", m]);
    rmSync(dir, { recursive: true, force: true });
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// figlet's standard font, as `figlet hello` prints it (trailing spaces trimmed).
const BANNER = [" _          _ _", "| |__   ___| | | ___", "| '_ \\ / _ \\ | |/ _ \\", "| | | |  __/ | | (_) |", "|_| |_|\\___|_|_|\\___/"];

test("the figlet tutorial: apt-get install in RUN on debian:bookworm, ENTRYPOINT, run --rm figlet hello", {
  skip,
  timeout: 900_000,
}, () => {
  const ctx = join(tmp, "figlet");
  mkdirSync(ctx);
  writeFileSync(join(ctx, "Dockerfile"), 'FROM debian:bookworm\nRUN apt-get update && apt-get install -y figlet\nENTRYPOINT ["figlet"]\n');
  const b = d(["build", "-t", "figlet", ctx], 900_000);
  assert.equal(b.code, 0, `build failed:\n${b.out.slice(-4000)}\n${b.err.slice(-2000)}`);
  // The RUN's output streamed through: apt fetched from the Debian mirror and set figlet up.
  assert.match(b.out, /deb\.debian\.org/);
  assert.match(b.out, /Setting up figlet/);
  assert.match(b.out, /Successfully tagged figlet:latest/);
  const r = d(["run", "--rm", "figlet", "hello"]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(
    r.out
      .split("\n")
      .map((l) => l.trimEnd())
      .filter((l) => l !== ""),
    BANNER,
  );
  // The image's history shows the tutorial's steps; a rebuild is entirely cached.
  const hist = d(["history", "--no-trunc", "--format", "{{.CreatedBy}}", "figlet"]);
  assert.match(hist.out, /apt-get update && apt-get install -y figlet/);
  const again = d(["build", "-t", "figlet", ctx], 120_000);
  assert.equal(again.code, 0, again.err);
  assert.equal((again.out.match(/Using cache/g) ?? []).length, 2, again.out);
  assert.equal(d(["ps", "-aq"]).out.trim(), "", "no container is left");
  assert.equal(d(["rmi", "figlet"]).code, 0);
});
