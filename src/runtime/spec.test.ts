import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { isInvalidArgument } from "../base/mod.ts";
import { DEFAULT_CAPABILITIES } from "./defaults.ts";
import type { HostInfo } from "./host_info.ts";
import { capabilitiesFromMask, parseProcLimits } from "./host_info.ts";
import { defaultSeccompProfile, kernelAtLeast, seccompToOci } from "./seccomp.ts";
import {
  buildResources,
  buildRlimits,
  buildSpec,
  type ContainerSpecInput,
  computeCapabilities,
  mergeEnv,
  parseDeviceCgroupRule,
  validateCpuset,
  validateSysctl,
} from "./spec.ts";

const testdata = new URL("./testdata/", import.meta.url).pathname;

/** The host of the golden files: this CI machine's kind (no CAP_SYS_RESOURCE, cgroup v1, swap accounting). */
export const goldenHost: HostInfo = {
  arch: "amd64",
  kernel: "6.1.0",
  capBounding: capabilitiesFromMask("000001fffeffffff"),
  cgroupVersion: 1,
  rlimits: { RLIMIT_NOFILE: { soft: 1024, hard: 65536 }, RLIMIT_NPROC: { soft: -1, hard: -1 }, RLIMIT_CORE: { soft: 0, hard: -1 } },
  swapLimit: true,
  blkioWeight: false,
  cpus: "0-3",
  mems: "0",
};

for (const name of readdirSync(testdata)) {
  test(`buildSpec golden: ${name}`, () => {
    const input = JSON.parse(readFileSync(join(testdata, name, "input.json"), "utf8")) as Omit<ContainerSpecInput, "host">;
    const built = buildSpec({ ...input, host: goldenHost });
    const actual = { warnings: built.warnings, spec: built.spec };
    const goldenPath = join(testdata, name, "config.json");
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(goldenPath, `${JSON.stringify(actual, null, 2)}\n`);
    // Compared as JSON values: the formatter may re-indent the files.
    assert.deepEqual(JSON.parse(JSON.stringify(actual)), JSON.parse(readFileSync(goldenPath, "utf8")));
  });
}

test("default capabilities are Docker's 14 (CapEff a80425fb)", () => {
  const caps = computeCapabilities({}, goldenHost.capBounding, []);
  assert.deepEqual(caps, [...DEFAULT_CAPABILITIES]);
  const bits = caps.reduce((m, c) => m | (1n << BigInt(capabilitiesFromMask("ffffffffff").indexOf(c))), 0n);
  assert.equal(bits.toString(16), "a80425fb");
});

test("capabilities: ALL, drop ALL, unknown names, host bounding", () => {
  const warnings: string[] = [];
  const all = computeCapabilities({ capAdd: ["ALL"], capDrop: ["NET_RAW"] }, goldenHost.capBounding, warnings);
  assert.ok(all.includes("CAP_SYS_ADMIN"));
  assert.ok(!all.includes("CAP_NET_RAW"));
  assert.ok(!all.includes("CAP_SYS_RESOURCE"), "not in the host bounding set");
  assert.deepEqual(computeCapabilities({ capDrop: ["all"], capAdd: ["chown"] }, goldenHost.capBounding, []), ["CAP_CHOWN"]);
  assert.throws(() => computeCapabilities({ capAdd: ["CAP_FOO"] }, goldenHost.capBounding, []), isInvalidArgument);
  const w: string[] = [];
  computeCapabilities({ capAdd: ["SYS_RESOURCE"] }, goldenHost.capBounding, w);
  assert.equal(w.length, 1);
  assert.equal(computeCapabilities({ privileged: true }, goldenHost.capBounding, []).length, 40);
});

test("mergeEnv replaces in place, appends and unsets", () => {
  assert.deepEqual(mergeEnv(["PATH=/a", "HOSTNAME=h"], ["PATH=/b", "X=1", "HOSTNAME"]), ["PATH=/b", "X=1"]);
  assert.deepEqual(mergeEnv(["A=1"], ["B=x=y"]), ["A=1", "B=x=y"]);
});

test("env defaults: PATH, HOSTNAME, TERM with tty, HOME from the user", () => {
  const { spec } = buildSpec({
    rootfs: "/r",
    args: ["sh"],
    user: { uid: 1, gid: 1, additionalGids: [], home: "/home/u" },
    tty: true,
    hostname: "h",
    cgroupsPath: "/berth/x",
    host: goldenHost,
  });
  assert.deepEqual(spec.process?.env, [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOSTNAME=h",
    "TERM=xterm",
    "HOME=/home/u",
  ]);
});

