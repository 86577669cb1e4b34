/**
 * Legacy links (`--link`, `rm -l`) through the docker CLI against a berthd of its own, checked
 * against what dockerd 20.10 does: on the default bridge an /etc/hosts line and the
 * `ALIAS_*` variables, `HostConfig.Links` as `/target:/me/alias`, targets required at create
 * and running at start, `rm -l me/alias` removing the link live; on a user-defined network a
 * DNS alias that only the linking container resolves.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { after, before, test } from "node:test";

const root = `/var/tmp/berth-links-${process.pid}`;
const exec = `/run/berth-links-${process.pid}`;
const sock = `${exec}/berth.sock`;
const berthd = new URL("../../bin/berthd", import.meta.url).pathname;
const berth = new URL("../../bin/berth", import.meta.url).pathname;
const o2 = 200 + (process.pid % 40);
const o3 = process.pid % 100;
const registryUp = spawnSync("curl", ["-sf", "http://127.0.0.1:5000/v2/"]).status === 0;
const skip =
  process.getuid?.() !== 0
    ? "needs root"
    : !registryUp
      ? "needs the registry fixture on 127.0.0.1:5000"
      : !existsSync("/usr/lib/cni/bridge")
        ? "needs containernetworking-plugins"
        : false;

let daemon: ChildProcess | undefined;

/** Runs a client (the docker CLI by default) without blocking the event loop. */
function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, DOCKER_HOST: `unix://${sock}` }, encoding: "utf8", timeout: 60000 },
      (e, stdout, stderr) => {
        const code = e ? (typeof (e as { code?: unknown }).code === "number" ? (e as { code: number }).code : -1) : 0;
        resolve({ code, out: (stdout ?? "").trim(), err: (stderr ?? "").trim() });
      },
    );
  });
}

const d = (...args: string[]) => run("docker", args);

async function ok(...args: string[]): Promise<string> {
  const r = await d(...args);
  assert.equal(r.code, 0, `docker ${args.join(" ")}: ${r.err}`);
  return r.out;
}

async function waitFor(fn: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return await fn();
}

before(async () => {
  if (skip) return;
  mkdirSync(root, { recursive: true });
  writeFileSync(
    `${root}/daemon.json`,
    JSON.stringify({
      "registry-mirrors": ["http://127.0.0.1:5000"],
      bip: `10.${o2}.${o3}.1/24`,
      "default-address-pools": [{ base: `10.${o2}.${o3 + 100}.0/24`, size: 27 }],
    }),
  );
  daemon = spawn(
    berthd,
    ["--config-file", `${root}/daemon.json`, "--data-root", `${root}/data`, "--exec-root", exec, "-H", `unix://${sock}`],
    { stdio: ["ignore", "ignore", "inherit"], detached: true },
  );
  assert.ok(await waitFor(async () => (await d("version")).code === 0, 20000), "berthd did not come up");
  await ok("pull", "-q", "busybox");
});

after(async () => {
  if (skip) return;
  const p = daemon;
  if (p?.pid) {
    const ps = await d("ps", "-aq");
    if (ps.out) await d("rm", "-f", ...ps.out.split("\n"));
    await d("network", "prune", "-f");
    const gone = new Promise<void>((r) => p.once("exit", () => r()));
    process.kill(p.pid, "SIGTERM");
    await Promise.race([gone, new Promise((r) => setTimeout(r, 15000))]);
  }
  spawnSync("sh", [
    "-c",
    `grep -o ' ${exec}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l; grep -o ' ${root}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`,
  ]);
  rmSync(root, { recursive: true, force: true });
  rmSync(exec, { recursive: true, force: true });
});

