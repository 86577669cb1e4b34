/**
 * Build benchmark (issue "Build"): a 1000-file, 12 MB context with `FROM busybox` /
 * `COPY . /app` / `RUN ls -R /app | wc -l`, built three ways — cold (`--no-cache`), again with
 * every step cached, and after one file changed — by berthd (through the docker CLI's classic
 * builder and through `berth build`), dockerd's classic builder and `podman build`, in the
 * same run, engines taking turns, medians of N runs after a warm-up round. Wall-clock time
 * and CPU time (the client, its waited-for children and the engine's daemons, as bench/run.ts).
 * Targets: full-cache rebuild ≤ 0.3× and one-file rebuild ≤ 0.5× the faster peer. A floor is
 * measured beside them: the docker CLI sending the same context to a stub daemon that only reads
 * it and answers, which no engine behind the docker CLI can beat.
 *
 *   node bench/build.ts [--runs N] [--no-peers] [--save] [--cpu-prof DIR]
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Berthd } from "./berthd.ts";
import { type ChildProcess, spawn } from "node:child_process";
import { cpuOf, exec, log, processes, reportFailure, type Stats, saveResults, stats, table, which, withCleanup } from "./_lib.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const SHARED = process.env.BERTH_SHARED ?? join(REPO, "..", "shared");
const MIRROR = "http://127.0.0.1:5000";
const FILES = 1000;
const DIRS = 25;
const TOTAL_BYTES = 12_000_000;
const DOCKERFILE = "FROM busybox\nCOPY . /app\nRUN ls -R /app | wc -l\n";
const TAG = `berth-bench-build-${process.pid}`;
const SCENARIOS = ["cold", "cached", "one file"] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values: flags } = parseArgs({
  options: {
    runs: { type: "string" },
    "no-peers": { type: "boolean" },
    save: { type: "boolean" },
    "cpu-prof": { type: "string" },
  },
});
const RUNS = Math.max(1, Number(flags.runs ?? process.env.BENCH_RUNS ?? 5) || 5);
const WANT_PEERS = process.env.BENCH_PEERS !== "0" && !flags["no-peers"];

/** A client/engine pair under test. */
interface Subject {
  name: string;
  /** The build command up to (not including) its flags and context. */
  argv: string[];
  env: Record<string, string | undefined>;
  /** Long-running engine processes whose CPU time counts towards each build. */
  daemons: () => number[];
  peer: boolean;
  /** Its own copy of the context (the one-file change must not touch the others' caches). */
  context: string;
  /** Image IDs it built, removed at the end (peers keep untagged parents otherwise). */
  built: Set<string>;
  /** Removes an image (peers only). */
  rmi?: (id: string) => void;
  /** Measured in these scenarios only (default: all). */
  only?: Scenario[];
}

/**
 * The floor's stub daemon: answers /_ping and /version, reads a /build body to its end and
 * replies with an image ID. Run as its own process (the benchmark blocks in spawnSync).
 */
const STUB = `
import { createServer } from "node:http";
const id = "sha256:" + "0".repeat(64);
createServer((req, res) => {
  if (req.url.includes("/_ping")) { res.setHeader("Api-Version", "1.47"); res.end("OK"); return; }
  if (req.url.includes("/version")) { res.setHeader("Content-Type", "application/json"); res.end(JSON.stringify({ ApiVersion: "1.47", MinAPIVersion: "1.24", Version: "stub", Os: "linux", Arch: "amd64" })); return; }
  req.on("data", () => {});
  req.on("end", () => { res.setHeader("Content-Type", "application/json"); res.end(JSON.stringify({ aux: { ID: id } }) + "\\n" + JSON.stringify({ stream: id + "\\n" }) + "\\n"); });
}).listen(process.argv[1]);
`;

/** Deterministic incompressible bytes (a SHA-256 counter stream): gzip cannot shortcut them. */
function bytes(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let off = 0, i = 0; off < n; i++) off += createHash("sha256").update(`${seed}:${i}`).digest().copy(out, off);
  return out;
}

function makeContext(dir: string): void {
  const per = Math.floor(TOTAL_BYTES / FILES);
  for (let d = 0; d < DIRS; d++) {
    mkdirSync(join(dir, "src", `d${String(d).padStart(2, "0")}`), { recursive: true });
  }
  for (let f = 0; f < FILES; f++) {
    const d = f % DIRS;
    writeFileSync(join(dir, "src", `d${String(d).padStart(2, "0")}`, `f${String(f).padStart(4, "0")}.bin`), bytes(`f${f}`, per));
  }
  writeFileSync(join(dir, "Dockerfile"), DOCKERFILE);
}

function changeOneFile(s: Subject, round: number): void {
  const per = Math.floor(TOTAL_BYTES / FILES);
  writeFileSync(join(s.context, "src", "d00", "f0000.bin"), bytes(`${s.name}:${round}:${Date.now()}`, per));
}

