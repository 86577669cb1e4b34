/**
 * `npm run bench`: berth side by side with its peers (Debian's dockerd, podman) and with the
 * floors below all of them (in-process gunzip + sha256 for a pull, bare `runc run` for a start),
 * all in one run on one machine, printed as a table and ratios and written as JSON.
 *
 *   node bench/run.ts [--runs N] [--only cold,noop,run,memory,density,ps] [--no-peers] [--save] [--cpu-prof DIR]
 *
 * Environment: BENCH_RUNS (default 5), BENCH_PEERS=0 (berth and the floors only),
 * BERTH_SHARED (the shared folder with fixtures/ and bench/; default ../shared).
 * Needs root. See docs/benchmarks.md.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createGunzip } from "node:zlib";
import { Berthd } from "./berthd.ts";
import {
  cpuOf,
  type Exec,
  exec,
  execAsync,
  human,
  type Memory,
  mapLimit,
  memoryOf,
  must,
  processes,
  type Stats,
  stats,
  table,
  log,
  reportFailure,
  saveResults,
  which,
  withCleanup,
} from "./_lib.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const SHARED = process.env.BERTH_SHARED ?? join(REPO, "..", "shared");
const REGISTRY = "127.0.0.1:5000";
const COLD = { repo: "library/debian", tag: "bookworm", name: "debian:bookworm" };
const SMALL = { repo: "library/busybox", tag: "latest", name: "busybox" };
const TAG = `berth-bench-${process.pid}`;

const { values: flags } = parseArgs({
  options: {
    runs: { type: "string" },
    only: { type: "string" },
    "no-peers": { type: "boolean" },
    save: { type: "boolean" },
    "cpu-prof": { type: "string" },
  },
});
const RUNS = Math.max(1, Number(flags.runs ?? process.env.BENCH_RUNS ?? 5) || 5);
const ONLY = new Set((flags.only ?? "cold,noop,run,memory,density,ps").split(",").map((s) => s.trim()));
const WANT_PEERS = process.env.BENCH_PEERS !== "0" && !flags["no-peers"];

/** An engine under test, driven through its own CLI: the docker CLI for berthd and dockerd, podman for podman. */
interface Engine {
  name: "berth" | "dockerd" | "podman";
  cli: string[];
  env: Record<string, string | undefined>;
  /** The engine's long-running processes, whose CPU time counts towards each operation. */
  daemons: () => number[];
}

function cli(e: Engine, args: string[], timeoutMs = 300_000): Exec {
  return exec([...e.cli, ...args], { env: e.env, timeoutMs });
}

/** A timed operation: wall-clock ms, and CPU seconds of the client plus the engine's daemons. */
interface Op extends Exec {
  cpu: number;
}

/**
 * Runs a CLI command and accounts its CPU time: the client's comes from this process's
 * waited-for children (spawnSync waits), the daemons' from /proc deltas. CPU time is far less
 * sensitive than wall-clock time to other load on the machine.
 */
function op(e: Engine, args: string[], timeoutMs = 300_000): Op {
  const pids = e.daemons();
  const before = cpuOf(process.pid) + pids.reduce((n, p) => n + cpuOf(p), 0);
  const r = cli(e, args, timeoutMs);
  const after = cpuOf(process.pid) + pids.reduce((n, p) => n + cpuOf(p), 0);
  return { ...r, cpu: after - before };
}

/** Runs an arbitrary command with the same accounting (for the runc floor: runc is our child). */
function opCmd(argv: string[]): Op {
  const before = cpuOf(process.pid);
  const r = exec(argv);
  return { ...r, cpu: cpuOf(process.pid) - before };
}

function cliOk(e: Engine, args: string[]): string {
  const r = cli(e, args);
  if (r.code !== 0) throw new Error(`${e.name}: "${args.join(" ")}" failed (${r.code}): ${(r.err || r.out).trim().slice(-1500)}`);
  return r.out.trim();
}

function hasImage(e: Engine, name: string): boolean {
  return cli(e, ["image", "inspect", name]).code === 0;
}

/** Temporary directories of this run, removed at the end even when interrupted. */
const tempDirs = new Set<string>();

function tempDir(prefix: string): string {
  const d = mkdtempSync(`/var/tmp/berth-bench-${prefix}-`);
  tempDirs.add(d);
  return d;
}

function removeTempDirs(): void {
  for (const d of tempDirs) {
    // runc containers of the start floor are deleted by `runc run` itself; a killed one is not.
    const state = join(d, "state");
    if (existsSync(state))
      for (const id of exec(["runc", "--root", state, "list", "-q"]).out.split("\n").filter(Boolean))
        exec(["runc", "--root", state, "delete", "--force", id]);
    rmSync(d, { recursive: true, force: true });
    tempDirs.delete(d);
  }
}

/** Wall-clock and CPU samples per subject of one benchmark, in the order they were taken. */
class Samples {
  #ms = new Map<string, number[]>();
  #cpu = new Map<string, number[]>();

