/**
 * `ContainerRuntime` drives an OCI runtime (runc by default, crun selectable) under conmon, the
 * per-container monitor. conmon double-forks and outlives berthd: it holds the container's
 * stdio, writes the k8s-file log, serves the attach socket and records the exit code in
 * `<bundle>/exit` (and an `oom` marker). Everything about a container is found again from its
 * bundle directory, so a new `ContainerRuntime` after a berthd restart picks up where the old
 * one left (`restore`).
 *
 * Files in a bundle directory: config.json (the spec), runtime.json (how it was created),
 * conmon.pid, pid (the container's init pid), exit, oom, attach (socket), ctl and winsz (FIFOs),
 * exec/<id>/ (one per exec session).
 */
import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { closeSync, constants, readdirSync, readFileSync, watch } from "node:fs";
import { mkdir, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import {
  BerthError,
  ErrorKind,
  failedPrecondition,
  type Host,
  internal,
  invalidArgument,
  type Logger,
  notFound,
  nullLogger,
  writeFileAtomic,
} from "../base/mod.ts";
import { type AttachSession, attachSocket, type StdStream } from "./attach.ts";
import type { LinuxResources, ProcessSpec, RuntimeSpec } from "./spec_types.ts";
import { type ContainerStats, readContainerStats } from "./stats.ts";

/** The OCI runtime binary to drive. */
export interface OciRuntime {
  /** runc or crun (the name is also the state directory under `stateRoot`). */
  name: string;
  path: string;
}

/** Options of `ContainerRuntime`. */
export interface RuntimeOptions {
  /** The default runtime (runc from the distribution when absent). */
  runtime?: OciRuntime;
  /** More runtimes a container may name (daemon.json `runtimes`); crun is added when installed. */
  runtimes?: OciRuntime[];
  conmonPath?: string;
  /** Runtime state (runc --root) lives in `<stateRoot>/<runtime name>`; /run/berth/runtime in berthd. */
  stateRoot: string;
  logger?: Logger;
  /** cgroup filesystem root, for stats (default /sys/fs/cgroup). */
  cgroupRoot?: string;
}

/** Options of `create`. */
export interface CreateOptions {
  /** Directory for config.json and the monitor's files (containers/<id>/ in the data root). */
  bundleDir: string;
  /** The spec to write as config.json; when absent, config.json must already be there. */
  spec?: RuntimeSpec;
  /** Log file (k8s-file format), complete whether or not anyone is attached. */
  logPath: string;
  tty?: boolean;
  /** Keep a stdin pipe open for attach (`-i`). */
  stdin?: boolean;
  /** Close stdin when the first attached client detaches (Docker's StdinOnce); otherwise stdin stays open. */
  stdinOnce?: boolean;
  /** Maximum log size in bytes (conmon rotates by truncating); unlimited by default. */
  logSizeMax?: number;
  /** No log at all (`--log-driver none`): output only reaches attached clients. */
  noLog?: boolean;
  /** The OCI runtime by name (`--runtime`); the default one when absent. */
  runtime?: string;
}

/** Where a container stands, as seen by the runtime and the monitor. */
export interface ContainerState {
  /** `created` (not started), `running`, `paused`, `stopped`, or `unknown` (no runtime state and no exit file). */
  status: "created" | "running" | "paused" | "stopped" | "unknown";
  /** The container's init pid (0 when not running). */
  pid: number;
  /** The monitor's pid; 0 when it is gone. */
  monitorPid: number;
  /** Set once the container exited and the monitor recorded it. */
  exit?: ExitStatus;
}

/** How a container (or exec'ed process) ended. */
export interface ExitStatus {
  /** The process's code, 128+signal when killed; 255 when the monitor died without recording it. */
  exitCode: number;
  /** When the monitor recorded the exit. */
  exitedAt: Date;
  oomKilled: boolean;
}

/** Options of `attach`. */
export interface AttachOptions {
  onData?: (stream: StdStream, data: Buffer) => void;
  signal?: AbortSignal;
}

/** Options of `exec`. */
export interface ExecOptions {
  /** The process to run (`buildExecProcess` derives one from the container's spec). */
  process: ProcessSpec;
  /** Open a stdin pipe. */
  stdin?: boolean;
  onData?: (stream: StdStream, data: Buffer) => void;
  signal?: AbortSignal;
}

/** A running exec session. */
export interface ExecSession {
  execId: string;
  /** Host pid of the exec'ed process. */
  pid: number;
  /** Writes to stdin (when opened). */
  write(data: Uint8Array): Promise<void>;
  /** Closes stdin. */
  end(): void;
  /** Resizes the exec's TTY. */
  resize(height: number, width: number): Promise<void>;
  /** Settles with the exit code once the process exited and its output was delivered. */
  readonly exit: Promise<{ exitCode: number }>;
}

/** What `create` returns. */
export interface CreateResult {
  /** Container init pid on the host. */
  pid: number;
  /** conmon's pid. */
  monitorPid: number;
}

interface ContainerRecord {
  id: string;
  bundleDir: string;
  logPath: string;
  tty: boolean;
  stdin: boolean;
  runtime: OciRuntime;
}

const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

const SIGNALS: Record<string, number> = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  TRAP: 5,
  ABRT: 6,
  IOT: 6,
  BUS: 7,
  FPE: 8,
  KILL: 9,
  USR1: 10,
  SEGV: 11,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
  STKFLT: 16,
  CHLD: 17,
  CONT: 18,
  STOP: 19,
  TSTP: 20,
  TTIN: 21,
  TTOU: 22,
  URG: 23,
  XCPU: 24,
  XFSZ: 25,
  VTALRM: 26,
  PROF: 27,
  WINCH: 28,
  IO: 29,
  POLL: 29,
  PWR: 30,
  SYS: 31,
};

