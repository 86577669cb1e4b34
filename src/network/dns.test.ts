import assert from "node:assert/strict";
import dgram from "node:dgram";
import { test } from "node:test";
import { nullLogger } from "../base/mod.ts";
import { buildQuery, buildResponse, DnsServer, parseQuery, QTYPE, RCODE, reverseName } from "./dns.ts";

test("query round trip and answers", () => {
  const q = parseQuery(buildQuery(7, "Web.Example", QTYPE.A));
  assert.ok(q);
  assert.equal(q.name, "web.example");
  assert.equal(q.qtype, QTYPE.A);
  const r = buildResponse(q, RCODE.NOERROR, [{ type: 1, address: "10.90.0.2" }]);
  assert.equal(r.readUInt16BE(0), 7);
  assert.equal(r.readUInt16BE(6), 1);
  assert.deepEqual([...r.subarray(r.length - 4)], [10, 90, 0, 2]);
  assert.equal(parseQuery(Buffer.alloc(5)), undefined);
  assert.equal(reverseName("10.90.0.2"), "2.0.90.10.in-addr.arpa");
});

function ask(port: number, name: string, qtype: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket("udp4");
    const t = setTimeout(() => {
      s.close();
      reject(new Error("timeout"));
    }, 2000);
    s.on("message", (m) => {
      clearTimeout(t);
      s.close();
      resolve(m);
    });
    s.send(buildQuery(1, name, qtype), port, "127.0.0.1");
  });
}

test("server answers its names, refuses strangers, keeps unknown names local without upstreams", async () => {
  let allowed = true;
  const srv = new DnsServer(
    ["127.0.0.1"],
    {
      allowed: () => allowed,
      lookup: (n) => (n === "web" ? { v4: ["10.90.0.2"], v6: [] } : undefined),
      reverse: (n) => (n === reverseName("10.90.0.2") ? "web.net" : undefined),
      upstreams: () => [],
    },
    nullLogger,
    0,
  );
  await srv.start();
  try {
    const a = await ask(srv.port, "web", QTYPE.A);
    assert.equal(a[3]! & 0xf, RCODE.NOERROR);
    assert.equal(a.readUInt16BE(6), 1);
    const aaaa = await ask(srv.port, "web", QTYPE.AAAA);
    assert.equal(aaaa.readUInt16BE(6), 0);
    assert.equal(aaaa[3]! & 0xf, RCODE.NOERROR);
    const nx = await ask(srv.port, "debian.org", QTYPE.A);
    assert.equal(nx[3]! & 0xf, RCODE.NXDOMAIN);
    const ptr = await ask(srv.port, reverseName("10.90.0.2"), QTYPE.PTR);
    assert.equal(ptr.readUInt16BE(6), 1);
    allowed = false;
    const refused = await ask(srv.port, "web", QTYPE.A);
    assert.equal(refused[3]! & 0xf, RCODE.REFUSED);
  } finally {
    srv.stop();
  }
});

test("the server answers over TCP too", async () => {
  const srv = new DnsServer(
    ["127.0.0.1"],
    {
      allowed: () => true,
      lookup: (n) => (n === "web" ? { v4: ["10.90.0.2"], v6: [] } : undefined),
      reverse: () => undefined,
      upstreams: () => [],
    },
    nullLogger,
    0,
  );
  await srv.start();
  try {
    const { connect } = await import("node:net");
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const s = connect({ host: "127.0.0.1", port: srv.port });
      let buf = Buffer.alloc(0);
      s.on("error", reject);
      s.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          s.end();
          resolve(buf.subarray(2));
        }
      });
      const q = buildQuery(9, "web", QTYPE.A);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.length);
      s.write(Buffer.concat([len, q]));
    });
    assert.equal(answer.readUInt16BE(0), 9);
    assert.equal(answer.readUInt16BE(6), 1);
  } finally {
    srv.stop();
  }
});