  add(subject: string, m: { ms: number; cpu: number }): void {
    this.#ms.set(subject, [...(this.#ms.get(subject) ?? []), m.ms]);
    this.#cpu.set(subject, [...(this.#cpu.get(subject) ?? []), m.cpu]);
  }

  last(subject: string): number {
    return this.#ms.get(subject)?.at(-1) ?? Number.NaN;
  }

  /** Adds a row for `subject` (under `label`, default the subject) to the results. */
  record(bench: string, subject: string, label = subject, note?: string): void {
    record(bench, label, this.#ms.get(subject) ?? [], "ms", note, this.#cpu.get(subject));
  }
}

/** Times an in-process async step: wall-clock ms and this process's CPU seconds (all threads). */
async function timed(fn: () => Promise<void>): Promise<{ ms: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  return { ms, cpu: (c.user + c.system) / 1e6 };
}

// ---------------------------------------------------------------- registry (in-process, for the floors)

interface Layer {
  digest: string;
  size: number;
  mediaType: string;
}

async function registryJson(path: string, accept: string[]): Promise<{ body: Record<string, unknown>; type: string }> {
  const res = await fetch(`http://${REGISTRY}/v2/${path}`, { headers: { accept: accept.join(", ") } });
  if (!res.ok) throw new Error(`Registry answered ${res.status} for "${path}"`);
  return { body: (await res.json()) as Record<string, unknown>, type: res.headers.get("content-type") ?? "" };
}

/** Layers and diff IDs of an image in the fixture registry (an index resolves to linux/amd64). */
async function imageLayers(repo: string, tag: string): Promise<{ layers: Layer[]; diffIds: string[] }> {
  const accept = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
  ];
  let m = (await registryJson(`${repo}/manifests/${tag}`, accept)).body;
  if (Array.isArray(m.manifests)) {
    const pick = (m.manifests as { digest: string; platform?: { os?: string; architecture?: string } }[]).find(
      (x) => x.platform?.os === "linux" && x.platform.architecture === "amd64",
    );
    if (!pick) throw new Error(`No linux/amd64 image in "${repo}:${tag}"`);
    m = (await registryJson(`${repo}/manifests/${pick.digest}`, accept)).body;
  }
  const config = (await registryJson(`${repo}/blobs/${(m.config as Layer).digest}`, ["*/*"])).body;
  return { layers: m.layers as Layer[], diffIds: (config.rootfs as { diff_ids: string[] }).diff_ids };
}

async function blob(repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`http://${REGISTRY}/v2/${repo}/blobs/${digest}`);
  if (!res.ok) throw new Error(`Registry answered ${res.status} for blob "${digest}"`);
  return Buffer.from(await res.arrayBuffer());
}

/** gunzip + sha256 of the output, in this process (zlib on libuv's pool, hashing on the main thread). */
function gunzipSha256(source: Readable | Buffer, compressedHash?: ReturnType<typeof createHash>): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    const g = createGunzip({ chunkSize: 64 * 1024 });
    g.on("data", (d: Buffer) => h.update(d));
    g.on("end", () => resolve(`sha256:${h.digest("hex")}`));
    g.on("error", reject);
    if (Buffer.isBuffer(source)) g.end(source);
    else {
      source.on("data", (d: Buffer) => compressedHash?.update(d));
      source.on("error", reject);
      source.pipe(g);
    }
  });
}

// ---------------------------------------------------------------- set-up of fixtures and peers

function ensureRegistry(): void {
  const has = exec([
    "curl",
    "-sf",
    "-o",
    "/dev/null",
    "-H",
    "Accept: application/vnd.oci.image.manifest.v1+json",
    `http://${REGISTRY}/v2/${COLD.repo}/manifests/${COLD.tag}`,
  ]);
  if (has.code === 0) return;
  log("starting the registry fixture with debian:bookworm (first time: debootstrap, about a minute)");
  must(["bash", join(SHARED, "fixtures/registry.sh"), "start"], { env: { SEED_DEBIAN: "1" }, timeoutMs: 900_000 });
}

interface Peers {
  engines: Engine[];
  startedDockerd: boolean;
  skipped: string[];
}

function dockerdUp(docker: string): boolean {
  return exec([docker, "version", "--format", "{{.Server.Version}}"], { env: { DOCKER_HOST: "unix:///var/run/docker.sock" } }).code === 0;
}

function dockerdPids(): number[] {
  const pid = Number(existsSync("/run/peers-dockerd.pid") ? readFileSync("/run/peers-dockerd.pid", "utf8").trim() : 0);
  return [...(pid ? [pid] : []), ...processes((c) => c === "containerd").map((p) => p.pid)];
}