/** Parses a signal ("SIGTERM", "term", "15", "RTMIN+3") to its number. */
export function parseSignal(signal: string | number): number {
  if (typeof signal === "number") {
    if (Number.isInteger(signal) && signal >= 1 && signal <= 64) return signal;
    throw invalidArgument(`Invalid signal: ${signal}`);
  }
  const s = signal.trim().toUpperCase().replace(/^SIG/, "");
  if (/^\d+$/.test(s)) return parseSignal(Number(s));
  const n = SIGNALS[s];
  if (n !== undefined) return n;
  const rt = /^RTMIN(?:\+(\d+))?$/.exec(s) ?? /^RTMAX(?:-(\d+))?$/.exec(s);
  if (rt) {
    const off = Number(rt[1] ?? 0);
    const v = s.startsWith("RTMIN") ? 34 + off : 64 - off;
    if (v >= 34 && v <= 64) return v;
  }
  throw invalidArgument(`Invalid signal: ${signal}`);
}

/**
 * The exit code Docker reports when the runtime cannot start the process: 127 for a missing
 * executable, 126 when it cannot be executed, 128 otherwise.
 */
export function startErrorExitCode(message: string): number {
  if (/chdir to cwd/i.test(message)) return 126; // a missing working directory is not a missing command
  if (/executable file not found|no such file or directory|not found in \$PATH/i.test(message)) return 127;
  if (/permission denied|exec format error|is a directory/i.test(message)) return 126;
  return 128;
}

