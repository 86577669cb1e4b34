import assert from "node:assert/strict";
import { test } from "node:test";
import { FakeHost, nullLogger } from "../base/mod.ts";
import { chainNames, Firewall, renderRules } from "./firewall.ts";
import { parseCidr } from "./ipnet.ts";

const c = chainNames("BERTH");
const state = {
  bridges: [
    { bridge: "berth0", subnets: [parseCidr("10.87.0.1/16")], internal: false, icc: true, masquerade: true },
    { bridge: "br-int", subnets: [parseCidr("10.90.0.0/24")], internal: true, icc: true, masquerade: true },
  ],
  ports: [
    { proto: "tcp" as const, hostIp: "", hostPort: 8080, containerIp: "10.87.0.2", containerPort: 80 },
    { proto: "udp" as const, hostIp: "127.0.0.1", hostPort: 5353, containerIp: "10.87.0.2", containerPort: 53 },
  ],
};

test("rules: isolation, internal drops, masquerade, DNAT, localhost protection", () => {
  const t = renderRules(state, c, 4);
  assert.match(t, /^\*filter\n:BERTH-FORWARD - \[0:0\]\n/);
  assert.match(t, /-A BERTH-FORWARD -i berth0 -o br-int -j DROP/);
  assert.match(t, /-A BERTH-FORWARD -i br-int -j DROP/);
  assert.match(t, /-A BERTH-FORWARD -i berth0 ! -o berth0 -j ACCEPT/);
  assert.doesNotMatch(t, /-i br-int ! -o br-int -j ACCEPT/);
  assert.match(t, /-A BERTH-POSTROUTING -s 10\.87\.0\.0\/16 ! -o berth0 -j MASQUERADE/);
  assert.doesNotMatch(t, /10\.90\.0\.0\/24 ! -o br-int -j MASQUERADE/);
  assert.match(t, /-A BERTH-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10\.87\.0\.2:80/);
  assert.match(t, /-A BERTH-DNAT -d 127\.0\.0\.1\/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10\.87\.0\.2:53/);
  assert.match(t, /-A BERTH-PREROUTING -i berth0 -d 127\.0\.0\.0\/8 -j DROP/);
  assert.equal(renderRules(state, c, 4), t, "depends on the state only");
});

test("apply restores atomically and adds missing jumps once", async () => {
  const h = new FakeHost();
  h.answer = (cmd, args) => ({ code: cmd === "iptables" && args.includes("-C") ? 1 : 0, signal: null, stdout: "", stderr: "" });
  const fw = new Firewall(h, nullLogger, "BERTH-t");
  await fw.apply(state);
  assert.equal(h.calls[0]?.cmd, "iptables-restore");
  assert.deepEqual(h.calls[0]?.args, ["-w", "--noflush"]);
  const inserts = h.calls.filter((x) => x.args.includes("-I") || x.args.includes("-A"));
  assert.deepEqual(
    inserts.map((x) => x.args.slice(2).join(" ")),
    [
      "filter -I FORWARD 1 -j BERTH-t-FORWARD",
      "nat -I POSTROUTING 1 -j BERTH-t-POSTROUTING",
      "nat -A PREROUTING -m addrtype --dst-type LOCAL -j BERTH-t-DNAT",
      "nat -A OUTPUT -m addrtype --dst-type LOCAL -j BERTH-t-DNAT",
      "raw -I PREROUTING 1 -j BERTH-t-PREROUTING",
    ],
  );
});
