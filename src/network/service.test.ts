import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { Db, FakeHost, nullLogger, type RunOptions, type RunResult } from "../base/mod.ts";
import { type ContainerNetSpec, NetworkService } from "./service.ts";

/** A FakeHost that also records what each CNI plugin got on stdin and in CNI_*. */
class CniHost extends FakeHost {
  cni: { plugin: string; command: string; ifname: string; conf: Record<string, unknown> }[] = [];
  next = 2;
  override async run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    if (cmd.startsWith("/usr/lib/cni/")) {
      const plugin = cmd.slice("/usr/lib/cni/".length);
      const conf = JSON.parse(String(options.input)) as Record<string, unknown>;
      const command = options.env?.CNI_COMMAND ?? "";
      this.cni.push({ plugin, command, ifname: options.env?.CNI_IFNAME ?? "", conf });
      if (plugin === "bridge" && command === "ADD") {
        const ranges = ((conf.ipam as { ranges: { subnet: string; gateway: string }[][] }).ranges ?? []).map((r) => r[0]);
        const rt = conf.runtimeConfig as { ips?: string[] } | undefined;
        const ips = ranges.map((r) => {
          const [net = "", pfx] = (r?.subnet ?? "").split("/");
          const want = rt?.ips?.find((ip) => ip.includes(":") === net.includes(":"));
          const addr = want ?? `${net.replace(/0$/, "")}${this.next++}/${pfx}`;
          return { address: addr, gateway: r?.gateway };
        });
        return { code: 0, signal: null, stdout: JSON.stringify({ cniVersion: "1.0.0", ips }), stderr: "" };
      }
    }
    if (cmd === "ip" && args[0] === "-j") return { code: 0, signal: null, stdout: "[]", stderr: "" };
    return await super.run(cmd, args, options);
  }
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function make(): Promise<{ svc: NetworkService; host: CniHost; events: string[]; sysctls: string[]; exec: string }> {
  const dir = mkdtempSync(join(tmpdir(), "berth-net-"));
  dirs.push(dir);
  const host = new CniHost();
  const events: string[] = [];
  const sysctls: string[] = [];
  const svc = new NetworkService({
    host,
    db: new Db(join(dir, "berth.db")),
    dataRoot: join(dir, "data"),
    execRoot: join(dir, "exec"),
    log: nullLogger,
    publish: (a, _id, attrs) => events.push(`${a} ${attrs.name}${attrs.container ? ` ${attrs.container.slice(0, 4)}` : ""}`),
    config: { bip: "10.50.0.1/24" },
    firewallCheckMs: 0,
    sysctl: async (p, v) => {
      sysctls.push(`${p}=${v}`);
    },
  });
  await svc.init();
  return { svc, host, events, sysctls, exec: join(dir, "exec") };
}

const spec = (id: string, extra: Partial<ContainerNetSpec> = {}): ContainerNetSpec => ({
  id: id.padEnd(64, "0"),
  name: `/c${id}`,
  hostname: id,
  networkMode: "bridge",
  ...extra,
});

test("init creates bridge, host and none; the default bridge takes bip", async () => {
  const { svc, sysctls } = await make();
  assert.deepEqual(
    svc.list().map((n) => [n.Name, n.Driver]),
    [
      ["bridge", "bridge"],
      ["host", "host"],
      ["none", "null"],
    ],
  );
  const br = svc.inspect("bridge");
  assert.deepEqual(br.IPAM.Config, [{ Subnet: "10.50.0.0/24", Gateway: "10.50.0.1" }]);
  assert.equal(br.Options["com.docker.network.bridge.default_bridge"], "true");
  assert.ok(sysctls.some((s) => s.endsWith("/route_localnet=1")));
  assert.throws(() => svc.inspect("nope"), /network nope not found/);
});

