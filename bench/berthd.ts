/**
 * A berthd of the benchmark's own: temporary data root, its own exec root and socket, the
 * fixture registry as its docker.io mirror. Stopped by pid and cleaned up (mounts, monitors it
 * left, directories) synchronously, so that a signal handler can do it too.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { exec, processes, unmountUnder } from "./_lib.ts";

/** Options for `Berthd.start`. */
export interface BerthdOptions {
  /** The repository root (bin/berthd and src/ live there). */
  repo: string;
  /** Registry mirror URL (`http://127.0.0.1:5000`). */
  mirror: string;
  /** Write a V8 CPU profile of the daemon into this directory when it stops. */
  cpuProfDir?: string;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Whether a pid is a live process (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: "/_ping", method: "GET", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

let started = 0;

/** A running benchmark daemon. */
export class Berthd {
  readonly dir: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly socket: string;
  readonly log: string;
  #child: ChildProcess | undefined;
  #stopped = false;

  private constructor(dir: string, execRoot: string) {
    this.dir = dir;
    this.dataRoot = join(dir, "root");
    this.execRoot = execRoot;
    this.socket = join(execRoot, "berth.sock");
    this.log = join(dir, "berthd.log");
  }

  /** The daemon's pid (the Node process: bin/berthd execs node). */
  get pid(): number {
    return this.#child?.pid ?? 0;
  }

  /** DOCKER_HOST for clients of this daemon. */
  get host(): string {
    return `unix://${this.socket}`;
  }

  /** Starts a daemon and waits until it answers `/_ping`. */
  static async start(options: BerthdOptions): Promise<Berthd> {
    const dir = mkdtempSync("/var/tmp/berth-bench-");
    // One exec root (and socket) per daemon: a benchmark may run two side by side.
    const d = new Berthd(dir, `/run/berth-bench-${process.pid}-${++started}`);
    mkdirSync(d.execRoot, { recursive: true, mode: 0o711 });
    const config = join(dir, "daemon.json");
    const host = new URL(options.mirror).host;
    writeFileSync(config, JSON.stringify({ "registry-mirrors": [options.mirror], "insecure-registries": [host] }));
    const args = ["--config-file", config, "--data-root", d.dataRoot, "--exec-root", d.execRoot, "-H", d.host];
    let argv: string[];
    if (options.cpuProfDir) {
      // bin/berthd fixes node's flags; run the same entry point directly to add --cpu-prof.
      const node = existsSync("/opt/node24/bin/node") ? "/opt/node24/bin/node" : process.execPath;
      argv = [
        node,
        "--cpu-prof",
        `--cpu-prof-dir=${options.cpuProfDir}`,
        "--disable-warning=ExperimentalWarning",
        join(options.repo, "src/api/berthd.ts"),
        ...args,
      ];
    } else argv = [join(options.repo, "bin/berthd"), ...args];
    const fd = openSync(d.log, "a");
    try {
      d.#child = spawn(argv[0] ?? "", argv.slice(1), { detached: true, stdio: ["ignore", fd, fd] });
    } finally {
      closeSync(fd);
    }
    const end = Date.now() + 30_000;
    while (Date.now() < end) {
      if (await ping(d.socket)) return d;
      if (!alive(d.pid)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const tail = existsSync(d.log) ? readFileSync(d.log, "utf8").slice(-2000) : "";
    d.cleanup();
    throw new Error(`berthd did not start (log ${d.log}):\n${tail}`);
  }

  /**
   * Stops the daemon by pid (SIGTERM, then SIGKILL after 20 s), ends the monitors of
   * containers it left, unmounts everything under its roots and removes them.
   */
  cleanup(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    const pid = this.pid;
    if (pid > 0 && alive(pid)) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
      const end = Date.now() + 20_000;
      while (alive(pid) && Date.now() < end) sleepSync(50);
      if (alive(pid)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    // Containers the benchmark failed to remove: their conmon names our exec or data root.
    for (const p of processes((c) => c === "conmon")) {
      if (p.argv.some((a) => a.startsWith(this.execRoot) || a.startsWith(this.dataRoot))) {
        try {
          process.kill(p.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    const runcRoot = join(this.execRoot, "runtime", "runc");
    if (existsSync(runcRoot)) {
      const list = exec(["runc", "--root", runcRoot, "list", "-q"]);
      for (const id of list.out.split("\n").filter(Boolean)) exec(["runc", "--root", runcRoot, "delete", "--force", id]);
    }
    unmountUnder(this.execRoot);
    unmountUnder(this.dir);
    rmSync(this.execRoot, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
