/**
 * Container resource usage read from cgroup v1 or v2 files, in the shape of Docker's
 * `GET /containers/{id}/stats` (snake_case fields). `precpu_stats` is the caller's previous sample.
 */
import { readFile } from "node:fs/promises";
import { totalmem } from "node:os";
import { join } from "node:path";

/** Docker's cpu_stats. */
export interface CpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage: number;
  online_cpus: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

/** Docker's memory_stats. */
export interface MemoryStats {
  usage?: number;
  max_usage?: number;
  failcnt?: number;
  limit?: number;
  stats?: Record<string, number>;
}

/** One blkio_stats entry. */
export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

/** Docker's per-interface network counters. */
export interface NetworkStats {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

/** A stats sample (Docker's fields, minus name/id/precpu_stats which the caller adds). */
export interface ContainerStats {
  read: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: { io_service_bytes_recursive: BlkioEntry[] | null; io_serviced_recursive: BlkioEntry[] | null };
  num_procs: number;
  cpu_stats: CpuStats;
  memory_stats: MemoryStats;
  networks?: Record<string, NetworkStats>;
}

async function text(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

async function num(path: string): Promise<number | undefined> {
  const t = (await text(path))?.trim();
  if (t === undefined || t === "" || t === "max") return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

function keyValues(t: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (t ?? "").split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) out[k] = Number(v);
  }
  return out;
}

/** Host CPU time in nanoseconds, from /proc/stat (Docker's system_cpu_usage). */
export async function systemCpuUsage(): Promise<number> {
  const line = (await text("/proc/stat"))?.split("\n").find((l) => l.startsWith("cpu ")) ?? "";
  const ticks = line
    .split(/\s+/)
    .slice(1, 8)
    .reduce((s, v) => s + (Number(v) || 0), 0);
  return ticks * (1e9 / 100);
}

async function onlineCpus(): Promise<number> {
  const t = (await text("/sys/devices/system/cpu/online"))?.trim() ?? "0";
  let n = 0;
  for (const part of t.split(",")) {
    const [a, b] = part.split("-");
    n += b === undefined ? 1 : Number(b) - Number(a) + 1;
  }
  return n || 1;
}

/** Parses /proc/<pid>/net/dev. */
export function parseNetDev(t: string): Record<string, NetworkStats> {
  const out: Record<string, NetworkStats> = {};
  for (const line of t.split("\n").slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const name = m[1]!.trim();
    if (name === "lo") continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    out[name] = {
      rx_bytes: f[0] ?? 0,
      rx_packets: f[1] ?? 0,
      rx_errors: f[2] ?? 0,
      rx_dropped: f[3] ?? 0,
      tx_bytes: f[8] ?? 0,
      tx_packets: f[9] ?? 0,
      tx_errors: f[10] ?? 0,
      tx_dropped: f[11] ?? 0,
    };
  }
  return out;
}

function blkioV1(t: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (t ?? "").split("\n")) {
    const m = /^(\d+):(\d+) (\w+) (\d+)$/.exec(line.trim());
    if (m) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3]!.toLowerCase(), value: Number(m[4]) });
  }
  return out;
}

function blkioV2(t: string | undefined): { bytes: BlkioEntry[]; ios: BlkioEntry[] } {
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  for (const line of (t ?? "").split("\n")) {
    const m = /^(\d+):(\d+) (.*)$/.exec(line.trim());
    if (!m) continue;
    const major = Number(m[1]);
    const minor = Number(m[2]);
    const kv = Object.fromEntries(m[3]!.split(" ").map((p) => p.split("=") as [string, string]));
    bytes.push({ major, minor, op: "read", value: Number(kv.rbytes ?? 0) }, { major, minor, op: "write", value: Number(kv.wbytes ?? 0) });
    ios.push({ major, minor, op: "read", value: Number(kv.rios ?? 0) }, { major, minor, op: "write", value: Number(kv.wios ?? 0) });
  }
  return { bytes, ios };
}

