/**
 * Helpers for the benchmarks: timed child processes, statistics, process memory from /proc,
 * and clean-up of mounts under a directory. Benchmarks are black-box: nothing here imports
 * engine code.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** What a finished command gave back, with its wall-clock time in milliseconds. */
export interface Exec {
  code: number;
  out: string;
  err: string;
  ms: number;
}

/** Options for `exec`: extra environment (merged over ours), a time limit, standard input. */
export interface ExecOptions {
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  input?: string;
  cwd?: string;
}

/**
 * Runs a command to completion and times it from spawn to exit: for an end-to-end
 * benchmark the client's own start-up is part of what a user waits for.
 */
export function exec(argv: readonly string[], options: ExecOptions = {}): Exec {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error("Cannot run an empty command");
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, {
    env,
    cwd: options.cwd,
    input: options.input ?? "",
    timeout: options.timeoutMs ?? 300_000,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const err = r.error ? `${r.error.message}\n${r.stderr ?? ""}` : (r.stderr ?? "");
  return { code: r.status ?? (r.signal ? 128 : -1), out: r.stdout ?? "", err, ms };
}

/** Like `exec`, without blocking this process: for running many short commands a few at a time. */
export function execAsync(argv: readonly string[], options: ExecOptions = {}): Promise<Exec> {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.reject(new Error("Cannot run an empty command"));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"], timeout: options.timeoutMs ?? 300_000 });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.on("error", (e) => (err += `${e.message}\n`));
    child.on("close", (code, signal) => {
      resolve({ code: code ?? (signal ? 128 : -1), out, err, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    });
  });
}

/** Runs `fn` over `items` with at most `limit` at once; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

/** Runs a command and throws with its output when it fails; returns trimmed stdout. */
export function must(argv: readonly string[], options: ExecOptions = {}): string {
  const r = exec(argv, options);
  if (r.code !== 0) throw new Error(`"${argv.join(" ")}" failed (${r.code}): ${(r.err || r.out).trim().slice(-2000)}`);
  return r.out.trim();
}

/** Whether a command exists on the PATH. */
export function which(cmd: string): string | undefined {
  const r = exec(["sh", "-c", `command -v ${cmd}`]);
  return r.code === 0 ? r.out.trim() : undefined;
}

/** Minimum, median and maximum of a series of samples (milliseconds or bytes), and the samples. */
export interface Stats {
  min: number;
  median: number;
  max: number;
  samples: number[];
}

/** Summarises samples; the median of an even count is the mean of the middle two. */
export function stats(samples: readonly number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return { min: Number.NaN, median: Number.NaN, max: Number.NaN, samples: [] };
  const mid = Math.floor(n / 2);
  const median = n % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
  return { min: s[0] ?? 0, median, max: s[n - 1] ?? 0, samples: samples.map((x) => Math.round(x * 100) / 100) };
}

/** Resident and proportional set size of a process in bytes (PSS splits shared pages among their users). */
export interface Memory {
  rss: number;
  pss: number;
}

/** RSS (from /proc/PID/status) and PSS (from smaps_rollup); undefined when the process is gone. */
export function memoryOf(pid: number): Memory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
    let pss = 0;
    try {
      pss = Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0) * 1024;
    } catch {
      // smaps_rollup needs a newer kernel; RSS alone is still useful.
    }
    return { rss, pss };
  } catch {
    return undefined;
  }
}

/** A process found in /proc: pid, short name and argv. */
export interface ProcInfo {
  pid: number;
  comm: string;
  argv: string[];
}

/** Every process whose short name passes `match`. */
export function processes(match: (comm: string) => boolean): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const comm = readFileSync(`/proc/${e}/comm`, "utf8").trim();
      if (!match(comm)) continue;
      const argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0").filter(Boolean);
      out.push({ pid: Number(e), comm, argv });
    } catch {
      // The process exited while we looked.
    }
  }
  return out;
}

/** Decodes the octal escapes (`\040` for a space) that /proc/self/mountinfo uses in paths. */
function unescapeMount(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** Mount points at or below `dir`, deepest first (the order they can be unmounted in). */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.replace(/\/+$/, "");
  const out: string[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const mp = line.split(" ")[4];
    if (!mp) continue;
    const p = unescapeMount(mp);
    if (p === prefix || p.startsWith(`${prefix}/`)) out.push(p);
  }
  return out.sort((a, b) => b.split("/").length - a.split("/").length || b.length - a.length);
}

/** Unmounts everything at or below `dir`; a busy mount is detached lazily. Returns what it unmounted. */
export function unmountUnder(dir: string): string[] {
  const done: string[] = [];
  for (let pass = 0; pass < 3; pass++) {
    const mps = mountsUnder(dir);
    if (mps.length === 0) break;
    for (const mp of mps) {
      if (exec(["umount", mp]).code === 0 || exec(["umount", "-l", mp]).code === 0) done.push(mp);
    }
  }
  return done;
}

/** Milliseconds or bytes in a short human form for the table. */
export function human(v: number, unit: "ms" | "B"): string {
  if (!Number.isFinite(v)) return "-";
  if (unit === "ms") return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 1 : 0)} ms`;
  const mib = v / (1024 * 1024);
  return mib >= 10 ? `${mib.toFixed(0)} MiB` : `${mib.toFixed(1)} MiB`;
}

/** Pads cells into aligned columns; the first column is left-aligned, the others right-aligned. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) {
    for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i] ?? 0, c.length);
  }
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ")).join("\n");
}

/** CPU seconds (user + system) a process used, with its waited-for children; 0 when it is gone. */
export function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14-17 of proc(5): utime, stime, cutime, cstime, in clock ticks (USER_HZ, 100 on Linux).
    return [11, 12, 13, 14].reduce((n, i) => n + Number(f[i] ?? 0), 0) / 100;
  } catch {
    return 0;
  }
}

/** Progress for the benchmarks, on stderr (the tables go to stdout). */
export function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

/**
 * Writes a summary as `<dir>/<prefix><date>.json`, or `<date>-2.json`, `-3`, ... when a run of
 * the same day is already saved (earlier results stay); returns the file name.
 */
export function saveResults(dir: string, prefix: string, date: Date, summary: unknown): string {
  mkdirSync(dir, { recursive: true });
  const day = date.toISOString().slice(0, 10);
  let name = `${prefix}${day}.json`;
  for (let n = 2; existsSync(join(dir, name)); n++) name = `${prefix}${day}-${n}.json`;
  writeFileSync(join(dir, name), `${JSON.stringify(summary, null, 2)}\n`);
  return name;
}

/**
 * Runs a benchmark's body with `cleanup` after it, also when Ctrl-C or SIGTERM cuts it short
 * (then the process exits 130).
 */
export async function withCleanup(cleanup: () => void, body: () => Promise<void>): Promise<void> {
  const onSignal = () => {
    log("interrupted: cleaning up");
    cleanup();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await body();
  } finally {
    cleanup();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** Reports a benchmark's failure as `bench: <message>`, with exit status 1. */
export function reportFailure(e: unknown): void {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