test("create: validation and Docker's wording", async () => {
  const { svc, events } = await make();
  const a = await svc.create({ Name: "front", Labels: { x: "1" }, Options: { "com.docker.network.driver.mtu": "1400" } });
  assert.equal(a.Warning, "");
  const i = svc.inspect("front");
  assert.equal(i.IPAM.Config[0]?.Subnet, "10.90.0.0/24");
  assert.equal(i.Id, a.Id);
  assert.equal(svc.inspect(a.Id.slice(0, 6)).Name, "front");
  await assert.rejects(svc.create({ Name: "front" }), /network with name front already exists/);
  await assert.rejects(svc.create({ Name: "x", Driver: "overlay" }), /This node is not a swarm manager/);
  await assert.rejects(svc.create({ Name: "x", Driver: "nosuchdriver" }), /plugin "nosuchdriver" not found/);
  await assert.rejects(svc.create({ Name: "x", Driver: "host" }), /only one instance of "host" network/);
  await assert.rejects(svc.create({ Name: "x", IPAM: { Config: [{ Subnet: "10.90.0.128/25" }] } }), /Pool overlaps/);
  await assert.rejects(
    svc.create({ Name: "x", IPAM: { Config: [{ Subnet: "10.60.0.0/24", Gateway: "10.61.0.1" }] } }),
    /no matching subnet for gateway/,
  );
  await assert.rejects(svc.create({ Name: "x", IPAM: { Config: [{ Subnet: "10.60.0.1/24" }] } }), /invalid subnet/);
  await assert.rejects(svc.create({ Name: "bad\nname" }), /invalid network name/);
  const b = await svc.create({ Name: "back", Internal: true, IPAM: { Config: [{ Subnet: "10.60.0.0/24", IPRange: "10.60.0.128/25" }] } });
  assert.equal(svc.inspect(b.Id).IPAM.Config[0]?.IPRange, "10.60.0.128/25");
  assert.deepEqual(
    svc.list(new Map([["type", ["custom"]]])).map((n) => n.Name),
    ["back", "front"],
  );
  assert.deepEqual(
    svc.list(new Map([["label", ["x=1"]]])).map((n) => n.Name),
    ["front"],
  );
  assert.throws(() => svc.list(new Map([["bogus", ["1"]]])), /invalid filter 'bogus'/);
  await assert.rejects(svc.remove("bridge"), /bridge is a pre-defined network and cannot be removed/);
  assert.deepEqual((await svc.prune()).NetworksDeleted.sort(), ["back", "front"]);
  assert.deepEqual([...events].sort(), ["create back", "create front", "destroy back", "destroy front"]);
});

test("register validates aliases, --ip and unknown networks", async () => {
  const { svc } = await make();
  assert.throws(
    () => svc.register(spec("1", { endpointsConfig: { bridge: { Aliases: ["a"] } } })),
    /network-scoped alias is supported only/,
  );
  assert.throws(
    () => svc.register(spec("2", { endpointsConfig: { bridge: { IPAMConfig: { IPv4Address: "10.50.0.9" } } } })),
    /user configured subnets/,
  );
  assert.throws(() => svc.register(spec("3", { networkMode: "nope" })), /network nope not found/);
  await svc.create({ Name: "u", IPAM: { Config: [{ Subnet: "10.70.0.0/24" }] } });
  assert.throws(
    () => svc.register(spec("4", { networkMode: "u", endpointsConfig: { u: { IPAMConfig: { IPv4Address: "10.71.0.9" } } } })),
    /no configured subnet/,
  );
  const s = svc.register(spec("5", { networkMode: "u", endpointsConfig: { u: { Aliases: ["db"] } }, exposedPorts: { "80/tcp": {} } }));
  assert.deepEqual(Object.keys(s.Networks), ["u"]);
  assert.deepEqual(s.Networks.u?.Aliases, ["db"]);
  assert.equal(s.Networks.u?.IPAddress, "");
});

test("attach pins a netns with loopback up, runs bridge (IP and MAC) in it; detach undoes it", async () => {
  const { svc, host, events, exec } = await make();
  await svc.create({ Name: "u", IPAM: { Config: [{ Subnet: "10.70.0.0/24" }] } });
  const c = spec("a", {
    networkMode: "u",
    endpointsConfig: { u: { Aliases: ["db"], IPAMConfig: { IPv4Address: "10.70.0.9" }, MacAddress: "02:42:00:00:00:09" } },
    dns: ["192.0.2.53"],
  });
  const r = await svc.attach(c);
  assert.deepEqual(r.netns, { path: join(exec, "netns", c.id) });
  assert.ok(existsSync(join(exec, "netns", c.id)));
  assert.deepEqual(
    host.calls.filter((x) => x.cmd === "unshare").map((x) => x.args.join(" ")),
    [`--net=${join(exec, "netns", c.id)} ip link set lo up`],
  );
  assert.deepEqual(
    host.cni.map((x) => `${x.plugin} ${x.command} ${x.ifname}`),
    ["bridge ADD eth0"],
  );
  const bridgeConf = host.cni[0]?.conf as {
    capabilities: Record<string, boolean>;
    runtimeConfig: { ips: string[]; mac: string };
    ipam: { routes: unknown[] };
    isGateway: boolean;
    ipMasq: boolean;
  };
  assert.deepEqual(bridgeConf.runtimeConfig.ips, ["10.70.0.9/24"]);
  assert.deepEqual(bridgeConf.ipam.routes, [{ dst: "0.0.0.0/0" }]);
  assert.equal(bridgeConf.ipMasq, false, "berth masquerades in its own chain");
  assert.equal(bridgeConf.runtimeConfig.mac, "02:42:00:00:00:09");
  assert.deepEqual(bridgeConf.capabilities, { ips: true, mac: true });
  const ep = r.networkSettings.Networks.u;
  assert.equal(ep?.IPAddress, "10.70.0.9");
  assert.equal(ep?.MacAddress, "02:42:00:00:00:09");
  assert.deepEqual(ep?.DNSNames, ["ca", "db", c.id.slice(0, 12), "a"]);
  assert.equal(r.networkSettings.IPAddress, "");
  // Without root the DNS server cannot bind the gateway address: --dns is used directly.
  assert.equal(r.resolvConf, "nameserver 192.0.2.53\n");
  assert.deepEqual(r.hosts, ["10.70.0.9\ta"]);
  assert.equal(Object.keys(svc.inspect("u").Containers)[0], c.id);
  await assert.rejects(svc.remove("u"), /has active endpoints/);
  host.cni = [];
  await svc.detach(c.id);
  assert.deepEqual(
    host.cni.map((x) => `${x.plugin} ${x.command} ${x.ifname}`),
    ["bridge DEL eth0"],
  );
  assert.ok(!existsSync(join(exec, "netns", c.id)));
  assert.equal(svc.settings(c.id).Networks.u?.IPAddress, "");
  await svc.detach(c.id); // idempotent
  assert.deepEqual(events.slice(1), ["connect u a000", "disconnect u a000"]);
  await svc.remove("u");
});

