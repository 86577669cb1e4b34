import assert from "node:assert/strict";
import { test } from "node:test";
import { allocateSubnet, formatCidr, formatIp, overlaps, parseCidr, parseIp } from "./ipnet.ts";

test("parses and formats IPv4 and IPv6 addresses", () => {
  assert.equal(formatIp(4, parseIp("10.87.0.1").value), "10.87.0.1");
  assert.equal(formatIp(6, parseIp("fd00::2").value), "fd00::2");
  assert.equal(formatIp(6, parseIp("2001:db8:0:0:1:0:0:1").value), "2001:db8::1:0:0:1");
  assert.equal(formatIp(6, parseIp("::ffff:1.2.3.4").value), "::ffff:102:304");
  assert.throws(() => parseIp("10.0.0.256"), /invalid IP address/);
});

test("CIDRs: strict subnets, overlap", () => {
  assert.throws(() => parseCidr("10.1.2.3/24", { strict: true }), /should be 10\.1\.2\.0\/24/);
  assert.equal(formatCidr(parseCidr("10.87.0.1/16")), "10.87.0.1/16");
  assert.ok(overlaps(parseCidr("10.0.0.0/8"), parseCidr("10.88.1.0/24")));
  assert.ok(!overlaps(parseCidr("10.87.0.0/16"), parseCidr("10.88.0.0/16")));
  assert.ok(!overlaps(parseCidr("10.87.0.0/16"), parseCidr("fd00::/64")));
  assert.throws(() => parseCidr("10.0.0.0/33"), /invalid CIDR/);
});

test("allocates the first subnet of the pools that overlaps nothing taken", () => {
  const pools = [{ base: "10.90.0.0/15", size: 24 }];
  const a = allocateSubnet(pools, [parseCidr("10.90.0.0/24"), parseCidr("10.90.1.0/25")]);
  assert.equal(a && formatCidr(a), "10.90.2.0/24");
  assert.equal(allocateSubnet([{ base: "10.1.0.0/24", size: 24 }], [parseCidr("10.0.0.0/8")]), undefined);
  const v6 = allocateSubnet([{ base: "fd6b:6572:7468::/48", size: 64 }], []);
  assert.equal(v6 && formatCidr(v6), "fd6b:6572:7468::/64");
});