/** The useful part of runc's stderr (`time=... level=error msg="..."`) or conmon's message. */
function runtimeMessage(text: string): string {
  const msgs = [...text.matchAll(/msg="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\"/g, '"').replace(/\\\\/g, "\\"));
  return (msgs.length ? msgs.join(": ") : text).trim();
}

/** A failed create or exec, worded as containerd's shim words it (clients and users match on it). */
function startError(what: string, message: string): BerthError {
  const text = runtimeMessage(message);
  const exitCode = startErrorExitCode(text);
  return new BerthError(exitCode === 128 ? ErrorKind.Internal : ErrorKind.InvalidArgument, `${what}: ${text}: unknown`, {
    detail: { exitCode, runtimeMessage: text },
  });
}

/** Reads newline-terminated JSON messages from a conmon pipe. */
class MessageReader {
  #buf = "";
  #queue: Record<string, unknown>[] = [];
  #waiters: ((m: Record<string, unknown> | undefined) => void)[] = [];
  #ended = false;
  constructor(stream: Readable) {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      this.#buf += chunk;
      let i = this.#buf.indexOf("\n");
      while (i >= 0) {
        const line = this.#buf.slice(0, i).trim();
        this.#buf = this.#buf.slice(i + 1);
        if (line) {
          try {
            this.#push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            this.#push({ data: -1, message: `Invalid message from the monitor: ${line}` });
          }
        }
        i = this.#buf.indexOf("\n");
      }
    });
    const end = () => {
      this.#ended = true;
      for (const w of this.#waiters.splice(0)) w(undefined);
    };
    stream.on("end", end);
    stream.on("close", end);
    stream.on("error", end);
  }
  #push(m: Record<string, unknown>) {
    const w = this.#waiters.shift();
    if (w) w(m);
    else this.#queue.push(m);
  }
  next(): Promise<Record<string, unknown> | undefined> {
    const m = this.#queue.shift();
    if (m) return Promise.resolve(m);
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((r) => this.#waiters.push(r));
  }
}

function collect(stream: Readable | null | undefined, max = 64 * 1024): () => string {
  let out = "";
  stream?.setEncoding("utf8");
  stream?.on("data", (c: string) => {
    if (out.length < max) out += c;
  });
  stream?.on("error", () => {});
  return () => out;
}

function isAlive(pid: number, mustContain: string): boolean {
  if (!pid) return false;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    // A recycled pid belongs to something else: conmon's command line names the container.
    return cmdline.includes("conmon") && cmdline.split("\0").includes(mustContain);
  } catch {
    return false;
  }
}

async function readInt(path: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await readFile(path, "utf8")).trim(), 10);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Closes descriptors berthd inherited from its parent without close-on-exec (Node and libuv open
 * everything with O_CLOEXEC, so those are exactly the inherited ones). conmon is a long-lived
 * daemon: it would otherwise hold them (a supervisor's pipe, a terminal) for the container's life.
 * Call once at daemon start.
 */
export function closeInheritedDescriptors(): number[] {
  const closed: number[] = [];
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    return closed;
  }
  // Node's own IPC channel (a forked berthd) is inherited on purpose.
  const ipc = Number(process.env.NODE_CHANNEL_FD ?? -1);
  for (const name of fds) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2 || fd === ipc) continue;
    try {
      const info = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
      const flags = /^flags:\s*([0-7]+)/m.exec(info)?.[1];
      if (flags === undefined) continue;
      if ((Number.parseInt(flags, 8) & 0o2000000) === 0) {
        closeSync(fd);
        closed.push(fd);
      }
    } catch {
      // The listing's own descriptor, or already closed.
    }
  }
  return closed;
}

/** Default OCI runtime: runc from the distribution. */
export function defaultOciRuntime(): OciRuntime {
  for (const p of ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"]) {
    try {
      readdirSync(p.slice(0, p.lastIndexOf("/")));
      if (readFileSync(p).length) return { name: "runc", path: p };
    } catch {
      // Try the next place.
    }
  }
  return { name: "runc", path: "/usr/sbin/runc" };
}

/**
 * Drives containers through conmon and an OCI runtime. One instance per daemon; methods take
 * the container id, which must have been `create`d or `restore`d by this instance.
 */
export class ContainerRuntime {
  #host: Host;
  #runtime: OciRuntime;
  #runtimes = new Map<string, OciRuntime>();
  #conmon: string;
  #stateRoot: string;
  #log: Logger;
  #cgroupRoot: string;
  #containers = new Map<string, ContainerRecord>();