function ensurePeers(docker: string): Peers {
  const out: Peers = { engines: [], startedDockerd: false, skipped: [] };
  if (!WANT_PEERS) return out;
  const before = dockerdUp(docker);
  log("setting up peers (shared/bench/peers.sh)");
  const r = exec(["bash", join(SHARED, "bench/peers.sh")], { env: { DOCKER_HOST: undefined, SEED_DEBIAN: "1" }, timeoutMs: 900_000 });
  if (r.code !== 0) log(`peers.sh failed (${r.code}); using whichever peers answer: ${(r.err || r.out).trim().slice(-500)}`);
  if (dockerdUp(docker)) {
    out.startedDockerd = !before;
    out.engines.push({ name: "dockerd", cli: [docker], env: { DOCKER_HOST: "unix:///var/run/docker.sock" }, daemons: dockerdPids });
  } else out.skipped.push("dockerd");
  if (which("podman") && exec(["podman", "version"]).code === 0)
    out.engines.push({ name: "podman", cli: ["podman"], env: {}, daemons: () => [] });
  else out.skipped.push("podman");
  return out;
}

/**
 * A note when `dir` is on ext4 without a journal. There the kernel skips inodes deleted in
 * the last minutes one by one when it allocates a new one (ext4's recently_deleted check,
 * done only without a journal), so creating thousands of files right after deleting
 * thousands, as a cold pull after rmi does, costs several times the CPU it costs otherwise.
 * All engines pay it; it is most of a cold pull's time on such a machine.
 */
