/**
 * # runtime: from a mounted root filesystem to a monitored process
 *
 * Terms. A **bundle directory** (containers/<id>/ in the data root) holds a container's
 * config.json and the files of its **monitor**, conmon: the pid files, the `exit` file (exit
 * code, written after the log is complete), an `oom` marker, the `attach` socket and the `ctl`
 * FIFO for terminal resizes. conmon runs the **OCI runtime** (runc, or crun) and outlives
 * berthd; a new `ContainerRuntime` finds every container again from its bundle directory.
 *
 * A typical run (what `docker run -i busybox cat` does):
 *
 * ```ts
 * const rt = new ContainerRuntime(new RealHost(), { stateRoot: "/run/berth/runtime" });
 * const { spec, warnings } = await generateSpec({
 *   rootfs, args: ["cat"], env: imageEnv, user: "", hostname: id.slice(0, 12),
 *   network: { path: netnsPath }, mounts: [hostsBind, resolvBind, hostnameBind],
 *   cgroupsPath: `/berth/${id}`,
 * });
 * await rt.create(id, { bundleDir, spec, logPath: `${bundleDir}/ctr.log`, stdin: true, stdinOnce: true });
 * const session = await rt.attach(id, { onData: (stream, data) => send(stream, data) });
 * await rt.start(id);
 * await session.write(Buffer.from("hi\n")); session.end();        // stdin EOF → cat exits
 * const { exitCode } = await rt.waitExit(id);                     // log complete from here
 * for await (const e of readLogs(`${bundleDir}/ctr.log`, { tail: 10 })) print(e);
 * await rt.delete(id);
 * ```
 *
 * Stop is the caller's: `kill(id, "TERM")`, `waitExit` with a timeout, then `kill(id, "KILL")`.
 * After a berthd restart: `restore(id, bundleDir)` gives the state (running, or stopped with
 * the exit code recorded while berthd was down); attach, exec, kill work as before.
 *
 * Exit codes follow Docker: the process's code, 128+signal when killed, 255 when the monitor
 * died without recording one; a process that cannot start fails `create` with a BerthError whose
 * `detail.exitCode` is 127 (not found) or 126 (not executable).
 *
 * Attach and exec: conmon's attach socket is SOCK_SEQPACKET (one packet per output read, first
 * byte 2 = stdout, 3 = stderr; stdin packets are raw; half-close = stdin EOF), reached through
 * the `node-unix-socket` addon. Exec runs a second conmon in `--exec --exec-attach` mode: berthd
 * connects to the exec's attach socket before the process starts (no output is lost), conmon
 * receives the TTY master from runc (which Node cannot), and reports the pid, then the exit code.
 *
 * Security defaults equal Docker's: 14 capabilities, empty inheritable set, the default seccomp
 * profile (seccomp_default.json, Docker's format and semantics), masked and read-only /proc
 * paths, a device cgroup allow-list; privileged means every capability of the host's bounding
 * set, host devices, no seccomp and no masks. Only stdio reaches the container (runc marks every
 * other descriptor close-on-exec; `closeInheritedDescriptors()` keeps berthd's inherited ones out
 * of the long-lived monitors).
 */
export type { AttachSession, AttachSocketOptions, StdStream } from "./attach.ts";
export { attachSocket } from "./attach.ts";
export {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH_ENV,
  DEFAULT_READONLY_PATHS,
  DEFAULT_SHM_SIZE,
  INIT_PATH_IN_CONTAINER,
} from "./defaults.ts";
export type { GeneratedSpec, GenerateSpecInput } from "./generate.ts";
export { findInit, generateSpec } from "./generate.ts";
export type { DeviceMapping, HostInfo } from "./host_info.ts";
export { capabilitiesFromMask, listHostDevices, readHostInfo, resolveDevice } from "./host_info.ts";
export type { LogEntry, ReadLogsOptions } from "./logs.ts";
export { formatTimestampNanos, parseDockerTime, parseTimestampNanos, readLogs, rotateLog } from "./logs.ts";
export { mkdirInRoot, readFileInRoot, resolveInRoot } from "./rootfs.ts";
export type {
  AttachOptions,
  ContainerState,
  CreateOptions,
  CreateResult,
  ExecOptions,
  ExecSession,
  ExitStatus,
  OciRuntime,
  RuntimeOptions,
} from "./runtime.ts";
export { ContainerRuntime, closeInheritedDescriptors, defaultOciRuntime, parseSignal, startErrorExitCode } from "./runtime.ts";
export type { DockerSeccompProfile, DockerSeccompRule, SeccompContext } from "./seccomp.ts";
export { defaultSeccompProfile, parseSeccompProfile, seccompToOci } from "./seccomp.ts";
export type { BuiltSpec, ContainerSpecInput, ExecProcessInput, MountInput, NamespaceMode, ResourceOptions, Ulimit } from "./spec.ts";
export {
  buildExecProcess,
  buildResources,
  buildSpec,
  computeCapabilities,
  mergeEnv,
  normalizeCapability,
  parseDeviceCgroupRule,
  validateSysctl,
} from "./spec.ts";
export type * from "./spec_types.ts";
export type { BlkioEntry, ContainerStats, CpuStats, MemoryStats, NetworkStats } from "./stats.ts";
export { parseNetDev, readContainerStats, systemCpuUsage } from "./stats.ts";
export type { ResolvedUser } from "./user.ts";
export { parseGroup, parsePasswd, resolveUser, resolveUserFrom } from "./user.ts";
