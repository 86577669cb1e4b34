/**
 * NetworkService against the real parts: pinned network namespaces, the CNI plugins, iptables,
 * the DNS server on each network's gateway. "Containers" here are busybox processes started
 * in the pinned namespace with nsenter, as runc would join it.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { after, before, test } from "node:test";
import { Db, nullLogger, RealHost, randomId } from "../../src/base/mod.ts";
import { type ContainerNetSpec, NetworkService } from "../../src/network/mod.ts";
import { waitFor } from "./_wait.ts";

const tag = (process.pid % 10000).toString();
const root = `/var/tmp/berth-nettest-${process.pid}`;
const exec = `/run/berth-nettest-${process.pid}`;
const prefix = `BNT${tag}`;
const bridge = `bnt${tag}`;
// Unique /24s per run so that parallel runs and other daemons do not collide.
const o2 = 200 + (process.pid % 50);
const o3 = process.pid % 100;
const bip = `10.${o2}.${o3}.1/24`;
const skip = process.getuid?.() !== 0 ? "needs root" : !existsSync("/usr/lib/cni/bridge") ? "needs containernetworking-plugins" : false;

let db: Db;
let svc: NetworkService;
const events: string[] = [];
const procs: ChildProcess[] = [];
const bridges: string[] = [bridge];
const running = new Map<string, ContainerNetSpec>();
let hostIp = "";

function make(): NetworkService {
  const s = new NetworkService({
    host: new RealHost(),
    db,
    dataRoot: root,
    execRoot: exec,
    log: nullLogger,
    publish: (a, _id, attrs) => events.push(`${a} ${attrs.name} ${attrs.container ?? ""}`.trim()),
    config: { bip, bridge, defaultAddressPools: [{ base: `10.${o2}.${o3 + 50}.0/24`, size: 26 }] },
    chainPrefix: prefix,
    firewallCheckMs: 0,
  });
  s.containers = {
    resolve: (ref) => {
      const c = [...running.values()].find((x) => x.id === ref || x.name === ref || x.id.startsWith(ref));
      return c ? { ...c, running: true } : undefined;
    },
  };
  return s;
}

function spec(name: string, extra: Partial<ContainerNetSpec> = {}): ContainerNetSpec {
  const id = randomId();
  const s = { id, name, hostname: id.slice(0, 12), networkMode: "bridge", ...extra };
  running.set(id, s);
  return s;
}

/**
 * Runs a command in a pinned namespace and returns its result. Asynchronous: the DNS server
 * and test servers live in this process and must keep answering meanwhile.
 */
function inNs(path: string, ...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile("nsenter", [`--net=${path}`, ...args], { encoding: "utf8", timeout: 15000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: unknown }).code as number) || -1 : 0, out: `${stdout ?? ""}${stderr ?? ""}` });
    });
  });
}

function httpd(path: string, text: string): void {
  const dir = `${root}/www-${procs.length}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/index.html`, text);
  const p = spawn("nsenter", [`--net=${path}`, "busybox", "httpd", "-f", "-p", "80", "-h", dir], { stdio: "ignore" });
  procs.push(p);
}

function curl(url: string): string {
  return spawnSync("curl", ["-s", "-m", "3", url], { encoding: "utf8" }).stdout.trim();
}

async function curlIn(ns: string, url: string): Promise<string> {
  return (await inNs(ns, "curl", "-s", "-m", "3", url)).out.trim();
}

function rules(): string {
  return spawnSync("sh", ["-c", "iptables-save; ip6tables-save"], { encoding: "utf8" })
    .stdout.split("\n")
    .filter((l) => l.includes(prefix))
    .join("\n");
}

before(async () => {
  if (skip) return;
  mkdirSync(root, { recursive: true });
  db = new Db(`${root}/berth.db`);
  svc = make();
  await svc.init();
  const r = JSON.parse(spawnSync("ip", ["-j", "route", "get", "1.1.1.1"], { encoding: "utf8" }).stdout) as { prefsrc: string }[];
  hostIp = r[0]?.prefsrc ?? "";
});