/** One timed build: wall-clock ms and CPU seconds of the client (and children) plus daemons. */
function build(s: Subject, scenario: Scenario): { ms: number; cpu: number } {
  const extra = scenario === "cold" ? ["--no-cache"] : [];
  const pids = s.daemons();
  const before = cpuOf(process.pid) + pids.reduce((n, p) => n + cpuOf(p), 0);
  const r = exec([...s.argv, "-q", "-t", TAG, ...extra, s.context], { env: s.env, timeoutMs: 600_000 });
  const cpu = cpuOf(process.pid) + pids.reduce((n, p) => n + cpuOf(p), 0) - before;
  if (r.code !== 0) throw new Error(`${s.name}: build failed (${r.code}): ${(r.err || r.out).trim().slice(-1500)}`);
  const id = r.out.trim().split("\n").pop() ?? "";
  if (id) s.built.add(id);
  return { ms: r.ms, cpu };
}

function dockerdPids(): number[] {
  const pid = Number(existsSync("/run/peers-dockerd.pid") ? readFileSync("/run/peers-dockerd.pid", "utf8").trim() : 0);
  return [...(pid ? [pid] : []), ...processes((c) => c === "containerd").map((p) => p.pid)];
}

function version(argv: string[], env: Record<string, string | undefined> = {}): string {
  const r = exec(argv, { env });
  return r.code === 0 ? (r.out.trim().split("\n")[0] ?? "") : "unavailable";
}

interface Row {
  subject: string;
  scenario: Scenario;
  ms: Stats;
  cpu: Stats;
}