function noJournalNote(dir: string): string | undefined {
  const r = exec(["findmnt", "-no", "SOURCE,FSTYPE", "--target", dir]);
  const [source, fstype] = r.out.trim().split(/\s+/);
  if (r.code !== 0 || fstype !== "ext4" || !source?.startsWith("/dev/")) return undefined;
  const dev = source.slice(5).replace(/\//g, "!");
  if (!existsSync(`/proc/fs/ext4/${dev}`) || existsSync(`/proc/fs/jbd2/${dev}-8`)) return undefined;
  return `${dir} is on ext4 without a journal (${source}): file creation right after mass deletion is slow for every engine (see docs/benchmarks.md)`;
}

function version(argv: string[], env: Record<string, string | undefined> = {}): string {
  const r = exec(argv, { env });
  return r.code === 0 ? (r.out.trim().split("\n")[0] ?? "") : "unavailable";
}

// ---------------------------------------------------------------- results

type Unit = "ms" | "B";
interface Row {
  bench: string;
  subject: string;
  unit: Unit;
  stats: Stats;
  /** CPU seconds per operation (client + daemons), where measured. */
  cpu?: Stats;
  note?: string;
}
const rows: Row[] = [];
const notes: string[] = [];

function record(bench: string, subject: string, samples: number[], unit: Unit = "ms", note?: string, cpu?: number[]): Stats {
  const s = stats(samples);
  const row: Row = { bench, subject, unit, stats: s };
  if (cpu?.length) row.cpu = stats(cpu);
  if (note) row.note = note;
  rows.push(row);
  return s;
}

function printSection(bench: string): void {
  const sel = rows.filter((r) => r.bench === bench);
  if (sel.length === 0) return;
  const body = sel.map((r) => [
    `  ${r.subject}`,
    human(r.stats.min, r.unit),
    human(r.stats.median, r.unit),
    human(r.stats.max, r.unit),
    r.cpu ? `${r.cpu.median.toFixed(2)} s` : "",
    r.note ?? "",
  ]);
  process.stdout.write(`\n${bench}\n${table([["", "min", "median", "max", "cpu (median)", ""], ...body])}\n`);
}

function median(bench: string, subject: string): number | undefined {
  return rows.find((r) => r.bench === bench && r.subject === subject)?.stats.median;
}

function cpuMedian(bench: string, subject: string): number | undefined {
  return rows.find((r) => r.bench === bench && r.subject === subject)?.cpu?.median;
}

interface Ratio {
  name: string;
  value: number;
  target?: string;
  met?: boolean;
}
const ratios: Ratio[] = [];

function ratio(name: string, a: number | undefined, b: number | undefined, max?: number): void {
  if (a === undefined || b === undefined || !(b > 0)) return;
  const r: Ratio = { name, value: Math.round((a / b) * 1000) / 1000 };
  if (max !== undefined) {
    r.target = `<= ${max}`;
    r.met = r.value <= max;
  }
  ratios.push(r);
}

// ---------------------------------------------------------------- 1. cold pull

async function benchCold(engines: Engine[], berthd: Berthd): Promise<void> {
  const bench = `cold pull + unpack of ${COLD.name} (${RUNS} runs)`;
  const { layers, diffIds } = await imageLayers(COLD.repo, COLD.tag);
  const total = layers.reduce((n, l) => n + l.size, 0);
  log(`cold pull: ${layers.length} layer(s), ${(total / 1e6).toFixed(1)} MB compressed`);
  const blobs = await Promise.all(layers.map((l) => blob(COLD.repo, l.digest)));
  const tmp = tempDir("floor");
  try {
    const files = blobs.map((b, i) => {
      const f = join(tmp, `layer${i}.gz`);
      writeFileSync(f, b);
      return f;
    });
    const blobPath = (d: string) => join(berthd.dataRoot, "content/blobs/sha256", d.replace(/^sha256:/, ""));
    const snapshotsDir = join(berthd.dataRoot, "snapshots");
    const countSnapshots = () => (existsSync(snapshotsDir) ? readDirCount(snapshotsDir) : 0);
    let baseline = -1;
    let notCold = 0;

    /** Removes the image so that the next pull is cold; for berth, checks that GC removed blobs and snapshots. */
    const makeCold = (e: Engine) => {
      if (hasImage(e, COLD.name)) cliOk(e, ["rmi", COLD.name]);
      if (e.name !== "berth") return;
      const left = layers.filter((l) => existsSync(blobPath(l.digest)));
      const snaps = countSnapshots();
      if (baseline < 0) baseline = snaps;
      if (left.length || snaps > baseline) {
        notCold++;
        log(`berth: after rmi ${left.length} layer blob(s) and ${snaps - baseline} snapshot(s) remain: not a cold pull`);
      }
    };
    const pull = (e: Engine): Op => {
      makeCold(e);
      exec(["sync"]);
      const r = op(e, ["pull", COLD.name], 600_000);
      if (r.code !== 0) throw new Error(`${e.name}: pull ${COLD.name} failed: ${(r.err || r.out).trim().slice(-1000)}`);
      return r;
    };
    const floorNode = () =>
      timed(async () => {
        for (let i = 0; i < blobs.length; i++) {
          const d = await gunzipSha256(blobs[i] ?? Buffer.alloc(0));
          if (d !== diffIds[i]) throw new Error(`Floor: layer ${i} hashes to "${d}", the config says "${diffIds[i]}"`);
        }
      });
    const floorShell = (): Op => {
      const script = files.map((f) => `gunzip -c '${f}' | sha256sum >/dev/null`).join(" && ");
      const r = opCmd(["sh", "-c", script]);
      if (r.code !== 0) throw new Error(`Floor (shell) failed: ${r.err}`);
      return r;
    };
    /** GNU tar writing the same files (as root, owners and modes kept): what unpacking costs in C. */
    const untarDir = join(tmp, "untar");
    const floorTar = (): Op => {
      rmSync(untarDir, { recursive: true, force: true });
      mkdirSync(untarDir);
      exec(["sync"]);
      const r = opCmd(["sh", "-c", files.map((f) => `tar -xzf '${f}' -C '${untarDir}'`).join(" && ")]);
      if (r.code !== 0) throw new Error(`Floor (tar) failed: ${r.err}`);
      return r;
    };
    const floorFetch = () =>
      timed(async () => {
        for (let i = 0; i < layers.length; i++) {
          const l = layers[i] as Layer;
          const res = await fetch(`http://${REGISTRY}/v2/${COLD.repo}/blobs/${l.digest}`);
          if (!res.ok || !res.body) throw new Error(`Registry answered ${res.status} for "${l.digest}"`);
          const hc = createHash("sha256");
          const d = await gunzipSha256(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream), hc);
          if (`sha256:${hc.digest("hex")}` !== l.digest || d !== diffIds[i])
            throw new Error(`Floor (fetch): digest mismatch for "${l.digest}"`);
        }
      });

    // One untimed round warms the registry's page cache, the CLIs and the daemons.
    for (const e of engines) pull(e);
    await floorNode();
    floorShell();
    const samples = new Samples();
    for (let i = 0; i < RUNS; i++) {
      for (const e of engines) samples.add(e.name, pull(e));
      samples.add("floor", await floorNode());
      samples.add("floor-shell", floorShell());
      samples.add("floor-fetch", await floorFetch());
      samples.add("floor-tar", floorTar());
      log(`cold pull run ${i + 1}/${RUNS}: ${engines.map((e) => `${e.name} ${human(samples.last(e.name), "ms")}`).join(", ")}`);
    }
    for (const e of engines) samples.record(bench, e.name, e.name, e.name === "berth" && notCold ? "NOT COLD" : "");
    samples.record(bench, "floor", "floor: gunzip+sha256 (node:zlib+crypto, in-process)");
    samples.record(bench, "floor-shell", "floor: gunzip -c | sha256sum (shell)");
    samples.record(bench, "floor-fetch", "floor: fetch+sha256(gz)+gunzip+sha256 (in-process)");
    samples.record(bench, "floor-tar", "reference: tar -xzf into a directory (GNU tar, writes the files)");
    const b = median(bench, "berth");
    ratio("cold pull: berth/podman", b, median(bench, "podman"), 0.5);
    ratio("cold pull: berth/dockerd", b, median(bench, "dockerd"));
    ratio(
      "cold pull: berth/floor (in-process gunzip+sha256)",
      b,
      median(bench, "floor: gunzip+sha256 (node:zlib+crypto, in-process)"),
      1.3,
    );
    ratio("cold pull: berth/floor (shell gunzip|sha256sum)", b, median(bench, "floor: gunzip -c | sha256sum (shell)"));
    ratio("cold pull: berth/floor (fetch+verify+gunzip+sha256)", b, median(bench, "floor: fetch+sha256(gz)+gunzip+sha256 (in-process)"));
    const tar = "reference: tar -xzf into a directory (GNU tar, writes the files)";
    ratio("cold pull: berth/tar -xzf", b, median(bench, tar));
    const bc = cpuMedian(bench, "berth");
    ratio("cold pull CPU time: berth/podman", bc, cpuMedian(bench, "podman"));
    ratio("cold pull CPU time: berth/dockerd", bc, cpuMedian(bench, "dockerd"));
    ratio(
      "cold pull CPU time: berth/floor (in-process gunzip+sha256)",
      bc,
      cpuMedian(bench, "floor: gunzip+sha256 (node:zlib+crypto, in-process)"),
    );
    ratio("cold pull CPU time: berth/tar -xzf", bc, cpuMedian(bench, tar));
    printSection(bench);
  } finally {
    removeTempDirs();
  }
}