  constructor(host: Host, options: RuntimeOptions) {
    this.#host = host;
    this.#runtime = options.runtime ?? defaultOciRuntime();
    for (const p of ["/usr/bin/crun", "/usr/local/bin/crun"]) {
      if (existsSync(p)) {
        this.#runtimes.set("crun", { name: "crun", path: p });
        break;
      }
    }
    for (const rt of options.runtimes ?? []) this.#runtimes.set(rt.name, rt);
    this.#runtimes.set(this.#runtime.name, this.#runtime);
    this.#conmon = options.conmonPath ?? "/usr/bin/conmon";
    this.#stateRoot = options.stateRoot;
    this.#log = options.logger ?? nullLogger;
    this.#cgroupRoot = options.cgroupRoot ?? "/sys/fs/cgroup";
  }

  /** The default runtime's name. */
  get defaultRuntime(): string {
    return this.#runtime.name;
  }

  /** Makes a known runtime the default (daemon.json `default-runtime`). */
  setDefault(name: string): void {
    const rt = this.#runtimes.get(name);
    if (!rt) throw invalidArgument(`unknown or invalid runtime name: ${name}`);
    this.#runtime = rt;
  }

  /** The runtimes a container can name, default first. */
  runtimes(): OciRuntime[] {
    return [this.#runtime, ...[...this.#runtimes.values()].filter((r) => r !== this.#runtime)];
  }

  #root(rt: OciRuntime): string {
    return join(this.#stateRoot, rt.name);
  }

  #get(id: string): ContainerRecord {
    const c = this.#containers.get(id);
    if (!c) throw notFound(`No such container in the runtime: ${id}`);
    return c;
  }