test("--link on the default bridge: hosts line, dockerd's variables, HostConfig.Links; rm -l removes it live", { skip }, async () => {
  await ok("run", "-d", "--name", "tgt", "-e", "FOO=bar", "--expose", "80", "--expose", "53/udp", "busybox", "sleep", "600");
  const ip = await ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "tgt");
  const id12 = (await ok("inspect", "-f", "{{.Id}}", "tgt")).slice(0, 12);
  await ok("run", "-d", "--name", "web", "--link", "tgt:db", "--link", "tgt:db2", "busybox", "sleep", "600");
  assert.equal(await ok("inspect", "-f", "{{json .HostConfig.Links}}", "web"), '["/tgt:/web/db","/tgt:/web/db2"]');

  const env = (await ok("exec", "web", "env")).split("\n");
  for (const v of [
    "DB_NAME=/web/db",
    `DB_PORT=udp://${ip}:53`,
    `DB_PORT_80_TCP=tcp://${ip}:80`,
    `DB_PORT_80_TCP_ADDR=${ip}`,
    "DB_PORT_80_TCP_PORT=80",
    "DB_PORT_80_TCP_PROTO=tcp",
    `DB_PORT_53_UDP_ADDR=${ip}`,
    "DB_ENV_FOO=bar",
    "DB2_NAME=/web/db2",
  ])
    assert.ok(env.includes(v), `${v} missing from:\n${env.join("\n")}`);
  assert.ok(!env.some((v) => v.startsWith("DB_ENV_PATH=")), "the target's PATH is not passed on");
  assert.match(await ok("exec", "web", "cat", "/etc/hosts"), new RegExp(`^${ip.replaceAll(".", "\\.")}\\tdb ${id12} tgt$`, "m"));
  assert.match(await ok("exec", "web", "ping", "-c", "1", "-W", "2", "db"), /1 packets received/);

  // dockerd's answers for a plain name and for a link that does not exist.
  const own = await d("rm", "-l", "web");
  assert.notEqual(own.code, 0);
  assert.match(own.err, /Conflict, cannot remove the default link name of the container/);
  const none = await d("rm", "-l", "web/nope");
  assert.notEqual(none.code, 0);
  assert.match(none.err, /No such container: web\/nope/);

  assert.equal(await ok("rm", "-l", "web/db"), "web/db");
  assert.equal(await ok("inspect", "-f", "{{json .HostConfig.Links}}", "web"), '["/tgt:/web/db2"]');
  const hosts = await ok("exec", "web", "cat", "/etc/hosts");
  assert.doesNotMatch(hosts, /\tdb /);
  assert.match(hosts, /\tdb2 /);
  // The berth CLI sends the path escaped (web%2Fdb2): the same removal.
  const b = await run(berth, ["rm", "-l", "web/db2"]);
  assert.equal(b.code, 0, b.err);
  assert.equal(await ok("inspect", "-f", "{{json .HostConfig.Links}}", "web"), "null");
  assert.doesNotMatch(await ok("exec", "web", "cat", "/etc/hosts"), /\tdb2 /);
  // Both containers are still there and running: rm -l removes links, not containers.
  assert.equal(await ok("inspect", "-f", "{{.State.Running}}", "tgt"), "true");
  await ok("rm", "-f", "web", "tgt");
});

test("--link targets: a missing one fails the create, a stopped one fails the start and leaves nothing", { skip }, async () => {
  const missing = await d("create", "--name", "lost", "--link", "nosuch:x", "busybox", "true");
  assert.notEqual(missing.code, 0);
  assert.match(missing.err, /could not get container for nosuch: No such container: nosuch/);
  assert.equal(await ok("ps", "-aq", "--filter", "name=^lost$"), "");

  await ok("create", "--name", "asleep", "busybox", "true");
  const id = await ok("create", "--name", "linker", "--link", "asleep:s", "busybox", "true");
  const start = await d("start", "linker");
  assert.notEqual(start.code, 0);
  assert.match(start.err, /Cannot link to a non running container: \/asleep AS \/linker\/s/);
  assert.equal(await ok("inspect", "-f", "{{.State.Running}}", "linker"), "false");
  assert.ok(!readdirSync(`${exec}/netns`).includes(id), "no namespace is left pinned");
  await ok("rm", "-f", "linker", "asleep");
});

