/**
 * IPv6 published ports through berthd's userland proxy, end to end through the docker CLI
 * against a berthd of its own: TCP and UDP through [::1] to an IPv4 container, `docker port`,
 * `ps` and inspect as dockerd shows them, conflicts on IPv6, release at stop and removal,
 * reopening at live restore, and daemon.json `ipv6-proxy` / `userland-proxy` false.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import dgram from "node:dgram";
import net from "node:net";
import { after, before, test } from "node:test";
import { hostHasIpv6 } from "../../src/network/proxy.ts";
import { networkSkip, TestDaemon, waitFor } from "./_daemon.ts";

const daemon = new TestDaemon("netv6", 190);
const node = process.execPath;
const prefix = daemon.prefix;
const skip = networkSkip || (!(await hostHasIpv6()) ? "the host has no IPv6" : false);
const helpers = new Set<ChildProcess>();
const d = (...args: string[]) => daemon.d(...args);
const config = (extra: Record<string, unknown> = {}) => daemon.config(extra);
const start = () => daemon.start();
const stop = () => daemon.stop();

function curl(url: string): string {
  return spawnSync("curl", ["-sg", "-m", "3", url], { encoding: "utf8" }).stdout.trim();
}

/** Something listens on [::]:port (or [::1]:port): binding it ourselves fails. */
async function v6Listening(proto: "tcp" | "udp", port: number, host = "::"): Promise<boolean> {
  if (proto === "udp") {
    const s = dgram.createSocket({ type: "udp6", ipv6Only: true });
    return await new Promise((resolve) => {
      s.once("error", () => resolve(true));
      s.bind({ address: host, port, exclusive: true }, () => s.close(() => resolve(false)));
    });
  }
  const s = net.createServer();
  return await new Promise((resolve) => {
    s.once("error", () => resolve(true));
    s.listen({ host, port, ipv6Only: true, exclusive: true }, () => s.close(() => resolve(false)));
  });
}

/** A free port on both families. */
async function freePort(): Promise<number> {
  for (;;) {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, "0.0.0.0", () => r()));
    const p = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    if (!(await v6Listening("tcp", p)) && !(await v6Listening("udp", p))) return p;
  }
}

async function udpAsk(port: number, msg: string, host = "::1"): Promise<string> {
  const s = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  try {
    return await new Promise<string>((resolve) => {
      const t = setTimeout(() => resolve("(no reply)"), 3000);
      s.once("message", (m) => {
        clearTimeout(t);
        resolve(m.toString());
      });
      s.send(msg, port, host);
    });
  } finally {
    s.close();
  }
}

const httpd = ["sh", "-c", "mkdir -p /www && echo hello-v6 > /www/index.html && exec httpd -f -p 80 -h /www"];

before(async () => {
  if (skip) return;
  config();
  await start();
  assert.equal((await d("pull", "-q", "busybox")).code, 0);
});

after(async () => {
  if (skip) return;
  for (const h of helpers) h.kill("SIGKILL");
  await daemon.cleanup();
});

