import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import { parsePortKey, PortReserver, portMap, portRequests, portsSummary } from "./ports.ts";

test("port keys", () => {
  assert.deepEqual(parsePortKey("80/tcp"), { proto: "tcp", start: 80, end: 80 });
  assert.deepEqual(parsePortKey("53/UDP"), { proto: "udp", start: 53, end: 53 });
  assert.deepEqual(parsePortKey("8000-8002"), { proto: "tcp", start: 8000, end: 8002 });
  assert.throws(() => parsePortKey("80/icmp"), /invalid proto/);
  assert.throws(() => parsePortKey("99999/tcp"), /invalid container port/);
});

test("port requests from -p, ranges and -P", () => {
  const r = portRequests(
    { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "8080" }], "53/udp": [{ HostPort: "" }], "90/tcp": [{ HostPort: "9000-9010" }] },
    { "80/tcp": {}, "443/tcp": {} },
    true,
  );
  assert.deepEqual(r, [
    { proto: "tcp", containerPort: 80, hostIp: "127.0.0.1", hostStart: 8080, hostEnd: 8080 },
    { proto: "udp", containerPort: 53, hostIp: "", hostStart: 0, hostEnd: 0 },
    { proto: "tcp", containerPort: 90, hostIp: "", hostStart: 9000, hostEnd: 9010 },
    { proto: "tcp", containerPort: 443, hostIp: "", hostStart: 0, hostEnd: 0 },
  ]);
  assert.throws(() => portRequests({ "80/tcp": [{ HostIp: "not-an-ip" }] }, {}, false), /invalid IP/);
});

test("Ports map and ps summary", () => {
  const m = portMap([{ proto: "tcp", containerPort: 80, hostIp: "", hostPort: 32768 }], { "80/tcp": {}, "443/tcp": {} });
  assert.deepEqual(m, { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "32768" }], "443/tcp": null });
  assert.deepEqual(portsSummary(m), [
    { IP: "0.0.0.0", PrivatePort: 80, PublicPort: 32768, Type: "tcp" },
    { PrivatePort: 443, Type: "tcp" },
  ]);
});

test("the reserver holds ports, refuses taken ones and picks random ones without collisions", async () => {
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
  const busyPort = (busy.address() as net.AddressInfo).port;
  const res = new PortReserver([busyPort, busyPort + 3]);
  try {
    await assert.rejects(
      res.reserve({ proto: "tcp", containerPort: 80, hostIp: "127.0.0.1", hostPort: busyPort }),
      /port is already allocated/,
    );
    const a = await res.allocate({ proto: "tcp", containerPort: 80, hostIp: "127.0.0.1", hostStart: 0, hostEnd: 0 });
    const b = await res.allocate({ proto: "tcp", containerPort: 81, hostIp: "127.0.0.1", hostStart: 0, hostEnd: 0 });
    assert.notEqual(a.hostPort, busyPort);
    assert.notEqual(a.hostPort, b.hostPort);
    await assert.rejects(res.reserve({ ...a }), /already allocated/);
    res.release(a);
    await res.reserve({ ...a });
    const u = await res.allocate({ proto: "udp", containerPort: 53, hostIp: "127.0.0.1", hostStart: 0, hostEnd: 0 });
    assert.ok(u.hostPort >= busyPort);
  } finally {
    res.releaseAll();
    busy.close();
  }
});