function readDirCount(dir: string): number {
  return readdirSync(dir).length;
}

// ---------------------------------------------------------------- 2. no-op pull

function benchNoop(engines: Engine[]): void {
  const bench = `no-op pull of an up-to-date ${SMALL.name} (${RUNS} runs)`;
  for (const e of engines) {
    if (!hasImage(e, SMALL.name)) cliOk(e, ["pull", SMALL.name]);
    cliOk(e, ["pull", SMALL.name]);
  }
  const samples = new Samples();
  for (let i = 0; i < RUNS; i++) {
    for (const e of engines) {
      const r = op(e, ["pull", SMALL.name]);
      if (r.code !== 0) throw new Error(`${e.name}: pull ${SMALL.name} failed: ${r.err}`);
      samples.add(e.name, r);
    }
  }
  for (const e of engines) samples.record(bench, e.name, e.name, e.name === "berth" ? "target < 100 ms" : "");
  const b = median(bench, "berth");
  if (b !== undefined) ratios.push({ name: "no-op pull: berth median (ms)", value: Math.round(b), target: "< 100", met: b < 100 });
  ratio("no-op pull: berth/dockerd", b, median(bench, "dockerd"));
  ratio("no-op pull: berth/podman", b, median(bench, "podman"));
  printSection(bench);
}

// ---------------------------------------------------------------- 3. container start

/** A runc bundle with busybox's layers unpacked by tar and `true` as the process. */
async function runcBundle(dir: string): Promise<string> {
  const bundle = join(dir, "bundle");
  const rootfs = join(bundle, "rootfs");
  mkdirSync(rootfs, { recursive: true });
  const { layers } = await imageLayers(SMALL.repo, SMALL.tag);
  for (const [i, l] of layers.entries()) {
    const f = join(dir, `layer${i}`);
    writeFileSync(f, await blob(SMALL.repo, l.digest));
    must(["tar", "-xf", f, "-C", rootfs]);
  }
  must(["runc", "spec"], { cwd: bundle });
  const spec = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8")) as { process: { terminal: boolean; args: string[] } };
  spec.process.terminal = false;
  spec.process.args = ["true"];
  writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
  return bundle;
}

async function benchRun(engines: Engine[]): Promise<void> {
  const bench = `container start: run --rm ${SMALL.name} true (${RUNS} runs)`;
  const tmp = tempDir("runc");
  const runcRoot = join(tmp, "state");
  try {
    const bundle = await runcBundle(tmp);
    let n = 0;
    const runc = (): Op => {
      const r = opCmd(["runc", "--root", runcRoot, "run", "--bundle", bundle, `${TAG}-${n++}`]);
      if (r.code !== 0) throw new Error(`runc run failed: ${r.err}`);
      return r;
    };
    const variants: [string, string[]][] = [
      ["", ["run", "--rm", SMALL.name, "true"]],
      [" --network none", ["run", "--rm", "--network", "none", SMALL.name, "true"]],
    ];
    for (const e of engines) for (const [, args] of variants) cliOk(e, args);
    runc();
    const samples = new Samples();
    for (let i = 0; i < RUNS; i++) {
      for (const e of engines) {
        for (const [suffix, args] of variants) {
          const r = op(e, args);
          if (r.code !== 0) throw new Error(`${e.name}: ${args.join(" ")} failed: ${(r.err || r.out).trim()}`);
          samples.add(e.name + suffix, r);
        }
      }
      samples.add("runc", runc());
    }
    for (const [suffix] of variants) for (const e of engines) samples.record(bench, e.name + suffix);
    samples.record(bench, "runc", "floor: runc run of a prepared bundle");
    const b = median(bench, "berth");
    ratio("run: berth/dockerd", b, median(bench, "dockerd"));
    ratio("run: berth/podman", b, median(bench, "podman"));
    ratio("run: berth/runc", b, median(bench, "floor: runc run of a prepared bundle"));
    ratio("run --network none: berth/dockerd", median(bench, "berth --network none"), median(bench, "dockerd --network none"));
    ratio("run --network none: berth/podman", median(bench, "berth --network none"), median(bench, "podman --network none"));
    printSection(bench);
  } finally {
    removeTempDirs();
  }
}

// ---------------------------------------------------------------- 4. memory