test("-p P:80 answers on [::1] through the proxy; port, ps and inspect list [::] as dockerd does", { skip }, async () => {
  const p = await freePort();
  const r = await d("run", "-d", "--name", "web", "-p", `${p}:80`, "busybox", ...httpd);
  assert.equal(r.code, 0, r.err);
  assert.ok(await waitFor(() => curl(`http://[::1]:${p}/`) === "hello-v6", 10000), "TCP through [::1]");
  assert.equal(curl(`http://127.0.0.1:${p}/`), "hello-v6", "IPv4 as before");
  // Many connections, each a full request/response with the half-close of the client.
  for (let i = 0; i < 20; i++) assert.equal(curl(`http://[::1]:${p}/`), "hello-v6");
  assert.equal((await d("port", "web")).out, `80/tcp -> 0.0.0.0:${p}\n80/tcp -> [::]:${p}`);
  assert.equal((await d("port", "web", "80")).out, `0.0.0.0:${p}\n[::]:${p}`);
  assert.equal((await d("ps", "--format", "{{.Ports}}", "--filter", "name=web")).out, `0.0.0.0:${p}->80/tcp, [::]:${p}->80/tcp`);
  assert.equal(
    (await d("inspect", "-f", "{{json .NetworkSettings.Ports}}", "web")).out,
    `{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"${p}"},{"HostIp":"::","HostPort":"${p}"}]}`,
  );
  // IPv4 stays DNAT (one rule per port, no IPv6 rule for the proxied port).
  const rules = spawnSync("sh", ["-c", "iptables-save -t nat; ip6tables-save -t nat"], { encoding: "utf8" }).stdout;
  assert.equal(rules.split("\n").filter((l) => l.includes(prefix) && l.includes(`--dport ${p} `)).length, 1);

  // Only the addresses asked for: [::1] alone, 127.0.0.1 alone (no IPv6 twin), [::] alone.
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  for (const [name, spec] of [
    ["lo6", `[::1]:${p1}:80`],
    ["lo4", `127.0.0.1:${p2}:80`],
    ["any6", `[::]:${p3}:80`],
  ] as const)
    assert.equal((await d("run", "-d", "--name", name, "-p", spec, "busybox", ...httpd)).code, 0, name);
  assert.equal((await d("port", "lo6")).out, `80/tcp -> [::1]:${p1}`);
  assert.equal((await d("port", "lo4")).out, `80/tcp -> 127.0.0.1:${p2}`);
  assert.equal((await d("port", "any6")).out, `80/tcp -> [::]:${p3}`);
  assert.equal((await d("ps", "--format", "{{.Ports}}", "--filter", "name=lo6")).out, `[::1]:${p1}->80/tcp`);
  assert.ok(await waitFor(() => curl(`http://[::1]:${p1}/`) === "hello-v6", 10000), "[::1] binding");
  assert.ok(await waitFor(() => curl(`http://[::1]:${p3}/`) === "hello-v6", 10000), "[::] binding");
  assert.equal(curl(`http://127.0.0.1:${p1}/`), "", "a [::1] port is not on IPv4");
  assert.equal(curl(`http://127.0.0.1:${p3}/`), "", "a [::] port is not on IPv4");
  assert.equal(await v6Listening("tcp", p2), false, "a 127.0.0.1 port has no IPv6 listener");

  // -P: the same random port on both families.
  assert.equal((await d("run", "-d", "--name", "pall", "-P", "--expose", "80", "busybox", ...httpd)).code, 0);
  const lines = (await d("port", "pall")).out.split("\n");
  const rp = lines[0]?.split(":").pop() ?? "";
  assert.deepEqual(lines, [`80/tcp -> 0.0.0.0:${rp}`, `80/tcp -> [::]:${rp}`]);
  assert.ok(await waitFor(() => curl(`http://[::1]:${rp}/`) === "hello-v6", 10000));
  assert.equal((await d("rm", "-f", "lo6", "lo4", "any6", "pall")).code, 0);
  for (const q of [p1, p3, Number(rp)]) assert.equal(await v6Listening("tcp", q), false, `${q} released`);
});

