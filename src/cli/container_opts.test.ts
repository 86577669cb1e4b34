import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  buildContainerSpec,
  CONTAINER_FLAGS,
  parseDevice,
  parseMount,
  parsePortSpecs,
  parseRestartPolicy,
  parseUlimit,
  RUN_ONLY_FLAGS,
} from "./container_opts.ts";
import { parseFlags } from "./flags.ts";

function spec(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const p = parseFlags(argv, [...CONTAINER_FLAGS, ...RUN_ONLY_FLAGS], { stopAtFirstPositional: true });
  return buildContainerSpec(p.flags, p.args, { detach: p.flags.bool("detach"), env, cwd: "/work" });
}

describe("run/create options to the create body", () => {
  test("attach defaults, -i, -t, -d", () => {
    const a = spec(["busybox", "ls", "-l"]).body;
    assert.deepEqual([a.AttachStdin, a.AttachStdout, a.AttachStderr, a.OpenStdin, a.StdinOnce], [false, true, true, false, false]);
    assert.deepEqual(a.Cmd, ["ls", "-l"]);
    const b = spec(["-it", "busybox"]).body;
    assert.deepEqual([b.AttachStdin, b.Tty, b.OpenStdin, b.StdinOnce, b.Cmd], [true, true, true, true, null]);
    const c = spec(["-d", "-i", "busybox"]).body;
    assert.deepEqual([c.AttachStdin, c.AttachStdout, c.StdinOnce, c.OpenStdin], [false, false, false, true]);
    const d = spec(["-a", "STDERR", "busybox"]).body;
    assert.deepEqual([d.AttachStdin, d.AttachStdout, d.AttachStderr], [false, false, true]);
  });

  test("env, env files, labels, label files", () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-opts-"));
    try {
      writeFileSync(join(dir, "env"), "# comment\nA=1\n\nFROMENV\nMISSING\n");
      writeFileSync(join(dir, "labels"), "l1=x\nbare\n");
      const s = spec(
        ["--env-file", join(dir, "env"), "-e", "B=2", "-e", "HOMEY", "--label-file", join(dir, "labels"), "-l", "k=v", "busybox"],
        { FROMENV: "yes", HOMEY: "h" },
      ).body;
      assert.deepEqual(s.Env, ["A=1", "FROMENV=yes", "B=2", "HOMEY=h"]);
      assert.deepEqual(s.Labels, { l1: "x", bare: "", k: "v" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("volumes: binds, anonymous volumes, relative host paths, tmpfs, mounts", () => {
    const s = spec([
      "-v",
      "/data",
      "-v",
      "named:/ws:ro",
      "-v",
      "./rel:/r",
      "--tmpfs",
      "/run:size=64m",
      "--mount",
      "type=tmpfs,destination=/t",
      "busybox",
    ]).body;
    assert.deepEqual(s.Volumes, { "/data": {} });
    assert.deepEqual(s.HostConfig?.Binds, ["named:/ws:ro", "/work/rel:/r"]);
    assert.deepEqual(s.HostConfig?.Tmpfs, { "/run": "size=64m" });
    assert.deepEqual(s.HostConfig?.Mounts, [{ Type: "tmpfs", Target: "/t" }]);
  });

  test("ports, expose, -P", () => {
    const s = spec(["-p", "127.0.0.1:8080:80", "-p", "53:53/udp", "-p", "9000", "--expose", "7000-7001", "-P", "busybox"]).body;
    assert.deepEqual(s.HostConfig?.PortBindings, {
      "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "8080" }],
      "53/udp": [{ HostIp: "", HostPort: "53" }],
      "9000/tcp": [{ HostIp: "", HostPort: "" }],
    });
    assert.deepEqual(Object.keys(s.ExposedPorts ?? {}).sort(), ["53/udp", "7000/tcp", "7001/tcp", "80/tcp", "9000/tcp"]);
    assert.equal(s.HostConfig?.PublishAllPorts, true);
  });

  test("resources and security", () => {
    const h = spec([
      "-m",
      "512m",
      "--memory-swap",
      "-1",
      "--cpus",
      "1.5",
      "--pids-limit",
      "100",
      "--ulimit",
      "nofile=1024:2048",
      "--cap-add",
      "NET_ADMIN",
      "--read-only",
      "--init",
      "--restart",
      "on-failure:3",
      "busybox",
    ]).body.HostConfig;
    assert.equal(h?.Memory, 536870912);
    assert.equal(h?.MemorySwap, -1);
    assert.equal(h?.NanoCpus, 1_500_000_000);
    assert.equal(h?.PidsLimit, 100);
    assert.deepEqual(h?.Ulimits, [{ Name: "nofile", Soft: 1024, Hard: 2048 }]);
    assert.deepEqual(h?.CapAdd, ["NET_ADMIN"]);
    assert.equal(h?.ReadonlyRootfs, true);
    assert.equal(h?.Init, true);
    assert.deepEqual(h?.RestartPolicy, { Name: "on-failure", MaximumRetryCount: 3 });
    assert.equal(spec(["busybox"]).body.HostConfig?.Init, undefined);
  });

  test("networks, aliases, entrypoint, health, stop options", () => {
    const s = spec([
      "--network",
      "net1",
      "--network-alias",
      "db",
      "--ip",
      "10.1.0.5",
      "--entrypoint",
      "",
      "--health-cmd",
      "true",
      "--health-interval",
      "2s",
      "--stop-timeout",
      "3",
      "busybox",
    ]).body;
    assert.equal(s.HostConfig?.NetworkMode, "net1");
    assert.deepEqual(s.NetworkingConfig?.EndpointsConfig?.net1, { Aliases: ["db"], IPAMConfig: { IPv4Address: "10.1.0.5" } });
    assert.deepEqual(s.Entrypoint, [""]);
    assert.deepEqual(s.Healthcheck, {
      Interval: 2e9,
      Timeout: 0,
      StartPeriod: 0,
      StartInterval: 0,
      Retries: 0,
      Test: ["CMD-SHELL", "true"],
    });
    assert.equal(s.StopTimeout, 3);
    assert.deepEqual(spec(["--no-healthcheck", "busybox"]).body.Healthcheck, { Test: ["NONE"] });
  });

  test("conflicts and bad values are usage errors", () => {
    assert.throws(() => spec(["--rm", "--restart", "always", "busybox"]), /cannot specify both --restart and --rm/);
    assert.throws(() => spec(["--network-alias", "x", "busybox"]), /network-scoped aliases/);
    assert.throws(() => spec(["--pull", "sometimes", "busybox"]), /invalid pull option/);
    assert.throws(() => spec(["--no-healthcheck", "--health-cmd", "x", "busybox"]), /conflicts/);
  });
});

describe("option parsers", () => {
  test("port specs", () => {
    assert.deepEqual(parsePortSpecs(["8000-8001:80-81"]).bindings, {
      "80/tcp": [{ HostIp: "", HostPort: "8000" }],
      "81/tcp": [{ HostIp: "", HostPort: "8001" }],
    });
    assert.deepEqual(parsePortSpecs(["[::1]:8080:80"]).bindings, { "80/tcp": [{ HostIp: "::1", HostPort: "8080" }] });
    assert.deepEqual(parsePortSpecs(["127.0.0.1::80"]).bindings, { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] });
    assert.throws(() => parsePortSpecs(["x:80"]), /invalid hostPort/);
    assert.throws(() => parsePortSpecs(["80/xyz"]), /invalid proto/);
  });
  test("restart, ulimit, device, mount", () => {
    assert.deepEqual(parseRestartPolicy("unless-stopped"), { Name: "unless-stopped" });
    assert.throws(() => parseRestartPolicy("always:3"), /only be used with 'on-failure'/);
    assert.throws(() => parseRestartPolicy("sometimes"), /unknown policy/);
    assert.deepEqual(parseUlimit("nproc=10"), { Name: "nproc", Soft: 10, Hard: 10 });
    assert.throws(() => parseUlimit("nproc=10:5"), /soft limit must be less/);
    assert.deepEqual(parseDevice("/dev/fuse"), { PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm" });
    assert.deepEqual(parseDevice("/dev/sda:/dev/xvda:r"), { PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "r" });
    assert.deepEqual(parseMount("type=bind,src=/a,dst=/b,readonly,bind-propagation=rshared"), {
      Type: "bind",
      Source: "/a",
      Target: "/b",
      ReadOnly: true,
      BindOptions: { Propagation: "rshared" },
    });
    assert.deepEqual(parseMount("source=v,target=/data,volume-nocopy"), {
      Type: "volume",
      Source: "v",
      Target: "/data",
      VolumeOptions: { NoCopy: true },
    });
    assert.deepEqual(parseMount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770"), {
      Type: "tmpfs",
      Target: "/t",
      TmpfsOptions: { SizeBytes: 1048576, Mode: 0o1770 },
    });
    assert.throws(() => parseMount("type=bind,src=/a"), /target is required/);
    assert.throws(() => parseMount("type=tmpfs,dst=/t,volume-nocopy"), /cannot mix/);
  });
});