interface MemoryResults {
  berthdIdle?: Memory;
  berthdAfter?: Memory;
  berthdWith5?: Memory;
  monitors: Record<string, { process: string; rss: Stats; pss: Stats }>;
  daemons: Record<string, Memory>;
}
const memory: MemoryResults = { monitors: {}, daemons: {} };

function monitorOf(id: string): { pid: number; comm: string } | undefined {
  const p = processes((c) => c === "conmon" || c.startsWith("containerd-shim")).find((x) =>
    x.argv.some((a, i) => a === id || ((x.argv[i - 1] === "-c" || x.argv[i - 1] === "-id") && id.startsWith(a))),
  );
  return p ? { pid: p.pid, comm: p.comm } : undefined;
}

async function benchMemory(engines: Engine[], berthd: Berthd): Promise<void> {
  const bench = "memory: per-container monitor with 5 running `sleep 60` containers";
  memory.berthdAfter = memoryOf(berthd.pid);
  for (const e of engines) {
    const ids: string[] = [];
    try {
      for (let i = 0; i < 5; i++)
        ids.push(
          cliOk(e, ["run", "-d", "--name", `${TAG}-sleep-${i}`, SMALL.name, "sleep", "60"])
            .split("\n")
            .pop() ?? "",
        );
      await new Promise((r) => setTimeout(r, 1000));
      const found = ids.map(monitorOf);
      const mems = found.map((f) => (f ? memoryOf(f.pid) : undefined)).filter((m): m is Memory => m !== undefined);
      if (mems.length < ids.length) log(`${e.name}: found ${mems.length} of ${ids.length} container monitors`);
      if (e.name === "berth") memory.berthdWith5 = memoryOf(berthd.pid);
      const comm = found.find((f) => f)?.comm ?? "?";
      const rss = stats(mems.map((m) => m.rss));
      const pss = stats(mems.map((m) => m.pss));
      memory.monitors[e.name] = { process: comm, rss, pss };
      record(
        bench,
        `${e.name}: ${comm} RSS`,
        mems.map((m) => m.rss),
        "B",
      );
      record(
        bench,
        `${e.name}: ${comm} PSS`,
        mems.map((m) => m.pss),
        "B",
      );
    } finally {
      if (ids.length) cli(e, ["rm", "-f", ...ids]);
    }
  }
  for (const e of engines) {
    if (e.name === "dockerd") {
      const pid = Number(existsSync("/run/peers-dockerd.pid") ? readFileSync("/run/peers-dockerd.pid", "utf8").trim() : 0);
      const m = pid ? memoryOf(pid) : undefined;
      if (m) memory.daemons.dockerd = m;
      const ctr = processes((c) => c === "containerd")[0];
      const cm = ctr ? memoryOf(ctr.pid) : undefined;
      if (cm) memory.daemons.containerd = cm;
    }
  }
  printSection(bench);
  const d = [["", "RSS", "PSS"]];
  const line = (name: string, m: Memory | undefined) => m && d.push([`  ${name}`, human(m.rss, "B"), human(m.pss, "B")]);
  line("berthd idle (just started)", memory.berthdIdle);
  line("berthd after the benchmarks", memory.berthdAfter);
  line("berthd with 5 running containers", memory.berthdWith5);
  line("dockerd (peer, after the benchmarks)", memory.daemons.dockerd);
  line("containerd (peer, after the benchmarks)", memory.daemons.containerd);
  process.stdout.write(`\nmemory: daemons\n${table(d)}\n`);
  ratio("monitor RSS: berth conmon/dockerd shim", memory.monitors.berth?.rss.median, memory.monitors.dockerd?.rss.median);
}

// ---------------------------------------------------------------- 5. density

const DENSE = 50;

/** What one engine costs per running container: its monitors plus what its daemons grew by. */
interface Density {
  containers: number;
  monitor: string;
  monitorsFound: number;
  /** Sum of the monitors' PSS, bytes. */
  monitorsPss: number;
  monitorsRss: number;
  /** Sum of the engine's daemons' PSS before the containers were started and with them running. */
  daemonsPssBefore: number;
  daemonsPssAfter: number;
  /** (monitors' PSS + daemons' PSS growth) / containers, bytes. */
  perContainer: number;
  /** Wall-clock seconds to start all of them, two at a time. */
  startSeconds: number;
}
const density: Record<string, Density> = {};

function removeContainers(e: Engine, names: string[]): void {
  for (let i = 0; i < names.length; i += 100) cli(e, ["rm", "-f", ...names.slice(i, i + 100)], 600_000);
}