after(async () => {
  if (skip) return;
  for (const p of procs) p.kill("SIGKILL");
  for (const id of running.keys()) await svc.unregister(id).catch(() => {});
  for (const n of svc.list()) if (!["bridge", "host", "none"].includes(n.Name)) await svc.remove(n.Id).catch(() => {});
  await svc.shutdown();
  await svc.firewall.removeAll();
  for (const b of bridges) spawnSync("ip", ["link", "del", b]);
  db.close();
  spawnSync("sh", ["-c", `grep -o ' ${exec}[^ ]*' /proc/mounts | xargs -r -n1 umount -l`]);
  rmSync(root, { recursive: true, force: true });
  rmSync(exec, { recursive: true, force: true });
});

test("predefined networks and the default bridge", { skip }, () => {
  const names = svc.list().map((n) => n.Name);
  for (const n of ["bridge", "host", "none"]) assert.ok(names.includes(n));
  const br = svc.inspect("bridge");
  assert.equal(br.Driver, "bridge");
  assert.equal(br.IPAM.Config[0]?.Subnet, `10.${o2}.${o3}.0/24`);
  assert.equal(br.Options["com.docker.network.bridge.name"], bridge);
  assert.equal(svc.inspect("none").Driver, "null");
  const ip = spawnSync("ip", ["-j", "addr", "show", "dev", bridge], { encoding: "utf8" }).stdout;
  assert.match(ip, new RegExp(`10\\.${o2}\\.${o3}\\.1`));
  assert.match(rules(), new RegExp(`-A FORWARD -j ${prefix}-FORWARD`));
});

test("default bridge: host reaches the container, published ports on 127.0.0.1 and the host address, egress", { skip }, async () => {
  const a = spec("web", {
    portBindings: { "80/tcp": [{ HostPort: "" }, { HostIp: "127.0.0.1", HostPort: "" }] },
    exposedPorts: { "80/tcp": {}, "443/tcp": {} },
  });
  const r = await svc.attach(a);
  assert.ok(typeof r.netns === "object");
  const path = r.netns.path;
  const ip = r.networkSettings.IPAddress;
  assert.match(ip, new RegExp(`^10\\.${o2}\\.${o3}\\.`));
  assert.equal(r.networkSettings.Gateway, `10.${o2}.${o3}.1`);
  assert.ok(r.hosts.includes(`${ip}\t${a.hostname}`));
  assert.doesNotMatch(r.resolvConf, /nameserver 127\./);
  const p80 = Number(r.networkSettings.Ports["80/tcp"]?.[0]?.HostPort);
  const p81 = Number(r.networkSettings.Ports["80/tcp"]?.[1]?.HostPort);
  assert.ok(p80 > 0 && p81 > 0 && p80 !== p81);
  assert.equal(r.networkSettings.Ports["80/tcp"]?.[1]?.HostIp, "127.0.0.1");
  assert.equal(r.networkSettings.Ports["443/tcp"], null);
  httpd(path, "hello from web\n");
  assert.ok(await waitFor(() => curl(`http://${ip}/`) === "hello from web"), "host -> container IP");
  assert.equal(curl(`http://127.0.0.1:${p80}/`), "hello from web", "127.0.0.1:PORT");
  assert.equal(curl(`http://${hostIp}:${p80}/`), "hello from web", "host address:PORT");
  assert.equal(curl(`http://127.0.0.1:${p81}/`), "hello from web", "port published on 127.0.0.1");
  assert.equal(curl(`http://${hostIp}:${p81}/`), "", "a 127.0.0.1 port is not on the host address");

  // Egress: a TCP server on the host's address, and NAT to the outside when there is a route.
  const srv = net.createServer((s) => s.end("outside\n"));
  await new Promise<void>((res) => srv.listen(0, hostIp, () => res()));
  const sp = (srv.address() as net.AddressInfo).port;
  assert.equal((await inNs(path, "busybox", "nc", "-w", "3", hostIp, String(sp))).out.trim(), "outside");
  srv.close();
  const mirror = spawnSync(
    "curl",
    ["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://deb.debian.org/debian/dists/bookworm/Release"],
    { encoding: "utf8" },
  ).stdout;
  if (mirror === "200") {
    const addr = spawnSync("getent", ["hosts", "deb.debian.org"], { encoding: "utf8" }).stdout.split(/\s+/)[0] ?? "";
    const code = (
      await inNs(
        path,
        "curl",
        "-s",
        "-m",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Host: deb.debian.org",
        `http://${addr}/debian/dists/bookworm/Release`,
      )
    ).out;
    assert.equal(code, "200", "NAT to the Debian mirror");
  }

  // SECURITY: another namespace cannot reach the 127.0.0.1 port (neither its own loopback nor the gateway).
  const b = spec("other");
  const rb = await svc.attach(b);
  assert.ok(typeof rb.netns === "object");
  assert.equal(await curlIn(rb.netns.path, `http://127.0.0.1:${p81}/`), "");
  assert.equal(await curlIn(rb.netns.path, `http://${rb.networkSettings.Gateway}:${p81}/`), "");
  assert.equal(await curlIn(rb.netns.path, `http://${hostIp}:${p80}/`), "hello from web", "hairpin through the host address");
  assert.match(rules(), new RegExp(`-A ${prefix}-PREROUTING -d 127.0.0.0/8 -i ${bridge} -j DROP`));

  // Firewall reload: flushed rules come back.
  spawnSync("iptables", ["-w", "-t", "nat", "-F", `${prefix}-DNAT`]);
  assert.equal(curl(`http://127.0.0.1:${p80}/`), "");
  assert.equal(await svc.firewall.check(), true);
  assert.equal(curl(`http://127.0.0.1:${p80}/`), "hello from web");
  spawnSync("iptables", ["-w", "-D", "FORWARD", "-j", `${prefix}-FORWARD`]);
  assert.equal(await svc.firewall.check(), true);
  assert.equal(await svc.firewall.check(), false);

  await svc.detach(b.id);
  await svc.detach(a.id);
  assert.equal(existsSync(path), false, "netns unpinned");
  assert.doesNotMatch(rules(), /DNAT --to-destination/);
  assert.equal(curl(`http://127.0.0.1:${p80}/`), "");
  assert.ok(events.includes(`connect bridge ${a.id}`) && events.includes(`disconnect bridge ${a.id}`));
});

