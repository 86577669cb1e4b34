/**
 * Legacy links (`--link`, `rm -l`) through the docker CLI against a berthd of its own, checked
 * against what dockerd 20.10 does: on the default bridge an /etc/hosts line and the
 * `ALIAS_*` variables, `HostConfig.Links` as `/target:/me/alias`, targets required at create
 * and running at start, `rm -l me/alias` removing the link live; on a user-defined network a
 * DNS alias that only the linking container resolves.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { networkSkip as skip, TestDaemon } from "./_daemon.ts";

const daemon = new TestDaemon("links", 200);
const berth = new URL("../../bin/berth", import.meta.url).pathname;
const run = (cmd: string, args: string[]) => daemon.client(cmd, args);
const d = (...args: string[]) => daemon.d(...args);

async function ok(...args: string[]): Promise<string> {
  const r = await d(...args);
  assert.equal(r.code, 0, `docker ${args.join(" ")}: ${r.err}`);
  return r.out;
}

before(async () => {
  if (skip) return;
  daemon.config();
  await daemon.start();
  await ok("pull", "-q", "busybox");
});

after(async () => {
  if (skip) return;
  await daemon.cleanup({ pruneNetworks: true });
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
  await ok("create", "--name", "linker", "--link", "asleep:s", "busybox", "true");
  const start = await d("start", "linker");
  assert.notEqual(start.code, 0);
  assert.match(start.err, /Cannot link to a non running container: \/asleep AS \/linker\/s/);
  assert.equal(await ok("inspect", "-f", "{{.State.Running}}", "linker"), "false");
  // A spare namespace the start took is unpinned; at most the next spare is left.
  const unused = await daemon.unusedPins();
  assert.ok(unused.length <= 1, `namespaces left pinned: ${unused.join(" ")}`);
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