test("--link on a user-defined network: a DNS alias that only the linking container resolves", { skip }, async () => {
  await ok("network", "create", "lnet");
  await ok("run", "-d", "--name", "udb", "--network", "lnet", "-e", "FOO=bar", "--expose", "80", "busybox", "sleep", "600");
  const ip = await ok("inspect", "-f", '{{(index .NetworkSettings.Networks "lnet").IPAddress}}', "udb");
  await ok("run", "-d", "--name", "uweb", "--network", "lnet", "--link", "udb:store", "busybox", "sleep", "600");
  assert.equal(await ok("inspect", "-f", "{{json .HostConfig.Links}}", "uweb"), "null");
  assert.equal(await ok("inspect", "-f", '{{json (index .NetworkSettings.Networks "lnet").Links}}', "uweb"), '["udb:store"]');

  assert.match(await ok("exec", "uweb", "nslookup", "store"), new RegExp(`Address:\\s+${ip.replaceAll(".", "\\.")}$`, "m"));
  assert.match(await ok("exec", "uweb", "nslookup", "store.lnet"), new RegExp(`Address:\\s+${ip.replaceAll(".", "\\.")}$`, "m"));
  // No hosts line and no variables on a user-defined network, as with dockerd.
  assert.doesNotMatch(await ok("exec", "uweb", "cat", "/etc/hosts"), /store/);
  assert.ok(!(await ok("exec", "uweb", "env")).includes("STORE_"));
  // Another container on the network does not know the alias.
  const other = await d("run", "--rm", "--network", "lnet", "busybox", "nslookup", "store");
  assert.doesNotMatch(other.out, new RegExp(`Address:\\s+${ip.replaceAll(".", "\\.")}$`, "m"));
  // A missing target is no error on a user-defined network.
  await ok("run", "--rm", "--network", "lnet", "--link", "nosuch:x", "busybox", "true");
  // The alias follows the target: once it leaves the network the alias no longer resolves.
  await ok("network", "disconnect", "lnet", "udb");
  const gone = await d("exec", "uweb", "nslookup", "store");
  assert.doesNotMatch(gone.out, new RegExp(`Address:\\s+${ip.replaceAll(".", "\\.")}$`, "m"));
  await ok("rm", "-f", "uweb", "udb");
  await ok("network", "rm", "lnet");
});

test("a container on two user-defined networks resolves names on both (and its connect --link alias); others stay isolated", {
  skip,
}, async () => {
  await ok("network", "create", "n1");
  await ok("network", "create", "n2");
  await ok("run", "-d", "--name", "a1", "--network", "n1", "busybox", "sleep", "600");
  await ok("run", "-d", "--name", "b2", "--network", "n2", "busybox", "sleep", "600");
  await ok("run", "-d", "--name", "both", "--network", "n1", "busybox", "sleep", "600");
  await ok("network", "connect", "--link", "b2:bee", "n2", "both");
  assert.equal(await ok("inspect", "-f", '{{json (index .NetworkSettings.Networks "n2").Links}}', "both"), '["b2:bee"]');
  const a1 = await ok("inspect", "-f", '{{(index .NetworkSettings.Networks "n1").IPAddress}}', "a1");
  const b2 = await ok("inspect", "-f", '{{(index .NetworkSettings.Networks "n2").IPAddress}}', "b2");
  const has = (ip: string) => new RegExp(`Address:\\s+${ip.replaceAll(".", "\\.")}$`, "m");
  assert.match(await ok("exec", "both", "nslookup", "a1"), has(a1));
  assert.match(await ok("exec", "both", "nslookup", "b2"), has(b2));
  assert.match(await ok("exec", "both", "nslookup", "b2.n2"), has(b2));
  assert.match(await ok("exec", "both", "nslookup", "bee"), has(b2));
  // a1 is on n1 only: n2's names and both's alias mean nothing to it.
  assert.doesNotMatch((await d("exec", "a1", "nslookup", "b2")).out, has(b2));
  assert.doesNotMatch((await d("exec", "a1", "nslookup", "bee")).out, has(b2));
  await ok("rm", "-f", "a1", "b2", "both");
  await ok("network", "rm", "n1", "n2");
});