test("UDP through [::1]: a flow per client to the container's IPv4 address", { skip }, async () => {
  const p = await freePort();
  assert.equal((await d("run", "-d", "--name", "dns", "-p", `${p}:53/udp`, "busybox", "sleep", "300")).code, 0);
  assert.equal((await d("port", "dns")).out, `53/udp -> 0.0.0.0:${p}\n53/udp -> [::]:${p}`);
  // busybox has no UDP server: an echo server in the container's network namespace.
  const pid = (await d("inspect", "-f", "{{.State.Pid}}", "dns")).out;
  const echo = spawn(
    "nsenter",
    [
      "-t",
      pid,
      "-n",
      node,
      "-e",
      `const s=require("dgram").createSocket("udp4");s.on("message",(m,r)=>s.send("echo:"+m+" from "+r.address,r.port,r.address));s.bind(53,()=>console.log("up"))`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  helpers.add(echo);
  await new Promise((r) => echo.stdout?.once("data", r));
  try {
    const gw = (await d("inspect", "-f", "{{.NetworkSettings.Gateway}}", "dns")).out;
    assert.equal(await udpAsk(p, "one"), `echo:one from ${gw}`, "the container sees berthd's IPv4 socket");
    assert.equal(await udpAsk(p, "two"), `echo:two from ${gw}`);
    assert.match(await udpAsk(p, "four", "127.0.0.1"), /^echo:four from /, "IPv4 as before");
  } finally {
    echo.kill("SIGKILL");
    helpers.delete(echo);
  }
  assert.equal((await d("stop", "-t", "0", "dns")).code, 0);
  assert.ok(await waitFor(async () => !(await v6Listening("udp", p)), 2000), "released at stop");
  assert.equal((await d("rm", "dns")).code, 0);
});

test("conflicts on IPv6 are reported like IPv4 ones, and the IPv4 half is given back", { skip }, async () => {
  const p = await freePort();
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen({ host: "::", port: p, ipv6Only: true }, () => r()));
  const r = await d("run", "-d", "--name", "clash6", "-p", `${p}:80`, "busybox", "sleep", "300");
  await new Promise((res) => busy.close(res));
  assert.notEqual(r.code, 0);
  assert.match(r.err, new RegExp(`Bind for \\[::\\]:${p} failed: port is already allocated`));
  assert.equal(spawnSync("curl", ["-s", "-m", "2", `http://127.0.0.1:${p}/`]).status === 0, false);
  // The IPv4 port was not kept: something else can bind it now.
  const s4 = net.createServer();
  await new Promise<void>((res, rej) => s4.once("error", rej).listen({ host: "0.0.0.0", port: p, exclusive: true }, () => res()));
  await new Promise((res) => s4.close(res));

  // Two containers on the same [::1] port.
  const q = await freePort();
  assert.equal((await d("run", "-d", "--name", "first", "-p", `[::1]:${q}:80`, "busybox", ...httpd)).code, 0);
  const r2 = await d("run", "-d", "--name", "second", "-p", `[::1]:${q}:80`, "busybox", "sleep", "300");
  assert.notEqual(r2.code, 0);
  assert.match(r2.err, new RegExp(`Bind for \\[::1\\]:${q} failed: port is already allocated`));
  assert.ok(await waitFor(() => curl(`http://[::1]:${q}/`) === "hello-v6", 10000), "the first keeps its port");
  assert.equal((await d("rm", "-f", "first", "second", "clash6")).code, 0);
  assert.equal(await v6Listening("tcp", q, "::1"), false);
});

test("release at stop and removal, reopen at start and at live restore", { skip }, async () => {
  const p = await freePort();
  assert.equal((await d("run", "-d", "--name", "cycle", "-p", `${p}:80`, "busybox", ...httpd)).code, 0);
  assert.ok(await waitFor(() => curl(`http://[::1]:${p}/`) === "hello-v6", 10000));
  // A connection open at stop is closed with the proxy.
  const held = net.connect({ host: "::1", port: p });
  held.on("error", () => {});
  const closed = new Promise((r) => held.once("close", r));
  await new Promise((r) => held.once("connect", r));
  assert.equal((await d("stop", "-t", "0", "cycle")).code, 0);
  // The stop returns at the exit; the clean-ups (the ports first) follow at once.
  assert.ok(await waitFor(async () => !(await v6Listening("tcp", p)), 2000), "released at stop");
  await closed;
  assert.equal((await d("start", "cycle")).code, 0);
  assert.ok(await waitFor(() => curl(`http://[::1]:${p}/`) === "hello-v6", 10000), "back at start");

  // The container exits by itself: the port goes with it.
  const q = await freePort();
  assert.equal((await d("run", "-d", "--name", "brief", "-p", `${q}:80`, "busybox", "sleep", "1")).code, 0);
  assert.ok(await waitFor(async () => !(await v6Listening("tcp", q)), 10000), "released at exit");
  // run --rm: free as soon as it returns.
  const rm = await d("run", "--rm", "--name", "gone", "-p", `${q}:80`, "busybox", "true");
  assert.equal(rm.code, 0, rm.err);
  assert.equal(await v6Listening("tcp", q), false, "released by run --rm");

  // berthd restarts with the container running: the proxy comes back.
  await stop();
  assert.equal(await v6Listening("tcp", p), false, "no proxy without berthd");
  await start();
  assert.ok(await waitFor(() => curl(`http://[::1]:${p}/`) === "hello-v6", 10000), "reopened at live restore");
  assert.equal((await d("port", "cycle", "80")).out, `0.0.0.0:${p}\n[::]:${p}`);
  assert.equal((await d("rm", "-f", "cycle", "brief")).code, 0);
  assert.equal(await v6Listening("tcp", p), false, "released at removal");
});

test('daemon.json "ipv6-proxy": false and "userland-proxy": false publish on IPv4 only', { skip }, async () => {
  for (const key of ["ipv6-proxy", "userland-proxy"]) {
    await stop();
    config({ [key]: false });
    await start();
    const p = await freePort();
    assert.equal((await d("run", "-d", "--name", "v4only", "-p", `${p}:80`, "busybox", ...httpd)).code, 0);
    assert.equal((await d("port", "v4only")).out, `80/tcp -> 0.0.0.0:${p}`, key);
    assert.ok(await waitFor(() => curl(`http://127.0.0.1:${p}/`) === "hello-v6", 10000));
    assert.equal(await v6Listening("tcp", p), false, key);
    const bad = await d("create", "--name", "lo6", "-p", `[::1]:${p}:80`, "busybox");
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /publishing on IPv6 host addresses is not supported/);
    assert.equal((await d("rm", "-f", "v4only")).code, 0);
  }
  await stop();
  config();
  await start();
});
