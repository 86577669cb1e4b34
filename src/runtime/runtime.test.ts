import assert from "node:assert/strict";
import { test } from "node:test";
import { isInvalidArgument } from "../base/mod.ts";
import { parseSignal, startErrorExitCode } from "./runtime.ts";
import { buildExecProcess } from "./spec.ts";
import { parseNetDev } from "./stats.ts";

test("signals parse by name, number and real-time offset", () => {
  assert.equal(parseSignal("SIGTERM"), 15);
  assert.equal(parseSignal("kill"), 9);
  assert.equal(parseSignal("9"), 9);
  assert.equal(parseSignal(10), 10);
  assert.equal(parseSignal("RTMIN+3"), 37);
  assert.equal(parseSignal("SIGRTMAX"), 64);
  for (const bad of ["", "SIGFOO", "--all", "0", "65", "1.5"]) assert.throws(() => parseSignal(bad), isInvalidArgument, bad);
});

test("start errors map to Docker's exit codes", () => {
  assert.equal(startErrorExitCode('exec: "nope": executable file not found in $PATH'), 127);
  assert.equal(startErrorExitCode("exec /no/such: no such file or directory"), 127);
  assert.equal(startErrorExitCode("exec /script: permission denied"), 126);
  assert.equal(startErrorExitCode("cgroup error"), 128);
});

test("exec processes inherit the container's security settings", () => {
  const container = {
    user: { uid: 0, gid: 0 },
    args: ["sleep", "1"],
    env: ["PATH=/bin", "HOME=/root", "A=1"],
    cwd: "/srv",
    capabilities: { bounding: ["CAP_CHOWN"], effective: ["CAP_CHOWN"], permitted: ["CAP_CHOWN"] },
    rlimits: [{ type: "RLIMIT_NOFILE", soft: 10, hard: 10 }],
    noNewPrivileges: true,
  };
  const p = buildExecProcess(container, {
    args: ["sh"],
    env: ["A=2", "B=3"],
    tty: true,
    user: { uid: 1000, gid: 1000, additionalGids: [5], home: "/home/u" },
  });
  assert.deepEqual(p.env, ["PATH=/bin", "HOME=/home/u", "A=2", "TERM=xterm", "B=3"]);
  assert.deepEqual(p.user, { uid: 1000, gid: 1000, additionalGids: [5] });
  assert.equal(p.cwd, "/srv");
  assert.equal(p.terminal, true);
  assert.deepEqual(p.capabilities?.bounding, ["CAP_CHOWN"]);
  assert.equal(p.noNewPrivileges, true);
  const priv = buildExecProcess(container, { args: ["sh"], privileged: true, capBounding: ["CAP_CHOWN", "CAP_SYS_ADMIN"] });
  assert.deepEqual(priv.capabilities?.effective, ["CAP_CHOWN", "CAP_SYS_ADMIN"]);
  assert.throws(() => buildExecProcess(container, { args: [] }), isInvalidArgument);
  assert.throws(() => buildExecProcess(container, { args: ["x"], cwd: "rel" }), isInvalidArgument);
});

test("network counters from /proc/<pid>/net/dev", () => {
  const t = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0
`;
  assert.deepEqual(parseNetDev(t), {
    eth0: { rx_bytes: 2000, rx_packets: 20, rx_errors: 1, rx_dropped: 2, tx_bytes: 3000, tx_packets: 30, tx_errors: 3, tx_dropped: 4 },
  });
});