test("bad inputs are clear errors", () => {
  const base: ContainerSpecInput = {
    rootfs: "/r",
    args: ["sh"],
    user: { uid: 0, gid: 0, additionalGids: [], home: "/root" },
    cgroupsPath: "/berth/x",
    host: goldenHost,
  };
  assert.throws(() => buildSpec({ ...base, args: [] }), isInvalidArgument);
  assert.throws(() => buildSpec({ ...base, cwd: "relative" }), /absolute path/);
  assert.throws(() => buildSpec({ ...base, mounts: [{ type: "bind", source: "rel", destination: "/x" }] }), isInvalidArgument);
  assert.throws(
    () =>
      buildSpec({
        ...base,
        mounts: [
          { type: "tmpfs", destination: "/x" },
          { type: "tmpfs", destination: "/x/" },
        ],
      }),
    /Duplicate mount point/,
  );
  assert.throws(() => buildSpec({ ...base, sysctls: { "kernel.panic": "1" } }), /not namespaced/);
  assert.throws(() => buildSpec({ ...base, network: "host", sysctls: { "net.core.somaxconn": "1" } }), /host network/);
  assert.throws(() => buildSpec({ ...base, oomScoreAdj: 5000 }), isInvalidArgument);
});

test("sysctl validation follows the namespaces", () => {
  validateSysctl("kernel.shmmax", {});
  validateSysctl("fs.mqueue.msg_max", {});
  validateSysctl("net.ipv4.ip_forward", { network: { path: "/run/netns/x" } });
  assert.throws(() => validateSysctl("kernel.sem", { ipc: "host" }), isInvalidArgument);
  assert.throws(() => validateSysctl("vm.swappiness", {}), isInvalidArgument);
});

test("resources: swap default, discarded limits, absurd values", () => {
  const w: string[] = [];
  const r = buildResources({ memory: 64 << 20 }, goldenHost, w);
  assert.equal(r.memory?.swap, 128 << 20);
  buildResources({ blkioWeight: 500 }, goldenHost, w);
  assert.match(w.join("\n"), /Block I\/O weight/);
  assert.throws(() => buildResources({ cpusetCpus: "0-99999999999" }, goldenHost), isInvalidArgument);
  assert.throws(() => buildResources({ cpusetCpus: "0-7" }, goldenHost), /not available/);
  assert.throws(() => buildResources({ memory: -1 }, goldenHost), isInvalidArgument);
  assert.throws(() => buildResources({ memory: 1024 }, goldenHost), /Minimum memory/);
  assert.throws(() => buildResources({ nanoCpus: 1e9, cpuQuota: 50000 }, goldenHost), /Conflicting/);
  assert.throws(() => buildResources({ nanoCpus: 64e9 }, goldenHost), /CPUs available/);
  assert.deepEqual(buildResources({ pidsLimit: -1 }, goldenHost).pids, { limit: -1 });
  validateCpuset("0,2-3", "0-3", "CPUs");
  assert.throws(() => validateCpuset("3-1", "0-3", "CPUs"), isInvalidArgument);
});

test("rlimits default to the host's NOFILE hard limit and are clamped", () => {
  const w: string[] = [];
  assert.deepEqual(buildRlimits([], goldenHost, w), [{ type: "RLIMIT_NOFILE", soft: 65536, hard: 65536 }]);
  const r = buildRlimits([{ name: "nofile", soft: 1048576, hard: 1048576 }], goldenHost, w);
  assert.deepEqual(r, [{ type: "RLIMIT_NOFILE", soft: 65536, hard: 65536 }]);
  assert.equal(w.length, 1);
  assert.throws(() => buildRlimits([{ name: "bogus", soft: 1, hard: 1 }], goldenHost, []), isInvalidArgument);
  assert.throws(() => buildRlimits([{ name: "nofile", soft: 10, hard: 5 }], goldenHost, []), isInvalidArgument);
});

test("device cgroup rules parse", () => {
  assert.deepEqual(parseDeviceCgroupRule("c 1:3 rwm"), { allow: true, type: "c", major: 1, minor: 3, access: "rwm" });
  assert.deepEqual(parseDeviceCgroupRule("a *:* r"), { allow: true, type: "a", access: "r" });
  assert.throws(() => parseDeviceCgroupRule("x 1:2 rwm"), isInvalidArgument);
});