  async #oci(rt: OciRuntime, args: string[], allowFailure = false) {
    return await this.#host.run(rt.path, ["--root", this.#root(rt), ...args], { allowFailure: true }).then((r) => {
      if (r.code !== 0 && !allowFailure) {
        const msg = runtimeMessage(r.stderr || r.stdout);
        if (/does not exist|not found/i.test(msg)) throw notFound(`No such container in the runtime: ${msg}`);
        if (/not running|not paused|is paused|stopped|cannot .* in a stopped|container is not/i.test(msg)) throw failedPrecondition(msg);
        throw internal(`${rt.name} ${args[0]} failed: ${msg}`);
      }
      return r;
    });
  }

  /**
   * Creates the container: writes config.json (when `spec` is given) and starts conmon, which
   * runs `runc create`. The process waits for `start`; attach before starting to see all output.
   */
  async create(id: string, options: CreateOptions): Promise<CreateResult> {
    if (!ID_RE.test(id)) throw invalidArgument(`Invalid container id "${id}"`);
    if (this.#containers.has(id)) {
      const st = await this.state(id);
      if (st.status !== "stopped" && st.status !== "unknown") throw failedPrecondition(`Container ${id} is already ${st.status}`);
    }
    const runtime = options.runtime ? this.#runtimes.get(options.runtime) : this.#runtime;
    if (!runtime) throw invalidArgument(`unknown or invalid runtime name: ${options.runtime}`);
    const dir = options.bundleDir;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await mkdir(this.#root(runtime), { recursive: true, mode: 0o700 });
    // The bundle is rewritten at every start and means nothing after a machine crash (the
    // container is gone then): atomic, but no fsync on the start path.
    const written = options.spec
      ? writeFileAtomic(join(dir, "config.json"), JSON.stringify(options.spec), 0o600, { durable: false })
      : Promise.resolve();
    await Promise.all([
      written,
      ...["exit", "oom", "pid", "conmon.pid", "attach", "ctl", "winsz"].map((f) => rm(join(dir, f), { force: true })),
    ]);
    // A previous run of the same id leaves runtime state behind; runc refuses to create over it.
    // Only then is a delete needed: a first start saves the process spawn.
    if (existsSync(join(this.#root(runtime), id))) await this.#oci(runtime, ["delete", "--force", id], true);

    const rec: ContainerRecord = {
      id,
      bundleDir: dir,
      logPath: options.logPath,
      tty: options.tty === true,
      stdin: options.stdin === true,
      runtime,
    };
    await writeFileAtomic(join(dir, "runtime.json"), JSON.stringify(rec), 0o600, { durable: false });

    const args = [
      "--api-version",
      "1",
      "-c",
      id,
      "-u",
      id,
      "-n",
      id,
      "-r",
      runtime.path,
      "--runtime-arg",
      "--root",
      "--runtime-arg",
      this.#root(runtime),
      "-b",
      dir,
      "-p",
      join(dir, "pid"),
      "-P",
      join(dir, "conmon.pid"),
      "-0",
      dir,
      "-l",
      options.noLog ? "none:" : `k8s-file:${options.logPath}`,
      "--full-attach",
      "--socket-dir-path",
      dir,
      "--log-level",
      "error",
    ];
    if (options.logSizeMax) args.push("--log-size-max", String(options.logSizeMax));
    if (rec.tty) args.push("-t");
    if (rec.stdin) {
      args.push("-i");
      // As dockerd: "stdin once" closes the process's stdin when the first client's input ends,
      // but never for a TTY (a detached or dropped terminal can attach again).
      if (!options.stdinOnce || rec.tty) args.push("--leave-stdin-open");
    }
    const child = this.#spawnMonitor(args, dir, 4);
    const stderr = collect(child.stderr);
    const sync = new MessageReader(child.stdio[3] as Readable);
    const first = await sync.next();
    (child.stdio[3] as Readable).destroy();
    child.unref();
    const data = typeof first?.data === "number" ? first.data : -1;
    if (data <= 0) {
      await this.#oci(runtime, ["delete", "--force", id], true);
      const message = typeof first?.message === "string" ? first.message : stderr() || "the monitor exited without a message";
      throw startError("failed to create shim task: OCI runtime create failed", message);
    }
    this.#containers.set(id, rec);
    const monitorPid = (await readInt(join(dir, "conmon.pid"))) ?? 0;
    this.#log.debug("container created", { id, pid: data, monitorPid });
    return { pid: data, monitorPid };
  }

  #spawnMonitor(args: string[], cwd: string, fds: number): ReturnType<Host["spawn"]> {
    const stdio: ("ignore" | "pipe")[] = ["ignore", "pipe", "pipe"];
    for (let i = 3; i < fds; i++) stdio.push("pipe");
    const env: Record<string, string> = {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      TZ: "UTC",
      _OCI_SYNCPIPE: "3",
    };
    if (fds > 4) env._OCI_STARTPIPE = "4";
    if (fds > 5) env._OCI_ATTACHPIPE = "5";
    // conmon writes its "oom" marker relative to its working directory.
    return this.#host.spawn(this.#conmon, args, { cwd, env, stdio });
  }

  /**
   * Registers a container created by an earlier berthd (found from its bundle directory). Returns
   * its state; throws NotFound when the directory holds no runtime record.
   */
  async restore(id: string, bundleDir: string): Promise<ContainerState> {
    let rec: ContainerRecord;
    try {
      rec = JSON.parse(await readFile(join(bundleDir, "runtime.json"), "utf8")) as ContainerRecord;
    } catch {
      throw notFound(`No runtime record for container ${id} in "${bundleDir}"`);
    }
    if (rec.id !== id) throw invalidArgument(`Runtime record in "${bundleDir}" is for container "${rec.id}", not "${id}"`);
    rec.bundleDir = bundleDir;
    this.#containers.set(id, rec);
    return await this.state(id);
  }

  /**
   * Containers the OCI runtime knows under berth's state root, registered here or not: at daemon
   * start, the ones without a database entry are leftovers to delete.
   */
  async list(): Promise<{ id: string; pid: number; status: string; bundle: string }[]> {
    const out: { id: string; pid: number; status: string; bundle: string }[] = [];
    for (const rt of this.runtimes()) {
      if (!existsSync(this.#root(rt))) continue;
      const r = await this.#oci(rt, ["list", "--format", "json"], true);
      if (r.code !== 0) continue;
      const items = (JSON.parse(r.stdout || "null") ?? []) as { id: string; pid: number; status: string; bundle: string }[];
      out.push(...items.map((c) => ({ id: c.id, pid: c.pid, status: c.status, bundle: c.bundle })));
    }
    return out;
  }

  /** Forgets a container without touching it (after `delete`, or when the service drops it). */
  forget(id: string): void {
    this.#containers.delete(id);
  }

  /** Starts a created container's process. */
  async start(id: string): Promise<void> {
    const c = this.#get(id);
    await this.#oci(c.runtime, ["start", id]);
  }

  async #exitStatus(dir: string): Promise<ExitStatus | undefined> {
    const path = join(dir, "exit");
    const code = await readInt(path);
    if (code === undefined) return undefined;
    const st = await stat(path);
    return { exitCode: code < 0 ? 255 : code, exitedAt: st.mtime, oomKilled: await exists(join(dir, "oom")) };
  }

  async #monitorPid(c: ContainerRecord): Promise<number> {
    const pid = (await readInt(join(c.bundleDir, "conmon.pid"))) ?? 0;
    return isAlive(pid, c.id) ? pid : 0;
  }

  /** The container's state from the runtime, the monitor and the exit file. */
  async state(id: string): Promise<ContainerState> {
    const c = this.#get(id);
    const monitorPid = await this.#monitorPid(c);
    const exit = await this.#exitStatus(c.bundleDir);
    const r = await this.#oci(c.runtime, ["state", id], true);
    if (r.code === 0) {
      const s = JSON.parse(r.stdout) as { status: string; pid: number };
      const status = (["created", "running", "paused", "stopped"].includes(s.status) ? s.status : "unknown") as ContainerState["status"];
      if (status === "stopped") return { status, pid: 0, monitorPid, exit: exit ?? (monitorPid ? undefined : lostExit()) };
      return { status, pid: s.pid, monitorPid };
    }
    if (exit) return { status: "stopped", pid: 0, monitorPid, exit };
    return { status: monitorPid ? "unknown" : "stopped", pid: 0, monitorPid, ...(monitorPid ? {} : { exit: lostExit() }) };
  }

  /** Sends a signal to the container's init (or, with `all`, every process in it). */
  async kill(id: string, signal: string | number = "SIGTERM", options: { all?: boolean } = {}): Promise<void> {
    const c = this.#get(id);
    const n = parseSignal(signal);
    await this.#oci(c.runtime, ["kill", ...(options.all ? ["--all"] : []), id, String(n)]);
  }

  /** Freezes every process of the container (cgroup freezer). */
  async pause(id: string): Promise<void> {
    const c = this.#get(id);
    await this.#oci(c.runtime, ["pause", id]);
  }

  /** Thaws a paused container. */
  async resume(id: string): Promise<void> {
    const c = this.#get(id);
    await this.#oci(c.runtime, ["resume", id]);
  }

  /** Changes the cgroup limits of a running container (`runc update`). */
  async update(id: string, resources: LinuxResources): Promise<void> {
    const c = this.#get(id);
    const file = join(c.bundleDir, `.update-${randomBytes(4).toString("hex")}.json`);
    const { devices: _devices, ...rest } = resources;
    await writeFile(file, JSON.stringify(rest), { mode: 0o600 });
    try {
      await this.#oci(c.runtime, ["update", "--resources", file, id]);
    } finally {
      await rm(file, { force: true });
    }
  }

  /**
   * Removes the container from the runtime (its cgroups, runtime state) and waits for the monitor
   * to finish writing logs. `force` kills a running container first. The bundle directory, the
   * log and the exit file stay for the caller.
   */
  async delete(id: string, options: { force?: boolean } = {}): Promise<void> {
    const c = this.#get(id);
    const r = await this.#oci(c.runtime, ["delete", ...(options.force ? ["--force"] : []), id], true);
    if (r.code !== 0) {
      const msg = runtimeMessage(r.stderr || r.stdout);
      if (!/does not exist|not found/i.test(msg)) {
        if (/running|paused|created/i.test(msg)) throw failedPrecondition(`Cannot delete container ${id}: ${msg}`);
        throw internal(`Cannot delete container ${id}: ${msg}`);
      }
    }
    const pid = await this.#monitorPid(c);
    if (pid) {
      // conmon exits right after it records the exit: poll briefly first, then every 50 ms (5 s in all).
      for (let waited = 0, step = 1; waited < 5000 && isAlive(pid, id); waited += step, step = Math.min(step * 2, 50)) await sleep(step);
      if (isAlive(pid, id)) {
        this.#log.warn("monitor did not exit, killing it", { id, pid });
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Gone meanwhile.
        }
      }
    }
    await Promise.all([
      ...["attach", "ctl", "winsz", "pid", "conmon.pid", "runtime.json"].map((f) => rm(join(c.bundleDir, f), { force: true })),
      rm(join(c.bundleDir, "exec"), { recursive: true, force: true }),
    ]);
    this.#containers.delete(id);
  }

  /**
   * Waits until the container exited and the monitor recorded it (its log is then complete).
   * When the monitor died without recording, resolves with exit code 255 once the runtime no
   * longer runs the container.
   */
  async waitExit(id: string, options: { signal?: AbortSignal } = {}): Promise<ExitStatus> {
    const c = this.#get(id);
    const signal = options.signal;
    let wake: (() => void) | undefined;
    let watcher: ReturnType<typeof watch> | undefined;
    try {
      watcher = watch(c.bundleDir, (_ev, name) => {
        if (name === "exit") wake?.();
      });
      watcher.on("error", () => {});
    } catch {
      watcher = undefined;
    }
    try {
      let round = 0;
      for (;;) {
        if (signal?.aborted) throw new BerthError(ErrorKind.Canceled, "Wait canceled");
        const exit = await this.#exitStatus(c.bundleDir);
        if (exit) return exit;
        if (round++ % 4 === 3 && !(await this.#monitorPid(c))) {
          // The monitor is gone: the exit file may have landed just before it exited.
          const late = await this.#exitStatus(c.bundleDir);
          if (late) return late;
          const st = await this.#oci(c.runtime, ["state", id], true);
          const status = st.code === 0 ? (JSON.parse(st.stdout) as { status: string }).status : "stopped";
          if (status === "stopped") return lostExit();
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 250);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
          signal?.addEventListener(
            "abort",
            () => {
              clearTimeout(t);
              resolve();
            },
            { once: true },
          );
        });
      }
    } finally {
      watcher?.close();
    }
  }

  /**
   * Connects to the container's stdio. Output arrives from the moment of attaching (attach before
   * `start` to get all of it; the log file has everything regardless).
   */
  async attach(id: string, options: AttachOptions = {}): Promise<AttachSession> {
    const c = this.#get(id);
    return await attachSocket(join(c.bundleDir, "attach"), options);
  }

  /** Resizes the container's TTY. */
  async resize(id: string, height: number, width: number): Promise<void> {
    const c = this.#get(id);
    await writeControl(join(c.bundleDir, "ctl"), height, width);
  }

  /** Runs a process in the running container under its own conmon, with live stdio. */
  async exec(id: string, options: ExecOptions): Promise<ExecSession> {
    const c = this.#get(id);
    const execId = randomBytes(16).toString("hex");
    const dir = join(c.bundleDir, "exec", execId.slice(0, 12));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, "process.json"), JSON.stringify(options.process), { mode: 0o600 });
    const tty = options.process.terminal === true;
    const args = [
      "--api-version",
      "1",
      "--exec",
      "--exec-attach",
      "--exec-process-spec",
      join(dir, "process.json"),
      "-c",
      id,
      "-u",
      execId,
      "-r",
      c.runtime.path,
      "--runtime-arg",
      "--root",
      "--runtime-arg",
      this.#root(c.runtime),
      "-b",
      dir,
      "-p",
      join(dir, "pid"),
      "-0",
      dir,
      "-l",
      "none",
      "--full-attach",
      "--socket-dir-path",
      dir,
      "--log-level",
      "error",
    ];
    if (tty) args.push("-t");
    if (options.stdin) args.push("-i");
    const cleanup = () => rm(dir, { recursive: true, force: true }).catch(() => {});
    const child = this.#spawnMonitor(args, dir, 6);
    const stderr = collect(child.stderr);
    const sync = new MessageReader(child.stdio[3] as Readable);
    const startPipe = child.stdio[4] as Writable;
    const attachMsgs = new MessageReader((child.stdio as unknown as Readable[])[5]!);
    startPipe.on("error", () => {});
    let session: AttachSession | undefined;
    try {
      startPipe.write("0");
      const ready = await attachMsgs.next();
      if (ready?.data !== 0) {
        const first = await sync.next();
        const message = typeof first?.message === "string" ? first.message : stderr() || "the monitor exited";
        throw startError("OCI runtime exec failed", message);
      }
      session = await attachSocket(join(dir, "attach"), { onData: options.onData, signal: options.signal });
      startPipe.write("0");
      const started = await sync.next();
      const pid = typeof started?.data === "number" ? started.data : -1;
      if (pid <= 0) {
        const message = typeof started?.message === "string" ? started.message : stderr() || "the monitor exited";
        session.close();
        throw startError("OCI runtime exec failed", message);
      }
      const s = session;
      const exit = (async () => {
        const last = await sync.next();
        await Promise.race([s.done, sleep(2000)]);
        s.close();
        child.unref();
        await cleanup();
        const code = typeof last?.data === "number" ? last.data : 255;
        return { exitCode: code < 0 ? 255 : code };
      })();
      return {
        execId,
        pid,
        write: (data) => s.write(data),
        end: () => s.end(),
        resize: (h, w) => writeControl(join(dir, "ctl"), h, w),
        exit,
      };
    } catch (e) {
      session?.close();
      child.unref();
      for (const p of [3, 4, 5]) (child.stdio as unknown as (Readable | null)[])[p]?.destroy();
      await cleanup();
      if (
        e instanceof BerthError &&
        /stopped|not running|cannot exec/i.test(e.message) &&
        !(e.detail?.exitCode === 127 || e.detail?.exitCode === 126)
      ) {
        throw failedPrecondition(e.message, { cause: e, detail: e.detail });
      }
      throw e;
    }
  }

  /** Resource usage from the container's cgroup (v1 or v2) and its network namespace. */
  async stats(id: string): Promise<ContainerStats> {
    const c = this.#get(id);
    const st = await this.state(id);
    let cgroupsPath = `/berth/${id}`;
    try {
      const spec = JSON.parse(await readFile(join(c.bundleDir, "config.json"), "utf8")) as RuntimeSpec;
      cgroupsPath = spec.linux?.cgroupsPath ?? cgroupsPath;
    } catch {
      // Fall back to berth's convention.
    }
    return await readContainerStats({ cgroupRoot: this.#cgroupRoot, cgroupsPath, pid: st.pid });
  }
}

function lostExit(): ExitStatus {
  return { exitCode: 255, exitedAt: new Date(), oomKilled: false };
}

async function writeControl(path: string, height: number, width: number): Promise<void> {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 0 || width < 0 || height > 65535 || width > 65535) {
    throw invalidArgument(`Invalid terminal size ${height}x${width}`);
  }
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    // Non-blocking: with no monitor reading the FIFO, fail instead of hanging.
    fh = await open(path, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw failedPrecondition(`Cannot resize: the container's monitor is not running (${(e as Error).message})`);
  }
  try {
    await fh.write(`1 ${height} ${width}\n`);
  } finally {
    await fh.close();
  }
}