test("a port in use fails the start and leaves nothing behind", { skip }, async () => {
  const busy = net.createServer();
  await new Promise<void>((res) => busy.listen(0, "0.0.0.0", () => res()));
  const port = (busy.address() as net.AddressInfo).port;
  const before = spawnSync("ip", ["-o", "link"], { encoding: "utf8" }).stdout.split("\n").length;
  const c = spec("conflict", { portBindings: { "80/tcp": [{ HostPort: String(port) }] } });
  await assert.rejects(svc.attach(c), (e: Error) => {
    assert.match(
      e.message,
      new RegExp(
        `driver failed programming external connectivity on endpoint conflict .*Bind for 0.0.0.0:${port} failed: port is already allocated`,
      ),
    );
    return true;
  });
  busy.close();
  assert.equal(existsSync(`${exec}/netns/${c.id}`), false);
  assert.equal(spawnSync("ip", ["-o", "link"], { encoding: "utf8" }).stdout.split("\n").length, before, "no veth left");
  assert.doesNotMatch(rules(), new RegExp(`--dport ${port}`));
  assert.equal(svc.settings(c.id).Networks.bridge?.IPAddress, "");
  // The same port can be used once free; ranges pick the first free port.
  const d = spec("range", { portBindings: { "80/tcp": [{ HostPort: `${port}-${port + 2}` }] } });
  const r = await svc.attach(d);
  assert.equal(r.networkSettings.Ports["80/tcp"]?.[0]?.HostPort, String(port));
  await svc.detach(d.id);
});