test("seccomp: default profile denies keyctl, io_uring, unshare and mount without CAP_SYS_ADMIN", () => {
  const oci = seccompToOci(defaultSeccompProfile(), { capabilities: DEFAULT_CAPABILITIES, arch: "amd64", kernel: "6.1.0" });
  const allowed = new Set(oci.syscalls?.filter((s) => s.action === "SCMP_ACT_ALLOW" && !s.args).flatMap((s) => s.names));
  for (const denied of ["keyctl", "io_uring_setup", "unshare", "mount", "add_key", "reboot", "setns"])
    assert.ok(!allowed.has(denied), denied);
  for (const ok of [
    "read",
    "write",
    "execve",
    "arch_prctl",
    "chroot",
    "ptrace",
    "pipe",
    "pipe2",
    "socketpair",
    "wait4",
    "futex",
    "openat",
    "mmap",
    "epoll_wait",
    "statx",
    "getdents64",
    "prctl",
  ]) {
    assert.ok(allowed.has(ok), ok);
  }
  assert.ok(
    oci.syscalls?.some((s) => s.names.includes("clone") && s.args?.[0]?.op === "SCMP_CMP_MASKED_EQ"),
    "clone without namespace flags",
  );
  assert.ok(
    oci.syscalls?.some((s) => s.names.includes("socket") && s.args?.[0]?.value === 40),
    "socket except AF_VSOCK",
  );
  assert.deepEqual(oci.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  assert.equal(oci.defaultErrnoRet, 1);
  const clone3 = oci.syscalls?.find((s) => s.names.includes("clone3"));
  assert.equal(clone3?.errnoRet, 38);
  const admin = seccompToOci(defaultSeccompProfile(), {
    capabilities: [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"],
    arch: "amd64",
    kernel: "6.1.0",
  });
  const adminAllowed = new Set(admin.syscalls?.filter((s) => s.action === "SCMP_ACT_ALLOW").flatMap((s) => s.names));
  assert.ok(adminAllowed.has("mount") && adminAllowed.has("unshare"));
  assert.ok(!admin.syscalls?.some((s) => s.names.includes("clone3") && s.action === "SCMP_ACT_ERRNO"));
  const old = seccompToOci(defaultSeccompProfile(), { capabilities: DEFAULT_CAPABILITIES, arch: "amd64", kernel: "4.4.0" });
  assert.ok(!old.syscalls?.some((s) => s.names.includes("ptrace")));
});

test("kernel version comparison", () => {
  assert.ok(kernelAtLeast("6.18.44-fc", "4.8"));
  assert.ok(!kernelAtLeast("4.4.0", "4.8"));
  assert.ok(kernelAtLeast("4.8", "4.8"));
});

test("host facts parse", () => {
  assert.deepEqual(capabilitiesFromMask("00000000a80425fb").sort(), [...DEFAULT_CAPABILITIES].sort());
  const limits = parseProcLimits(
    "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 20000                files\nMax core file size        0                    unlimited            bytes\n",
  );
  assert.deepEqual(limits, { RLIMIT_NOFILE: { soft: 1024, hard: 20000 }, RLIMIT_CORE: { soft: 0, hard: -1 } });
});

test("tmpfs mounts get Docker's noexec, nosuid, nodev unless the opposite is asked for", () => {
  const { spec } = buildSpec({
    rootfs: "/r",
    args: ["sh"],
    user: { uid: 0, gid: 0, additionalGids: [], home: "/root" },
    cgroupsPath: "/berth/x",
    host: goldenHost,
    mounts: [
      { type: "tmpfs", destination: "/a", options: [] },
      { type: "tmpfs", destination: "/b", options: ["exec", "size=1m"] },
      { type: "tmpfs", destination: "/c", options: ["suid", "dev"], readonly: true },
    ],
  });
  const opts = (d: string) => spec.mounts?.find((m) => m.destination === d)?.options;
  assert.deepEqual(opts("/a"), ["noexec", "nosuid", "nodev"]);
  assert.deepEqual(opts("/b"), ["nosuid", "nodev", "exec", "size=1m"]);
  assert.deepEqual(opts("/c"), ["noexec", "suid", "dev", "ro"]);
});