/** Reads one sample. `cgroupsPath` is the spec's (`/berth/<id>`); `pid` 0 skips network stats. */
export async function readContainerStats(opts: { cgroupRoot: string; cgroupsPath: string; pid: number }): Promise<ContainerStats> {
  const root = opts.cgroupRoot;
  const rel = opts.cgroupsPath.replace(/^\/+/, "");
  const v2 = (await text(join(root, "cgroup.controllers"))) !== undefined;
  const hostMem = totalmem();
  const stats: ContainerStats = {
    read: new Date().toISOString(),
    pids_stats: {},
    blkio_stats: { io_service_bytes_recursive: null, io_serviced_recursive: null },
    num_procs: 0,
    cpu_stats: {
      cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
      system_cpu_usage: await systemCpuUsage(),
      online_cpus: await onlineCpus(),
      throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
    },
    memory_stats: {},
  };
  if (v2) {
    const dir = join(root, rel);
    const cpu = keyValues(await text(join(dir, "cpu.stat")));
    stats.cpu_stats.cpu_usage = {
      total_usage: (cpu.usage_usec ?? 0) * 1000,
      usage_in_kernelmode: (cpu.system_usec ?? 0) * 1000,
      usage_in_usermode: (cpu.user_usec ?? 0) * 1000,
    };
    stats.cpu_stats.throttling_data = {
      periods: cpu.nr_periods ?? 0,
      throttled_periods: cpu.nr_throttled ?? 0,
      throttled_time: (cpu.throttled_usec ?? 0) * 1000,
    };
    const limit = await num(join(dir, "memory.max"));
    stats.memory_stats = {
      usage: await num(join(dir, "memory.current")),
      limit: limit === undefined ? hostMem : Math.min(limit, hostMem),
      stats: keyValues(await text(join(dir, "memory.stat"))),
    };
    stats.pids_stats = { current: await num(join(dir, "pids.current")), limit: await num(join(dir, "pids.max")) };
    const io = blkioV2(await text(join(dir, "io.stat")));
    stats.blkio_stats = { io_service_bytes_recursive: io.bytes, io_serviced_recursive: io.ios };
  } else {
    const cg = (ctl: string, file: string) => join(root, ctl, rel, file);
    const total = (await num(cg("cpuacct", "cpuacct.usage"))) ?? 0;
    const percpu = (await text(cg("cpuacct", "cpuacct.usage_percpu")))?.trim().split(/\s+/).filter(Boolean).map(Number);
    const ticks = keyValues(await text(cg("cpuacct", "cpuacct.stat")));
    stats.cpu_stats.cpu_usage = {
      total_usage: total,
      usage_in_kernelmode: (ticks.system ?? 0) * 1e7,
      usage_in_usermode: (ticks.user ?? 0) * 1e7,
    };
    if (percpu?.length) stats.cpu_stats.cpu_usage.percpu_usage = percpu;
    const thr = keyValues(await text(cg("cpu", "cpu.stat")));
    stats.cpu_stats.throttling_data = {
      periods: thr.nr_periods ?? 0,
      throttled_periods: thr.nr_throttled ?? 0,
      throttled_time: thr.throttled_time ?? 0,
    };
    const limit = await num(cg("memory", "memory.limit_in_bytes"));
    stats.memory_stats = {
      usage: await num(cg("memory", "memory.usage_in_bytes")),
      max_usage: await num(cg("memory", "memory.max_usage_in_bytes")),
      failcnt: await num(cg("memory", "memory.failcnt")),
      limit: limit === undefined ? hostMem : Math.min(limit, hostMem),
      stats: keyValues(await text(cg("memory", "memory.stat"))),
    };
    stats.pids_stats = { current: await num(cg("pids", "pids.current")), limit: await num(cg("pids", "pids.max")) };
    stats.blkio_stats = {
      io_service_bytes_recursive: blkioV1(await text(cg("blkio", "blkio.throttle.io_service_bytes_recursive"))),
      io_serviced_recursive: blkioV1(await text(cg("blkio", "blkio.throttle.io_serviced_recursive"))),
    };
  }
  if (opts.pid > 0) {
    const dev = await text(`/proc/${opts.pid}/net/dev`);
    if (dev) stats.networks = parseNetDev(dev);
  }
  return stats;
}