async function benchDensity(engines: Engine[]): Promise<void> {
  const bench = `memory: ${DENSE} running \`sleep 600\` containers, per container (monitor PSS + daemon PSS growth)`;
  const pssOf = (pids: number[]) => pids.reduce((n, p) => n + (memoryOf(p)?.pss ?? 0), 0);
  for (const e of engines) {
    if (!hasImage(e, SMALL.name)) cliOk(e, ["pull", SMALL.name]);
    const names = Array.from({ length: DENSE }, (_, i) => `${TAG}-dense-${i}`);
    try {
      const daemons = e.daemons();
      const before = pssOf(daemons);
      const t0 = process.hrtime.bigint();
      const runs = await mapLimit(names, 2, (n) =>
        execAsync([...e.cli, "run", "-d", "--name", n, SMALL.name, "sleep", "600"], { env: e.env }),
      );
      const startSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const bad = runs.find((r) => r.code !== 0);
      if (bad) throw new Error(`${e.name}: run -d failed: ${(bad.err || bad.out).trim().slice(-500)}`);
      // Let the daemons settle (event fan-out, health of the monitors) before measuring.
      await new Promise((r) => setTimeout(r, 3000));
      const ids = runs.map((r) => r.out.trim().split("\n").pop() ?? "");
      const found = ids.map(monitorOf).filter((m): m is { pid: number; comm: string } => m !== undefined);
      if (found.length < ids.length) log(`${e.name}: found ${found.length} of ${ids.length} container monitors`);
      const mems = found.map((f) => memoryOf(f.pid)).filter((m): m is Memory => m !== undefined);
      const after = pssOf(daemons);
      const monitorsPss = mems.reduce((n, m) => n + m.pss, 0);
      const d: Density = {
        containers: DENSE,
        monitor: found[0]?.comm ?? "?",
        monitorsFound: found.length,
        monitorsPss,
        monitorsRss: mems.reduce((n, m) => n + m.rss, 0),
        daemonsPssBefore: before,
        daemonsPssAfter: after,
        perContainer: (monitorsPss + Math.max(0, after - before)) / DENSE,
        startSeconds,
      };
      density[e.name] = d;
      record(bench, `${e.name}: per container`, [d.perContainer], "B");
      record(bench, `${e.name}: ${d.monitor} PSS, each`, [monitorsPss / Math.max(1, found.length)], "B");
      record(bench, `${e.name}: daemon PSS growth, each`, [Math.max(0, after - before) / DENSE], "B");
      log(`density: ${e.name} ${human(d.perContainer, "B")} per container, ${DENSE} started in ${startSeconds.toFixed(1)} s`);
    } finally {
      removeContainers(e, names);
    }
  }
  printSection(bench);
  const b = density.berth;
  if (b) {
    const mib = b.perContainer / (1024 * 1024);
    ratios.push({
      name: `density: berth MiB per running container (${DENSE})`,
      value: Math.round(mib * 100) / 100,
      target: "<= 3",
      met: mib <= 3,
    });
  }
  ratio("density: berth/dockerd per container", b?.perContainer, density.dockerd?.perContainer);
  ratio("density: berth/podman per container", b?.perContainer, density.podman?.perContainer);
}

// ---------------------------------------------------------------- 6. ps -a with many containers

const MANY = 500;