async function main(): Promise<void> {
  if (exec(["curl", "-sf", `${MIRROR}/v2/`]).code !== 0) exec(["bash", join(SHARED, "fixtures/registry.sh"), "start"]);
  const work = mkdtempSync("/var/tmp/berth-bench-build-");
  const subjects: Subject[] = [];
  let berthd: Berthd | undefined;
  let stub: ChildProcess | undefined;
  const cleanup = () => {
    stub?.kill();
    for (const s of subjects) {
      if (!s.rmi) continue;
      for (const id of s.built) s.rmi(id);
    }
    berthd?.cleanup();
    rmSync(work, { recursive: true, force: true });
  };
  const started = new Date();
  await withCleanup(cleanup, async () => {
    berthd = await Berthd.start({ repo: REPO, mirror: MIRROR, ...(flags["cpu-prof"] ? { cpuProfDir: flags["cpu-prof"] } : {}) });
    const b = berthd;
    log(`writing the context (${FILES} files, ${TOTAL_BYTES / 1e6} MB)`);
    const template = join(work, "template");
    makeContext(template);
    const contextFor = (name: string) => {
      const dir = join(work, name);
      exec(["cp", "-a", template, dir]);
      return dir;
    };
    const docker = which("docker");
    if (!docker) throw new Error("the docker CLI is needed");
    const berthEnv = { DOCKER_HOST: b.host, DOCKER_BUILDKIT: "0" };
    subjects.push({
      name: "berthd (docker CLI, classic)",
      argv: [docker, "build"],
      env: berthEnv,
      daemons: () => [b.pid],
      peer: false,
      context: contextFor("berth-docker"),
      built: new Set(),
    });
    subjects.push({
      name: "berthd (berth build)",
      argv: [join(REPO, "bin/berth"), "build"],
      env: berthEnv,
      daemons: () => [b.pid],
      peer: false,
      context: contextFor("berth-berth"),
      built: new Set(),
    });
    exec([docker, "pull", "-q", "busybox"], { env: berthEnv });
    const stubSocket = join(work, "stub.sock");
    stub = spawn(process.execPath, ["--input-type=module", "-e", STUB, stubSocket], { stdio: "ignore" });
    for (let i = 0; i < 50 && !existsSync(stubSocket); i++) await new Promise((r) => setTimeout(r, 100));
    subjects.push({
      name: "floor: docker CLI → stub daemon",
      argv: [docker, "build"],
      env: { DOCKER_HOST: `unix://${stubSocket}`, DOCKER_BUILDKIT: "0" },
      daemons: () => (stub?.pid ? [stub.pid] : []),
      peer: false,
      context: contextFor("floor"),
      built: new Set(),
      only: ["cached"],
    });
    const skipped: string[] = [];
    if (WANT_PEERS) {
      const dockerEnv = { DOCKER_HOST: "unix:///var/run/docker.sock", DOCKER_BUILDKIT: "0" };
      if (exec([docker, "version", "--format", "{{.Server.Version}}"], { env: dockerEnv }).code === 0) {
        exec([docker, "pull", "-q", "busybox"], { env: dockerEnv });
        subjects.push({
          name: "dockerd (docker CLI, classic)",
          argv: [docker, "build"],
          env: dockerEnv,
          daemons: dockerdPids,
          peer: true,
          context: contextFor("dockerd"),
          built: new Set(),
          rmi: (id) => void exec([docker, "rmi", id], { env: dockerEnv }),
        });
      } else skipped.push("dockerd");
      if (which("podman") && exec(["podman", "version"]).code === 0) {
        exec(["podman", "pull", "-q", "docker.io/library/busybox"]);
        subjects.push({
          name: "podman build",
          argv: ["podman", "build", "--layers"],
          env: {},
          daemons: () => [],
          peer: true,
          context: contextFor("podman"),
          built: new Set(),
          rmi: (id) => void exec(["podman", "rmi", id]),
        });
      } else skipped.push("podman");
    }
    const versions = {
      berth: version(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]),
      dockerCli: version([docker, "version", "--format", "{{.Client.Version}}"], berthEnv),
      dockerd: subjects.some((s) => s.name.startsWith("dockerd"))
        ? version([docker, "version", "--format", "{{.Server.Version}}"], { DOCKER_HOST: "unix:///var/run/docker.sock" })
        : "not run",
      podman: subjects.some((s) => s.name.startsWith("podman")) ? version(["podman", "--version"]) : "not run",
      kernel: version(["uname", "-r"]),
    };
    const host = { cpus: cpus().length, cpu: cpus()[0]?.model ?? "", loadBefore: loadavg(), loadAfter: [] as number[] };
    process.stdout.write(
      `build: ${FILES} files, ${TOTAL_BYTES / 1e6} MB context; berth ${versions.berth} | ${host.cpus} x ${host.cpu} | docker CLI ${versions.dockerCli} | ` +
        `dockerd ${versions.dockerd} | ${versions.podman} | ${RUNS} runs (+1 warm-up)\n`,
    );
    const samples = new Map<string, { ms: number[]; cpu: number[] }>();
    for (let round = 0; round <= RUNS; round++) {
      log(`round ${round}${round === 0 ? " (warm-up)" : ""}/${RUNS}`);
      for (const scenario of SCENARIOS) {
        for (const s of subjects) {
          if (s.only && !s.only.includes(scenario)) continue;
          if (scenario === "one file") changeOneFile(s, round);
          const m = build(s, scenario);
          if (round === 0) continue;
          const k = `${s.name}\0${scenario}`;
          const v = samples.get(k) ?? { ms: [], cpu: [] };
          v.ms.push(m.ms);
          v.cpu.push(m.cpu);
          samples.set(k, v);
        }
      }
    }
    host.loadAfter = loadavg();
    const rows: Row[] = [];
    for (const s of subjects) {
      for (const scenario of SCENARIOS) {
        const v = samples.get(`${s.name}\0${scenario}`);
        if (v) rows.push({ subject: s.name, scenario, ms: stats(v.ms), cpu: stats(v.cpu) });
      }
    }
    const med = (subject: string, scenario: Scenario) => rows.find((r) => r.subject === subject && r.scenario === scenario)?.ms.median;
    const body = rows.map((r) => [
      `  ${r.subject}`,
      r.scenario,
      `${Math.round(r.ms.min)} ms`,
      `${Math.round(r.ms.median)} ms`,
      `${Math.round(r.ms.max)} ms`,
      `${r.cpu.median.toFixed(2)} s`,
    ]);
    process.stdout.write(`${table([["", "", "min", "median", "max", "cpu (median)"], ...body])}\n`);
    const ratios: { name: string; value: number; target?: number; met?: boolean }[] = [];
    const peers = subjects.filter((s) => s.peer);
    for (const scenario of SCENARIOS) {
      const peerMed = peers.map((p) => med(p.name, scenario)).filter((x): x is number => x !== undefined);
      if (peerMed.length === 0) continue;
      const fastest = Math.min(...peerMed);
      const target = scenario === "cached" ? 0.3 : scenario === "one file" ? 0.5 : undefined;
      for (const s of subjects.filter((x) => !x.peer)) {
        const m = med(s.name, scenario);
        if (m === undefined) continue;
        const value = Math.round((m / fastest) * 100) / 100;
        ratios.push({ name: `${scenario}: ${s.name} / faster peer`, value, ...(target ? { target, met: value <= target } : {}) });
      }
    }
    process.stdout.write("\nratios (medians)\n");
    process.stdout.write(
      `${table(ratios.map((r) => [`  ${r.name}`, String(r.value), r.target ? `target ≤ ${r.target}` : "", r.met === undefined ? "" : r.met ? "met" : "MISSED"]))}\n`,
    );
    const notes: string[] = [];
    if (skipped.length) notes.push(`peers unavailable, skipped: ${skipped.join(", ")}`);
    const busy = Math.max(host.loadBefore[0] ?? 0, host.loadAfter[0] ?? 0);
    if (busy > host.cpus / 2)
      notes.push(
        `the machine was busy (1-minute load ${busy.toFixed(1)} on ${host.cpus} CPUs): wall-clock times are inflated, CPU times less so`,
      );
    for (const n of notes) process.stdout.write(`note: ${n}\n`);
    if (flags.save) {
      const summary = {
        date: started.toISOString(),
        runs: RUNS,
        context: { files: FILES, bytes: TOTAL_BYTES, dockerfile: DOCKERFILE },
        host,
        versions,
        results: rows,
        ratios,
        notes,
      };
      const name = saveResults(join(REPO, "bench/results"), "build-", started, summary);
      process.stdout.write(`\nwrote bench/results/${name}\n`);
    }
  });
}

main().catch(reportFailure);