test("the default bridge: legacy fields, host resolvers, links through hosts", async () => {
  const { svc } = await make();
  const web = spec("w", { dns: ["192.0.2.53"], dnsSearch: ["example.com"] });
  const rw = await svc.attach(web);
  assert.equal(rw.networkSettings.IPAddress, "10.50.0.2");
  assert.equal(rw.networkSettings.Gateway, "10.50.0.1");
  assert.equal(rw.networkSettings.Networks.bridge?.DNSNames, null);
  assert.equal(rw.resolvConf, "search example.com\nnameserver 192.0.2.53\n");
  svc.containers = { resolve: (ref) => (ref === "cw" || ref === web.id ? { ...web, running: true } : undefined) };
  const cl = spec("l", { links: ["cw:webalias"] });
  const rl = await svc.attach(cl);
  assert.ok(rl.hosts.includes(`10.50.0.2\twebalias ${web.id.slice(0, 12)} cw`), rl.hosts.join("|"));
  await svc.detach(cl.id);
  await svc.detach(web.id);
});

test("host, none and container: modes; connect on a stopped container is remembered", async () => {
  const { svc, host } = await make();
  const h = await svc.attach(spec("h", { networkMode: "host" }));
  assert.equal(h.netns, "host");
  assert.deepEqual(Object.keys(h.networkSettings.Networks), ["host"]);
  const n = await svc.attach(spec("n", { networkMode: "none" }));
  assert.notEqual(n.netns, "host");
  assert.deepEqual(Object.keys(n.networkSettings.Networks), ["none"]);
  const owner = spec("o");
  await svc.attach(owner);
  const j = spec("j", { networkMode: `container:${owner.id}` });
  svc.containers = {
    resolve: (ref) => (owner.id.startsWith(ref) ? { ...owner, running: true } : ref === j.id ? { ...j, running: false } : undefined),
  };
  const rj = await svc.attach(j);
  assert.deepEqual(rj.netns, { path: (await svc.attach(owner)).netns !== "host" ? svc.settings(owner.id).SandboxKey : "" });
  await assert.rejects(svc.connect("bridge", j.id), /sharing network namespace/);
  await svc.create({ Name: "u", IPAM: { Config: [{ Subnet: "10.70.0.0/24" }] } });
  const s = spec("s");
  svc.containers = { resolve: (ref) => (ref === s.id ? { ...s, running: false } : undefined) };
  host.cni = [];
  await svc.connect("u", s.id, { Aliases: ["x"] });
  assert.equal(host.cni.length, 0, "nothing set up for a stopped container");
  assert.deepEqual(Object.keys(svc.settings(s.id).Networks), ["bridge", "u"]);
  await assert.rejects(svc.connect("u", s.id), /already exists in network u/);
  await svc.disconnect("u", s.id);
  await assert.rejects(svc.disconnect("u", s.id), /is not connected to network u/);
  await svc.disconnect("u", s.id, true);
  await svc.connect("u", s.id);
  const r = await svc.attach(s);
  assert.deepEqual(Object.keys(r.networkSettings.Networks), ["bridge", "u"]);
  assert.deepEqual(
    host.cni.filter((x) => x.plugin === "bridge").map((x) => x.ifname),
    ["eth0", "eth1"],
  );
  assert.deepEqual(
    (host.cni.filter((x) => x.plugin === "bridge")[1]?.conf.ipam as { routes: unknown[] } | undefined)?.routes,
    [],
    "one default route",
  );
});

test("bad published ports fail the create", async () => {
  const { svc } = await make();
  assert.throws(() => svc.validate(spec("p", { portBindings: { "80/tcp": [{ HostPort: "99999" }] } })), /invalid host port/);
  assert.throws(() => svc.validate(spec("q", { portBindings: { "80/tcp": [{ HostIp: "::1", HostPort: "80" }] } })), /IPv6 host addresses/);
  assert.throws(() => svc.validate(spec("r", { portBindings: { "80/bogus": [{ HostPort: "80" }] } })), /invalid proto/);
});