async function benchPs(engines: Engine[]): Promise<void> {
  const bench = `ps -a with ${MANY} created containers (${RUNS} runs)`;
  const created = new Map<string, string[]>();
  const samples = new Samples();
  try {
    for (const e of engines) {
      if (!hasImage(e, SMALL.name)) cliOk(e, ["pull", SMALL.name]);
      const names = Array.from({ length: MANY }, (_, i) => `${TAG}-ps-${i}`);
      created.set(e.name, names);
      const t0 = process.hrtime.bigint();
      const rs = await mapLimit(names, 4, (n) => execAsync([...e.cli, "create", "--name", n, SMALL.name, "true"], { env: e.env }));
      const bad = rs.find((r) => r.code !== 0);
      if (bad) throw new Error(`${e.name}: create failed: ${(bad.err || bad.out).trim().slice(-500)}`);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      log(`ps: ${e.name} created ${MANY} containers in ${secs.toFixed(1)} s (4 at a time)`);
      record(
        `create of ${MANY} containers, 4 at a time`,
        e.name,
        rs.map((r) => r.ms),
      );
      const lines = cliOk(e, ["ps", "-a", "--format", "{{.Names}}"]).split("\n");
      if (lines.filter((l) => l.startsWith(`${TAG}-ps-`)).length !== MANY) log(`${e.name}: ps -a does not list all ${MANY} containers`);
    }
    for (let i = 0; i < RUNS; i++) {
      for (const e of engines) {
        const r = op(e, ["ps", "-a"]);
        if (r.code !== 0) throw new Error(`${e.name}: ps -a failed: ${r.err}`);
        samples.add(e.name, r);
      }
    }
  } finally {
    for (const e of engines) removeContainers(e, created.get(e.name) ?? []);
  }
  for (const e of engines) samples.record(bench, e.name, e.name, e.name === "berth" ? "target < 150 ms" : "");
  const b = median(bench, "berth");
  if (b !== undefined)
    ratios.push({ name: `ps -a with ${MANY} containers: berth median (ms)`, value: Math.round(b), target: "< 150", met: b < 150 });
  ratio(`ps -a with ${MANY}: berth/dockerd`, b, median(bench, "dockerd"));
  ratio(`ps -a with ${MANY}: berth/podman`, b, median(bench, "podman"));
  printSection(`create of ${MANY} containers, 4 at a time`);
  printSection(bench);
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("The benchmarks need root (overlay mounts, runc, the peers' daemons)");
  const docker = which("docker");
  if (!docker) throw new Error("The docker CLI is needed to drive berthd (Debian: docker.io, or docker-ce-cli)");
  ensureRegistry();
  const peers = ensurePeers(docker);
  // Remember what the peers had, to leave them as they were.
  const peerHad = new Map(peers.engines.map((e) => [e.name, hasImage(e, COLD.name)]));
  let berthd: Berthd | undefined;
  const cleanup = () => {
    berthd?.cleanup();
    removeTempDirs();
    for (const e of peers.engines) {
      for (const c of cli(e, ["ps", "-aq", "--filter", `name=${TAG}`])
        .out.split("\n")
        .filter(Boolean))
        cli(e, ["rm", "-f", c]);
      if (!peerHad.get(e.name) && hasImage(e, COLD.name)) cli(e, ["rmi", COLD.name]);
    }
    if (peers.startedDockerd) exec(["bash", join(SHARED, "bench/peers.sh"), "stop"]);
  };
  const started = new Date();
  await withCleanup(cleanup, async () => {
    berthd = await Berthd.start({
      repo: REPO,
      mirror: `http://${REGISTRY}`,
      ...(flags["cpu-prof"] ? { cpuProfDir: flags["cpu-prof"] } : {}),
    });
    await new Promise((r) => setTimeout(r, 2000));
    memory.berthdIdle = memoryOf(berthd.pid);
    const b = berthd;
    const berth: Engine = { name: "berth", cli: [docker], env: { DOCKER_HOST: berthd.host }, daemons: () => [b.pid] };
    const engines = [berth, ...peers.engines];
    const versions = {
      berth: must(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]),
      node: version(["/opt/node24/bin/node", "--version"]),
      dockerCli: version([docker, "version", "--format", "{{.Client.Version}}"], { DOCKER_HOST: berthd.host }),
      berthdApi: version([docker, "version", "--format", "{{.Server.APIVersion}}"], { DOCKER_HOST: berthd.host }),
      dockerd: peers.engines.some((e) => e.name === "dockerd")
        ? version([docker, "version", "--format", "{{.Server.Version}}"], { DOCKER_HOST: "unix:///var/run/docker.sock" })
        : "not run",
      podman: peers.engines.some((e) => e.name === "podman") ? version(["podman", "--version"]) : "not run",
      runc: version(["runc", "--version"]),
      conmon: version(["conmon", "--version"]),
      kernel: version(["uname", "-r"]),
    };
    const host = {
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? "",
      memoryBytes: totalmem(),
      loadBefore: loadavg(),
      loadAfter: [] as number[],
    };
    process.stdout.write(
      `berth ${versions.berth} | ${host.cpus} x ${host.cpu} | kernel ${versions.kernel} | docker CLI ${versions.dockerCli} | ` +
        `dockerd ${versions.dockerd} | ${versions.podman} | ${versions.runc} | ${RUNS} runs per measurement\n`,
    );
    if (peers.skipped.length) notes.push(`peers unavailable, skipped: ${peers.skipped.join(", ")}`);
    if (!WANT_PEERS) notes.push("peers not run (BENCH_PEERS=0 or --no-peers)");
    const nj = noJournalNote(berthd.dataRoot);
    if (nj) notes.push(nj);

    if (ONLY.has("cold")) await benchCold(engines, berthd);
    if (ONLY.has("noop")) benchNoop(engines);
    if (ONLY.has("run")) await benchRun(engines);
    if (ONLY.has("memory")) await benchMemory(engines, berthd);
    else memory.berthdAfter = memoryOf(berthd.pid);
    if (ONLY.has("density")) await benchDensity(engines);
    if (ONLY.has("ps")) await benchPs(engines);

    host.loadAfter = loadavg();
    const busy = Math.max(host.loadBefore[0] ?? 0, host.loadAfter[0] ?? 0);
    if (busy > host.cpus / 2) {
      notes.push(
        `the machine was busy (1-minute load ${busy.toFixed(1)} on ${host.cpus} CPUs): wall-clock times are inflated, CPU times less so`,
      );
    }
    process.stdout.write("\nratios (medians)\n");
    process.stdout.write(
      `${table(ratios.map((r) => [`  ${r.name}`, String(r.value), r.target ? `target ${r.target}` : "", r.met === undefined ? "" : r.met ? "met" : "MISSED"]))}\n`,
    );
    for (const n of notes) process.stdout.write(`note: ${n}\n`);

    const summary = {
      date: started.toISOString(),
      runs: RUNS,
      host,
      versions,
      results: rows,
      ratios,
      memory,
      density,
      notes,
    };
    const dir = join(REPO, "bench/results");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "latest.json"), `${JSON.stringify(summary, null, 2)}\n`);
    const saved = flags.save ? saveResults(dir, "", started, summary) : "";
    process.stdout.write(`\nwrote bench/results/latest.json${flags.save ? ` and bench/results/${saved}` : ""}\n`);
  });
}

main().catch(reportFailure);
