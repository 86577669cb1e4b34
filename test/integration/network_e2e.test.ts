/**
 * Networking end to end through the docker CLI against a berthd of its own: the default
 * bridge with published ports, user-defined networks with DNS, internal networks, connect and
 * disconnect, events, a firewall reload, and SIGKILL of berthd with a container dying meanwhile.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import { after, before, test } from "node:test";
import { networkSkip as skip, TestDaemon, waitFor } from "./_daemon.ts";

const daemon = new TestDaemon("nete2e", 150);
const { root, exec, prefix, bridge, o2, o3 } = daemon;
let hostIp = "";
const d = (...args: string[]) => daemon.d(...args);
const start = () => daemon.start();
const stop = (signal: NodeJS.Signals) => daemon.stop(signal);

function curl(url: string): string {
  return spawnSync("curl", ["-s", "-m", "3", url], { encoding: "utf8" }).stdout.trim();
}

function rules(): string {
  return spawnSync("sh", ["-c", "iptables-save; ip6tables-save"], { encoding: "utf8" })
    .stdout.split("\n")
    .filter((l) => l.includes(prefix))
    .join("\n");
}

before(async () => {
  if (skip) return;
  mkdirSync(`${root}/www`, { recursive: true });
  writeFileSync(`${root}/www/index.html`, "hello from berth\n");
  daemon.config();
  await start();
  assert.equal((await d("pull", "-q", "busybox")).code, 0);
  const r = JSON.parse(spawnSync("ip", ["-j", "route", "get", "1.1.1.1"], { encoding: "utf8" }).stdout) as { prefsrc: string }[];
  hostIp = r[0]?.prefsrc ?? "";
});

after(async () => {
  if (skip) return;
  await daemon.cleanup({ pruneNetworks: true });
});

test("default bridge: published ports on 127.0.0.1 and the host address, port, ps, inspect, egress", { skip }, async () => {
  const r = await d(
    "run",
    "-d",
    "--name",
    "web",
    "-p",
    "80",
    "-p",
    "127.0.0.1::80",
    "-v",
    `${root}/www:/www`,
    "busybox",
    "httpd",
    "-f",
    "-p",
    "80",
    "-h",
    "/www",
  );
  assert.equal(r.code, 0, r.err);
  const ports = (await d("port", "web")).out.split("\n");
  const any =
    ports
      .find((l) => l.includes("0.0.0.0:"))
      ?.split(":")
      .pop() ?? "";
  const lo =
    ports
      .find((l) => l.includes("127.0.0.1:"))
      ?.split(":")
      .pop() ?? "";
  assert.ok(Number(any) > 0 && Number(lo) > 0, ports.join("\n"));
  assert.ok(await waitFor(() => curl(`http://127.0.0.1:${any}/`) === "hello from berth", 5000), "127.0.0.1:PORT");
  assert.equal(curl(`http://${hostIp}:${any}/`), "hello from berth", "host address:PORT");
  assert.equal(curl(`http://127.0.0.1:${lo}/`), "hello from berth");
  assert.equal(curl(`http://${hostIp}:${lo}/`), "", "a 127.0.0.1 port stays on loopback");
  const ip = (await d("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web")).out;
  assert.match(ip, new RegExp(`^10\\.${o2}\\.${o3}\\.\\d+$`));
  assert.equal(curl(`http://${ip}/`), "hello from berth", "host -> container IP");
  assert.match((await d("ps", "--format", "{{.Ports}}", "--filter", "name=web")).out, new RegExp(`0\\.0\\.0\\.0:${any}->80/tcp`));
  assert.match(
    (await d("inspect", "-f", "{{json .NetworkSettings.Ports}}", "web")).out,
    new RegExp(`"HostIp":"127.0.0.1","HostPort":"${lo}"`),
  );

  // A container reaches a server on the host's address, and another container's published port.
  const srv = net.createServer((s) => s.end("host says hi\n"));
  await new Promise<void>((res) => srv.listen(0, hostIp, () => res()));
  const sp = (srv.address() as net.AddressInfo).port;
  const out = await d("run", "--rm", "busybox", "sh", "-c", `nc ${hostIp} ${sp} </dev/null; wget -q -O- http://${hostIp}:${any}/`);
  srv.close();
  assert.equal(out.out, "host says hi\nhello from berth", out.err);
  // SECURITY: the 127.0.0.1 port is unreachable from another namespace, even through the gateway.
  const gw = (await d("inspect", "-f", "{{.NetworkSettings.Gateway}}", "web")).out;
  const probe = await d(
    "run",
    "--rm",
    "busybox",
    "sh",
    "-c",
    `wget -T 2 -q -O- http://127.0.0.1:${lo}/ || wget -T 2 -q -O- http://${gw}:${lo}/ || echo unreachable`,
  );
  assert.match(probe.out, /unreachable/);
  assert.doesNotMatch(probe.out, /hello/);

  // NAT to the outside (the Debian mirror), when the host itself reaches it.
  if (spawnSync("curl", ["-s", "-m", "5", "-o", "/dev/null", "http://deb.debian.org/debian/dists/bookworm/Release"]).status === 0) {
    const w = await d("run", "--rm", "busybox", "wget", "-q", "-O-", "http://deb.debian.org/debian/dists/bookworm/Release");
    assert.match(w.out, /Origin: Debian/, w.err);
  }
  assert.equal((await d("rm", "-f", "web")).code, 0);
  assert.doesNotMatch(rules(), /DNAT --to-destination/);
});

test("-P publishes EXPOSE and --expose on distinct random ports; a port in use fails the start cleanly", { skip }, async () => {
  assert.equal(
    (await d("run", "-d", "--name", "pall", "-P", "--expose", "7000", "--expose", "7001/udp", "busybox", "sleep", "300")).code,
    0,
  );
  const p = (await d("port", "pall")).out;
  assert.match(p, /7000\/tcp -> 0\.0\.0\.0:\d+/);
  assert.match(p, /7001\/udp -> 0\.0\.0\.0:\d+/);
  const busy = net.createServer();
  await new Promise<void>((res) => busy.listen(0, "0.0.0.0", () => res()));
  const port = (busy.address() as net.AddressInfo).port;
  const r = await d("run", "-d", "--name", "clash", "-p", `${port}:80`, "busybox", "sleep", "300");
  busy.close();
  assert.notEqual(r.code, 0);
  assert.match(r.err, new RegExp(`Bind for 0\\.0\\.0\\.0:${port} failed: port is already allocated`));
  assert.equal((await d("inspect", "-f", "{{.State.Status}}", "clash")).out, "created");
  // The start took a spare namespace (if one was ready) and unpinned it; at most the next spare is left.
  const unused = await daemon.unusedPins();
  assert.ok(unused.length <= 1, `namespaces left pinned: ${unused.join(" ")}`);
  assert.doesNotMatch(rules(), new RegExp(`--dport ${port} `));
  assert.equal((await d("start", "clash")).code, 0, "starts once the port is free");
  assert.equal((await d("rm", "-f", "clash", "pall")).code, 0);
});

test("user-defined networks: names and aliases resolve, not across networks; internal has no egress", { skip }, async () => {
  assert.equal((await d("network", "create", "--label", "e2e=1", "front")).code, 0);
  assert.equal(
    (await d("network", "create", "--subnet", `10.${o2}.${o3 + 50}.0/24`, "--gateway", `10.${o2}.${o3 + 50}.254`, "back")).code,
    0,
  );
  assert.equal((await d("network", "create", "--internal", "priv")).code, 0);
  assert.match((await d("network", "create", "front")).err, /already exists/);
  assert.equal((await d("network", "ls", "--filter", "label=e2e=1", "--format", "{{.Name}}")).out, "front");
  // As dockerd: a subnet given without a gateway shows none in IPAM.Config; bad subnets name themselves.
  assert.equal(
    (await d("network", "create", "--subnet", `10.${o2}.${o3 + 60}.0/24`, "--ip-range", `10.${o2}.${o3 + 60}.128/25`, "ranged")).code,
    0,
  );
  assert.equal(
    (await d("network", "inspect", "-f", "{{json .IPAM.Config}}", "ranged")).out,
    `[{"Subnet":"10.${o2}.${o3 + 60}.0/24","IPRange":"10.${o2}.${o3 + 60}.128/25"}]`,
  );
  assert.match((await d("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "front")).out, /^10\.\d+\.\d+\.1$/);
  assert.equal((await d("network", "rm", "ranged")).code, 0);
  assert.match((await d("network", "create", "--subnet", "bogus", "bogusnet")).err, /Invalid subnet bogus : invalid CIDR address: bogus/);
  // A bridge with its own MTU (the link option goes before the bridge's own), and any name.
  assert.equal((await d("network", "create", "-o", "com.docker.network.driver.mtu=1400", "odd name!")).code, 0);
  assert.equal((await d("run", "--rm", "--network", "odd name!", "busybox", "cat", "/sys/class/net/eth0/mtu")).out, "1400");
  assert.equal((await d("network", "rm", "odd name!")).code, 0);
  assert.match((await d("network", "create", "-d", "overlay", "ovl")).err, /This node is not a swarm manager/);
  assert.match(
    (await d("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", "back")).out,
    new RegExp(`10\\.${o2}\\.${o3 + 50}\\.0/24 10\\.${o2}\\.${o3 + 50}\\.254`),
  );

  assert.equal(
    (
      await d(
        "run",
        "-d",
        "--name",
        "db1",
        "--network",
        "back",
        "--network-alias",
        "database",
        "--ip",
        `10.${o2}.${o3 + 50}.10`,
        "busybox",
        "sleep",
        "300",
      )
    ).code,
    0,
  );
  const q = await d(
    "run",
    "--rm",
    "--network",
    "back",
    "busybox",
    "sh",
    "-c",
    "nslookup database && ping -c1 -W2 db1 && cat /etc/resolv.conf",
  );
  assert.equal(q.code, 0, q.err);
  assert.match(q.out, new RegExp(`Address: 10\\.${o2}\\.${o3 + 50}\\.10`));
  assert.match(q.out, new RegExp(`nameserver 10\\.${o2}\\.${o3 + 50}\\.254`));
  const cross = await d("run", "--rm", "--network", "front", "busybox", "nslookup", "db1");
  assert.notEqual(cross.code, 0);
  assert.doesNotMatch(cross.out, new RegExp(`10\\.${o2}\\.${o3 + 50}\\.10`));
  const dflt = await d("run", "--rm", "busybox", "nslookup", "db1");
  assert.doesNotMatch(dflt.out, new RegExp(`10\\.${o2}\\.${o3 + 50}\\.10`));

  // --internal: no route out, no forwarding of names (CVE-2024-29018).
  assert.equal((await d("run", "-d", "--name", "in1", "--network", "priv", "busybox", "sleep", "300")).code, 0);
  const srv = net.createServer((s) => s.end("leak\n"));
  await new Promise<void>((res) => srv.listen(0, hostIp, () => res()));
  const sp = (srv.address() as net.AddressInfo).port;
  const i = await d(
    "run",
    "--rm",
    "--network",
    "priv",
    "busybox",
    "sh",
    "-c",
    `nslookup in1; nslookup deb.debian.org; nc -w 2 ${hostIp} ${sp} </dev/null; ip route`,
  );
  srv.close();
  assert.match(i.out, /Name:\s+in1/);
  assert.doesNotMatch(i.out, /leak/);
  assert.doesNotMatch(i.out, /default/);
  assert.doesNotMatch(i.out, /Name:\s+deb\.debian\.org/);

  // rm refused while in use; connect and disconnect on a running container.
  assert.match((await d("network", "rm", "back")).err, /error while removing network: network back id [0-9a-f]+ has active endpoints/);
  assert.equal((await d("network", "connect", "--alias", "db-front", "front", "db1")).code, 0);
  assert.match((await d("exec", "db1", "ip", "-o", "addr")).out, /eth1/);
  const viaFront = await d("run", "--rm", "--network", "front", "busybox", "nslookup", "db-front");
  assert.equal(viaFront.code, 0, viaFront.out);
  assert.match((await d("network", "inspect", "-f", "{{range .Containers}}{{.Name}}{{end}}", "front")).out, /db1/);
  assert.equal((await d("network", "disconnect", "front", "db1")).code, 0);
  assert.doesNotMatch((await d("exec", "db1", "ip", "-o", "addr")).out, /eth1/);
  assert.notEqual((await d("network", "disconnect", "front", "db1")).code, 0);
  assert.equal((await d("network", "disconnect", "-f", "front", "db1")).code, 0);

  assert.equal((await d("rm", "-f", "db1", "in1")).code, 0);
  const pr = await d("network", "prune", "-f");
  for (const n of ["front", "back", "priv"]) assert.match(pr.out, new RegExp(n));
  const ev = await d(
    "events",
    "--since",
    "10m",
    "--until",
    String(Math.floor(Date.now() / 1000) + 2),
    "--filter",
    "type=network",
    "--format",
    "{{.Action}} {{.Actor.Attributes.name}}",
  );
  for (const e of ["create front", "connect back", "connect front", "disconnect front", "destroy back"])
    assert.match(ev.out, new RegExp(e));
});

test("--network none, host, container:<name>; --hostname, --mac-address; --link", { skip }, async () => {
  const none = await d("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link");
  assert.match(none.out, /lo:/);
  assert.doesNotMatch(none.out, /eth0/);
  const host = await d("run", "--rm", "--network", "host", "busybox", "ip", "-o", "addr");
  assert.match(host.out, new RegExp(hostIp.replaceAll(".", "\\.")));
  assert.equal(
    (
      await d(
        "run",
        "-d",
        "--name",
        "srv",
        "--hostname",
        "srvhost",
        "--mac-address",
        "02:42:12:34:56:78",
        "-v",
        `${root}/www:/www`,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
      )
    ).code,
    0,
  );
  assert.equal((await d("exec", "srv", "hostname")).out, "srvhost");
  assert.match((await d("exec", "srv", "ip", "link", "show", "eth0")).out, /02:42:12:34:56:78/);
  assert.match((await d("exec", "srv", "grep", "srvhost", "/etc/hosts")).out, /^10\.\d+\.\d+\.\d+\tsrvhost$/);
  const joined = await d("run", "--rm", "--network", "container:srv", "busybox", "wget", "-q", "-O-", "http://127.0.0.1/");
  assert.equal(joined.out, "hello from berth", joined.err);
  // What a shared namespace cannot have, and published ports on the host's network, in dockerd's words.
  for (const [args, re] of [
    [["--hostname", "y"], /conflicting options: hostname and the network mode/],
    [["--dns", "9.9.9.9"], /conflicting options: dns and the network mode/],
    [["--add-host", "a:1.2.3.4"], /conflicting options: custom host-to-IP mapping and the network mode/],
    [["-p", "8080:80"], /conflicting options: port publishing and the container type network mode/],
    [["--expose", "80"], /conflicting options: port exposing and the container type network mode/],
  ] as const) {
    const r = await d("run", "--rm", "--network", "container:srv", ...args, "busybox", "true");
    assert.equal(r.code, 125, args.join(" "));
    assert.match(r.err, re);
  }
  const hostPorts = await d("run", "--rm", "--network", "host", "-p", "8080:80", "busybox", "true");
  assert.equal(hostPorts.code, 0, hostPorts.err);
  assert.match(hostPorts.err, /WARNING: Published ports are discarded when using host network mode/);
  assert.equal((await d("run", "-d", "--name", "srv-host", "--network", "host", "busybox", "sleep", "30")).code, 0);
  assert.match(
    (await d("network", "connect", "bridge", "srv-host")).err,
    /container sharing network namespace with another container or host cannot be connected to any other network/,
  );
  assert.equal((await d("rm", "-f", "srv-host")).code, 0);
  const nosuch = await d("run", "--rm", "--network", "container:nosuch", "busybox", "true");
  assert.equal(nosuch.code, 125);
  assert.match(nosuch.err, /No such container: nosuch/);
  const link = await d("run", "--rm", "--link", "srv:web", "busybox", "wget", "-q", "-O-", "http://web/");
  assert.equal(link.out, "hello from berth", link.err);
  assert.equal((await d("rm", "-f", "srv")).code, 0);
});

test("rules survive a firewall reload", { skip }, async () => {
  const any = await d(
    "run",
    "-d",
    "--name",
    "fw",
    "-p",
    "80",
    "-v",
    `${root}/www:/www`,
    "busybox",
    "httpd",
    "-f",
    "-p",
    "80",
    "-h",
    "/www",
  );
  assert.equal(any.code, 0, any.err);
  const port = (await d("port", "fw", "80")).out.split("\n")[0]?.split(":").pop() ?? "";
  assert.ok(await waitFor(() => curl(`http://127.0.0.1:${port}/`) === "hello from berth", 5000));
  spawnSync("iptables", ["-w", "-t", "nat", "-F", `${prefix}-DNAT`]);
  spawnSync("iptables", ["-w", "-D", "FORWARD", "-j", `${prefix}-FORWARD`]);
  try {
    assert.ok(await waitFor(() => curl(`http://127.0.0.1:${port}/`) === "hello from berth", 15000), "rules put back");
    // The jumps from the built-in chains come back in the same repair, maybe a moment later.
    assert.ok(await waitFor(() => new RegExp(`-A FORWARD -j ${prefix}-FORWARD`).test(rules()), 15000), rules());
  } finally {
    assert.equal((await d("rm", "-f", "fw")).code, 0);
  }
});

test("SIGKILL of berthd: a container that dies meanwhile leaves no rule, a running one keeps its port", { skip }, async () => {
  assert.equal(
    (await d("run", "-d", "--name", "keep", "-p", "80", "-v", `${root}/www:/www`, "busybox", "httpd", "-f", "-p", "80", "-h", "/www")).code,
    0,
  );
  assert.equal((await d("run", "-d", "--name", "dies", "-p", "80", "busybox", "sleep", "300")).code, 0);
  const keepPort = (await d("port", "keep", "80")).out.split(":").pop() ?? "";
  const diesPort = (await d("port", "dies", "80")).out.split(":").pop() ?? "";
  const diesPid = Number((await d("inspect", "-f", "{{.State.Pid}}", "dies")).out);
  const diesNetns = (await d("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "dies")).out;
  assert.ok(diesNetns.startsWith(`${exec}/netns/`) && existsSync(diesNetns), diesNetns);
  await stop("SIGKILL");
  process.kill(diesPid, "SIGKILL");
  await new Promise((r) => setTimeout(r, 500));
  await start();
  assert.ok(await waitFor(async () => (await d("inspect", "-f", "{{.State.Status}}", "dies")).out === "exited", 10000));
  assert.doesNotMatch(rules(), new RegExp(`--dport ${diesPort} `));
  assert.equal(existsSync(diesNetns), false, "the dead container's namespace is unpinned");
  assert.equal(curl(`http://127.0.0.1:${keepPort}/`), "hello from berth");
  assert.match(rules(), new RegExp(`--dport ${keepPort} `));
  assert.equal((await d("rm", "-f", "keep", "dies")).code, 0);
  assert.doesNotMatch(rules(), /DNAT --to-destination/);
});

test("a clean stop with no container leaves no rule and no bridge", { skip }, async () => {
  const ps = await d("ps", "-aq");
  if (ps.out) await d("rm", "-f", ...ps.out.split("\n"));
  await stop("SIGTERM");
  assert.equal(rules(), "");
  assert.notEqual(spawnSync("ip", ["link", "show", bridge]).status, 0);
  await start();
  assert.match(rules(), new RegExp(`${prefix}-FORWARD`));
});