test("user-defined networks: DNS for names and aliases, no resolution across networks, internal has no egress", { skip }, async () => {
  const n1 = await svc.create({ Name: `nt1-${tag}`, IPAM: { Config: [{ Subnet: `10.${o2}.${o3 + 100}.0/24` }] }, Labels: { t: "1" } });
  const n2 = await svc.create({ Name: `nt2-${tag}`, Internal: true });
  bridges.push(`br-${n1.Id.slice(0, 12)}`, `br-${n2.Id.slice(0, 12)}`);
  await assert.rejects(svc.create({ Name: `nt1-${tag}` }), /already exists/);
  await assert.rejects(svc.create({ Name: `x-${tag}`, IPAM: { Config: [{ Subnet: `10.${o2}.${o3 + 100}.128/25` }] } }), /overlaps/);
  const i1 = svc.inspect(`nt1-${tag}`);
  // A subnet given without a gateway: IPAM.Config shows none (as dockerd); the first address is it.
  assert.equal(i1.IPAM.Config[0]?.Gateway, undefined);
  assert.equal(svc.inspect(n2.Id).IPAM.Config[0]?.Gateway !== undefined, true, "an allocated subnet shows its gateway");
  assert.equal(svc.inspect(n2.Id).Internal, true);
  assert.match(
    svc.inspect(n2.Id).IPAM.Config[0]?.Subnet ?? "",
    new RegExp(`^10\\.${o2}\\.${o3 + 50}\\.0/26$`),
    "from default-address-pools",
  );
  assert.deepEqual(
    svc.list(new Map([["label", ["t=1"]]])).map((n) => n.Name),
    [`nt1-${tag}`],
  );

  const a = spec("alpha", {
    networkMode: `nt1-${tag}`,
    endpointsConfig: { [`nt1-${tag}`]: { Aliases: ["db"], IPAMConfig: { IPv4Address: `10.${o2}.${o3 + 100}.50` } } },
  });
  const b = spec("beta", { networkMode: `nt1-${tag}` });
  const c = spec("gamma", { networkMode: `nt2-${tag}` });
  const ra = await svc.attach(a);
  const rb = await svc.attach(b);
  const rc = await svc.attach(c);
  assert.ok(typeof ra.netns === "object" && typeof rb.netns === "object" && typeof rc.netns === "object");
  assert.equal(ra.networkSettings.Networks[`nt1-${tag}`]?.IPAddress, `10.${o2}.${o3 + 100}.50`);
  assert.equal(ra.networkSettings.IPAddress, "", "legacy fields only for the default bridge");
  assert.match(rb.resolvConf, new RegExp(`nameserver 10\\.${o2}\\.${o3 + 100}\\.1`));
  assert.deepEqual(
    ra.networkSettings.Networks[`nt1-${tag}`]?.DNSNames,
    ["alpha", "db", a.id.slice(0, 12), a.hostname].filter((v, i, l) => l.indexOf(v) === i),
  );
  const gw = `10.${o2}.${o3 + 100}.1`;
  const look = async (ns: string, name: string, server = gw) => (await inNs(ns, "busybox", "nslookup", name, server)).out;
  assert.match(await look(rb.netns.path, "alpha"), new RegExp(`10\\.${o2}\\.${o3 + 100}\\.50`));
  assert.match(await look(rb.netns.path, "db"), new RegExp(`10\\.${o2}\\.${o3 + 100}\\.50`));
  assert.match(await look(rb.netns.path, a.id.slice(0, 12)), new RegExp(`10\\.${o2}\\.${o3 + 100}\\.50`));
  assert.equal((await inNs(rb.netns.path, "busybox", "ping", "-c1", "-W2", `10.${o2}.${o3 + 100}.50`)).code, 0);
  // No resolution across networks: gamma asks nt1's server.
  assert.doesNotMatch(await look(rc.netns.path, "alpha"), new RegExp(`10\\.${o2}\\.${o3 + 100}\\.50`));
  // Internal: no route out, and its DNS server does not forward (no leak).
  const gw2 = svc.inspect(n2.Id).IPAM.Config[0]?.Gateway ?? "";
  assert.notEqual((await inNs(rc.netns.path, "busybox", "nc", "-w", "2", hostIp, "22")).code, 0);
  assert.doesNotMatch((await inNs(rc.netns.path, "ip", "route")).out, /default/);
  assert.match(await look(rc.netns.path, "gamma", gw2), /Address/);
  assert.match(await look(rc.netns.path, "deb.debian.org", gw2), /NXDOMAIN|can't resolve/);
  // Live: a container that goes away stops resolving.
  await svc.detach(a.id);
  assert.doesNotMatch(await look(rb.netns.path, "alpha"), new RegExp(`10\\.${o2}\\.${o3 + 100}\\.50`));

  await assert.rejects(svc.remove(`nt1-${tag}`), /has active endpoints/);
  await assert.rejects(svc.remove("bridge"), /pre-defined network/);
  assert.equal(Object.keys(svc.inspect(`nt1-${tag}`).Containers).length, 1);

  // connect / disconnect on a running container.
  await svc.connect(`nt2-${tag}`, b.id, { Aliases: ["b2"] });
  const s = svc.settings(b.id);
  assert.ok(s.Networks[`nt2-${tag}`]?.IPAddress);
  assert.match((await inNs(rb.netns.path, "ip", "-o", "addr")).out, /eth1/);
  assert.match(await look(rc.netns.path, "b2", gw2), new RegExp(s.Networks[`nt2-${tag}`]?.IPAddress ?? "x"));
  await assert.rejects(svc.connect(`nt2-${tag}`, b.id), /already exists/);
  await svc.disconnect(`nt2-${tag}`, b.id);
  assert.doesNotMatch((await inNs(rb.netns.path, "ip", "-o", "addr")).out, /eth1/);
  await assert.rejects(svc.disconnect(`nt2-${tag}`, b.id), /is not connected/);
  await svc.disconnect(`nt2-${tag}`, b.id, true);

  await svc.detach(b.id);
  await svc.detach(c.id);
  await svc.remove(`nt1-${tag}`);
  assert.deepEqual((await svc.prune(new Map([["label", ["nothing"]]]))).NetworksDeleted, []);
  assert.deepEqual((await svc.prune()).NetworksDeleted, [`nt2-${tag}`]);
  assert.ok(events.includes(`create nt1-${tag}`) && events.includes(`destroy nt1-${tag}`));
  assert.equal(spawnSync("ip", ["link", "show", `br-${n1.Id.slice(0, 12)}`]).status, 1, "bridge removed");
});

test("none, host and container:<id> modes", { skip }, async () => {
  const n = spec("nonet", { networkMode: "none" });
  const r = await svc.attach(n);
  // The runtime makes the namespace (loopback only): nothing pinned, no CNI.
  assert.equal(r.netns, "private");
  assert.equal(existsSync(`${exec}/netns/${n.id}`), false);
  assert.deepEqual(Object.keys(r.networkSettings.Networks), ["none"]);
  const h = spec("hostnet", { networkMode: "host" });
  assert.equal((await svc.attach(h)).netns, "host");
  const owner = spec("owner");
  const ro = await svc.attach(owner);
  const j = spec("joiner", { networkMode: `container:${owner.name}` });
  const rj = await svc.attach(j);
  assert.deepEqual(rj.netns, ro.netns);
  for (const x of [n, h, j, owner]) await svc.detach(x.id);
});

test("at exit the namespace is unpinned first: the kernel removes the veth, the address is freed; a shared namespace keeps its interface until its owner's teardown", {
  skip,
}, async () => {
  const hostEnds = () =>
    spawnSync("ip", ["-o", "link", "show", "master", bridge], { encoding: "utf8" }).stdout.trim().split("\n").filter(Boolean).length;
  // host-local keeps one file per reserved address, named by it.
  const leases = () => spawnSync("sh", ["-c", `ls ${root}/network/ipam/*/ 2>/dev/null`], { encoding: "utf8" }).stdout.split("\n");
  const before = hostEnds();
  const a = spec("exits");
  const ra = await svc.attach(a);
  assert.ok(typeof ra.netns === "object");
  const ip = ra.networkSettings.IPAddress;
  assert.equal(hostEnds(), before + 1);
  assert.ok(leases().includes(ip), "the address is reserved");
  await svc.detach(a.id, { exited: true });
  assert.equal(existsSync(ra.netns.path), false, "unpinned");
  assert.ok(!leases().includes(ip), "the address is free once detach returns");
  assert.ok(await waitFor(() => hostEnds() === before, 3000), "the kernel removed the veth with the namespace");

  // container:<owner>: the owner's exit must not leave the joiner's interface with a freed address.
  const owner = spec("owner2");
  const ro = await svc.attach(owner);
  assert.ok(typeof ro.netns === "object");
  const j = spec("joiner2", { networkMode: `container:${owner.name}` });
  await svc.attach(j);
  await svc.detach(owner.id, { exited: true });
  assert.equal(hostEnds(), before, "the owner's veth was deleted at once (the namespace may live on in the joiner)");
  await svc.detach(j.id, { exited: true });
});

test("after a crash, restart removes the rules and namespaces of containers that are gone", { skip }, async () => {
  const a = spec("crashy", { portBindings: { "80/tcp": [{ HostPort: "" }] } });
  const r = await svc.attach(a);
  assert.ok(typeof r.netns === "object");
  const port = r.networkSettings.Ports["80/tcp"]?.[0]?.HostPort ?? "";
  // berthd dies: its sockets close, everything else stays.
  await svc.shutdown();
  assert.match(rules(), new RegExp(`--dport ${port}`));
  svc = make();
  await svc.init();
  assert.match(rules(), new RegExp(`--dport ${port}`), "still running containers keep their ports");
  await svc.reconcile(() => false);
  assert.doesNotMatch(rules(), new RegExp(`--dport ${port}`));
  assert.equal(existsSync(r.netns.path), false);
  assert.equal(
    spawnSync("sh", ["-c", `ls ${root}/network/ipam/*/ 2>/dev/null | grep -c '^10\\.'`], { encoding: "utf8" }).stdout.trim(),
    "0",
  );
  // With nothing running, a clean shutdown removes berth's chains and bridges; init restores them.
  await svc.shutdown();
  assert.equal(rules(), "");
  assert.equal(spawnSync("ip", ["link", "show", bridge]).status, 1);
  svc = make();
  await svc.init();
  assert.match(rules(), new RegExp(`${prefix}-FORWARD`));
});

test("IPv6 networks and --ip-range", { skip }, async () => {
  const v6ok =
    spawnSync("sh", ["-c", "test -e /proc/net/if_inet6 && test $(cat /proc/sys/net/ipv6/conf/all/disable_ipv6) = 0"]).status === 0;
  const sub6 = `fd${(process.pid % 256).toString(16).padStart(2, "0")}:${tag}::/64`;
  if (!v6ok) {
    await assert.rejects(svc.create({ Name: `v6-${tag}`, EnableIPv6: true }), /IPv6 is not available on this host/);
    return;
  }
  const n = await svc.create({
    Name: `v6-${tag}`,
    EnableIPv6: true,
    IPAM: { Config: [{ Subnet: `10.${o2}.${o3 + 101}.0/24`, IPRange: `10.${o2}.${o3 + 101}.64/26` }, { Subnet: sub6 }] },
  });
  bridges.push(`br-${n.Id.slice(0, 12)}`);
  const i = svc.inspect(n.Id);
  assert.equal(i.EnableIPv6, true);
  assert.equal(i.IPAM.Config[1]?.Subnet, sub6);
  const a = spec("six-a", { networkMode: `v6-${tag}` });
  const b = spec("six-b", { networkMode: `v6-${tag}` });
  const ra = await svc.attach(a);
  const rb = await svc.attach(b);
  assert.ok(typeof ra.netns === "object" && typeof rb.netns === "object");
  const ep = ra.networkSettings.Networks[`v6-${tag}`];
  const last = Number(ep?.IPAddress.split(".").pop());
  assert.ok(last >= 64 && last < 128, `address ${ep?.IPAddress} inside --ip-range`);
  assert.ok(ep?.GlobalIPv6Address.startsWith(sub6.split("::")[0] ?? "x"), ep?.GlobalIPv6Address);
  const gw6 = ep?.IPv6Gateway ?? "";
  // AAAA from berthd's DNS server over the v6 gateway, and v6 traffic between the two.
  const q = await inNs(rb.netns.path, "busybox", "nslookup", "-type=aaaa", "six-a", gw6);
  assert.match(q.out, new RegExp(ep?.GlobalIPv6Address.replaceAll(":", ":") ?? "x"));
  assert.equal((await inNs(rb.netns.path, "busybox", "ping", "-6", "-c1", "-W2", ep?.GlobalIPv6Address ?? "")).code, 0);
  assert.match(rules(), /-A BNT\d+-POSTROUTING -s fd/);
  await svc.detach(a.id);
  await svc.detach(b.id);
  await svc.remove(n.Id);
  assert.doesNotMatch(rules(), /-s fd/);
});
