import assert from "node:assert/strict";
import dgram from "node:dgram";
import net from "node:net";
import { test } from "node:test";
import { PortReserver } from "./ports.ts";
import { hostHasIpv6, listenTcpProxy, listenUdpProxy } from "./proxy.ts";

const skip = (await hostHasIpv6()) ? false : "the host has no IPv6";

async function freePort(host: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen({ host, port: 0, ipv6Only: host.includes(":") }, () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

function collect(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      out += d;
    });
    s.on("end", () => resolve(out));
    s.on("error", reject);
  });
}

test("TCP: [::1] relays to an IPv4 server, both directions, with half-close", { skip, timeout: 15000 }, async () => {
  // The server answers only after the client has shut down its side, then closes its own.
  const srv = net.createServer({ allowHalfOpen: true }, (c) => {
    let got = "";
    c.setEncoding("utf8");
    c.on("data", (d: string) => {
      got += d;
    });
    c.on("end", () => c.end(`got ${got.length} bytes: ${got.slice(0, 5)}`));
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = await freePort("::1");
  const proxy = await listenTcpProxy("::", port, { ip: "127.0.0.1", port: (srv.address() as net.AddressInfo).port });
  try {
    const c = net.connect({ host: "::1", port, allowHalfOpen: true });
    const answer = collect(c);
    c.write("hello");
    c.write("x".repeat(200_000));
    c.end();
    assert.equal(await answer, "got 200005 bytes: hello");
    // IPv4 is not the proxy's business.
    await assert.rejects(
      new Promise((resolve, reject) => net.connect({ host: "127.0.0.1", port }).on("connect", resolve).on("error", reject)),
      /ECONNREFUSED/,
    );
  } finally {
    proxy.close();
    srv.close();
  }
});

test("TCP: a target that refuses closes the client; close drops live connections and frees the port", {
  skip,
  timeout: 15000,
}, async () => {
  const dead = await freePort("127.0.0.1");
  const port = await freePort("::1");
  let proxy = await listenTcpProxy("::", port, { ip: "127.0.0.1", port: dead });
  const refused = net.connect({ host: "::1", port });
  refused.on("error", () => {});
  const gone = await Promise.race([
    new Promise((r) => refused.once("close", () => r("closed"))),
    new Promise((r) => setTimeout(() => r("still open"), 3000)),
  ]);
  assert.equal(gone, "closed");
  proxy.close();

  const held: net.Socket[] = [];
  const srv = net.createServer((c) => held.push(c));
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  proxy = await listenTcpProxy("::", port, { ip: "127.0.0.1", port: (srv.address() as net.AddressInfo).port });
  const c = net.connect({ host: "::1", port });
  await new Promise((r) => c.once("connect", r));
  const closed = new Promise((r) => c.once("close", r));
  while (held.length === 0) await new Promise((r) => setTimeout(r, 10));
  proxy.close();
  await closed;
  // The port can be bound again at once.
  const again = await listenTcpProxy("::", port, { ip: "127.0.0.1", port: dead });
  again.close();
  srv.close();
});

test("UDP: each client gets its own flow toward the IPv4 target; an idle flow is closed", { skip, timeout: 15000 }, async () => {
  const srv = dgram.createSocket("udp4");
  const peers = new Set<number>();
  srv.on("message", (m, r) => {
    peers.add(r.port);
    srv.send(Buffer.concat([Buffer.from("echo:"), m]), r.port, r.address);
  });
  await new Promise<void>((r) => srv.bind(0, "127.0.0.1", () => r()));
  const port = await freePort("::1");
  const proxy = await listenUdpProxy("::", port, { ip: "127.0.0.1", port: srv.address().port }, 300);
  const ask = async (s: dgram.Socket, msg: string) => {
    const reply = new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no reply")), 2000);
      s.once("message", (m, r) => {
        clearTimeout(t);
        assert.equal(r.port, port, "replies come from the published port");
        resolve(m.toString());
      });
    });
    s.send(msg, port, "::1");
    return await reply;
  };
  const a = dgram.createSocket("udp6");
  const b = dgram.createSocket("udp6");
  try {
    assert.equal(await ask(a, "one"), "echo:one");
    assert.equal(await ask(a, "two"), "echo:two");
    assert.equal(peers.size, 1, "one flow per client");
    assert.equal(await ask(b, "three"), "echo:three");
    assert.equal(peers.size, 2);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(await ask(a, "four"), "echo:four");
    assert.equal(peers.size, 3, "a new flow after the idle timeout");
  } finally {
    a.close();
    b.close();
    proxy.close();
    srv.close();
  }
});

test("the reserver pairs [::] with a port on every address, and a port taken on IPv6 only is skipped or refused", {
  skip,
  timeout: 15000,
}, async () => {
  const res = new PortReserver();
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen({ host: "::", port: 0, ipv6Only: true }, () => r()));
  const taken = (busy.address() as net.AddressInfo).port;
  try {
    const req = { proto: "tcp" as const, containerPort: 80, hostIp: "", hostStart: taken, hostEnd: taken };
    await assert.rejects(
      res.allocateGroup(req, { containerIp: "127.0.0.1", alsoV6: true }),
      new RegExp(`Bind for \\[::\\]:${taken} failed: port is already allocated`),
    );
    assert.equal(res.size, 0, "the IPv4 half is given back");
    const ms = await res.allocateGroup({ ...req, hostStart: taken, hostEnd: taken + 20 }, { containerIp: "127.0.0.1", alsoV6: true });
    assert.deepEqual(
      ms.map((m) => m.hostIp),
      ["", "::"],
    );
    assert.notEqual(ms[0]?.hostPort, taken);
    assert.equal(ms[0]?.hostPort, ms[1]?.hostPort);
    assert.equal(res.size, 2);
    const only4 = await res.allocateGroup(
      { ...req, hostIp: "127.0.0.1", hostStart: 0, hostEnd: 0 },
      { containerIp: "127.0.0.1", alsoV6: true },
    );
    assert.equal(only4.length, 1, "a given IPv4 address gets no IPv6 twin");
  } finally {
    res.releaseAll();
    busy.close();
  }
});
