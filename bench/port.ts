/**
 * Published port, first byte (issue 4): how long after `run -d` returns a busybox httpd
 * published with `-p` answers its first byte. Target: within 50 ms for berth.
 *
 *   node bench/port.ts [--runs N] [--no-peers] [--save]
 *
 * Two paths per engine: `-p 127.0.0.1:P:80` reached on 127.0.0.1 (dockerd's userland proxy, if
 * it runs one, is on this path), and `-p P:80` reached on the host's non-loopback address (DNAT
 * in OUTPUT for every engine). Once `run -d` has returned, the benchmark opens a connection
 * every 2 ms (at most 16 at once, each sending `GET /`) until one of them receives a byte; the
 * time to that byte is the sample. `run -d`'s own time is recorded beside it. Each engine and
 * path gets one warm-up run and then N (default 7), interleaved between engines so that load
 * drift hits all alike. Peers: dockerd on /var/run/docker.sock and podman, when they answer
 * (shared/bench/peers.sh sets them up; BENCH_PEERS=0 or --no-peers skips them).
 * Writes bench/results/port-<date>.json with --save. Needs root. See docs/benchmarks.md.
 */
import { connect, createServer } from "node:net";
import { cpus, loadavg, networkInterfaces } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Berthd } from "./berthd.ts";
import { exec, human, log, reportFailure, type Stats, saveResults, stats, table, which, withCleanup } from "./_lib.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const SHARED = process.env.BERTH_SHARED ?? join(REPO, "..", "shared");
const TAG = `berth-bench-port-${process.pid}`;
const TARGET_MS = 50;
/** Give up on a run after this long without a byte (the sample is then recorded as missing). */
const GIVE_UP_MS = 10_000;
const HTTPD = "mkdir /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www";

const { values: flags } = parseArgs({
  options: { runs: { type: "string" }, "no-peers": { type: "boolean" }, save: { type: "boolean" } },
});
const RUNS = Math.max(1, Number(flags.runs ?? process.env.BENCH_RUNS ?? 7) || 7);
const WANT_PEERS = process.env.BENCH_PEERS !== "0" && !flags["no-peers"];

interface Engine {
  name: "berth" | "dockerd" | "podman";
  cli: string[];
  env: Record<string, string | undefined>;
}

/** One way to reach the port: how it is published and which address the client connects to. */
interface Path {
  name: string;
  /** The `-p` value for host port `port`. */
  publish: (port: number) => string;
  address: string;
}

/** The host's address on its default route (else its first non-loopback IPv4 that is not a container bridge). */
function hostAddress(): string {
  const r = exec(["ip", "-4", "-o", "route", "get", "192.0.2.255"]);
  const src = / src (\d+\.\d+\.\d+\.\d+)/.exec(r.out)?.[1];
  if (src && !src.startsWith("127.")) return src;
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (/^(docker|berth|br-|cni|podman|veth)/.test(name)) continue;
    const a = addrs?.find((x) => x.family === "IPv4" && !x.internal);
    if (a) return a.address;
  }
  throw new Error("The host has no non-loopback IPv4 address to measure the DNAT path on");
}

/** A TCP port that nothing listens on now (bound and released on all addresses). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "0.0.0.0", () => {
      const a = s.address();
      s.close(() => (a && typeof a === "object" ? resolve(a.port) : reject(new Error("No port"))));
    });
  });
}

/** What polling a port gave: ms from the start of polling to the first byte, and how many connections it took. */
interface FirstByte {
  ms: number;
  attempts: number;
  /** The first bytes received (to check that they came from httpd). */
  head: string;
}

/**
 * Opens a connection to `address:port` every 2 ms (at most 16 pending; each gives up after
 * 2 s) until one receives data. A refused connection, one closed without data (a proxy whose
 * backend is not up yet) and one that hangs (a SYN dropped before the rules are in) all just
 * let the next attempt try; overlapping them means a hanging SYN does not hide a later success.
 */
function firstByte(address: string, port: number): Promise<FirstByte | undefined> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const open = new Set<ReturnType<typeof connect>>();
    let attempts = 0;
    let done = false;
    const finish = (r: FirstByte | undefined) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      for (const s of open) s.destroy();
      resolve(r);
    };
    const attempt = () => {
      if (open.size >= 16) return;
      attempts++;
      const s = connect({ host: address, port });
      open.add(s);
      s.setNoDelay(true);
      s.setTimeout(2000, () => s.destroy());
      s.on("connect", () => s.write("GET / HTTP/1.0\r\n\r\n"));
      s.once("data", (d: Buffer) => finish({ ms: performance.now() - t0, attempts, head: d.subarray(0, 16).toString("latin1") }));
      s.on("error", () => {});
      s.on("close", () => open.delete(s));
    };
    const timer = setInterval(() => {
      if (performance.now() - t0 > GIVE_UP_MS) finish(undefined);
      else attempt();
    }, 2);
    attempt();
  });
}

interface Sample {
  runMs: number;
  firstByteMs: number;
  attempts: number;
}

/** One run: `run -d` (timed to its exit), then the first byte; the container is removed after. */
async function once(e: Engine, path: Path, name: string): Promise<Sample | undefined> {
  const port = await freePort();
  const r = exec([...e.cli, "run", "-d", "--name", name, "-p", path.publish(port), "busybox", "sh", "-c", HTTPD], { env: e.env });
  try {
    if (r.code !== 0) throw new Error(`${e.name}: run -d failed (${r.code}): ${(r.err || r.out).trim().slice(-800)}`);
    const fb = await firstByte(path.address, port);
    if (!fb) {
      log(`${e.name} ${path.name}: no byte within ${GIVE_UP_MS} ms`);
      return undefined;
    }
    if (!fb.head.startsWith("HTTP/")) log(`${e.name} ${path.name}: the first bytes were not an HTTP answer: ${JSON.stringify(fb.head)}`);
    return { runMs: r.ms, firstByteMs: fb.ms, attempts: fb.attempts };
  } finally {
    // podman's rm -f first waits out the stop timeout (httpd as PID 1 ignores SIGTERM).
    exec([...e.cli, "rm", "-f", ...(e.name === "podman" ? ["-t", "0"] : []), name], { env: e.env });
  }
}

function dockerdUp(docker: string): boolean {
  return exec([docker, "version", "--format", "{{.Server.Version}}"], { env: { DOCKER_HOST: "unix:///var/run/docker.sock" } }).code === 0;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("The benchmark needs root (berthd, the peers' daemons)");
  const docker = which("docker");
  if (!docker) throw new Error("The docker CLI is needed to drive berthd (Debian: docker.io, or docker-ce-cli)");
  exec(["bash", join(SHARED, "fixtures/registry.sh"), "start"], { env: { BERTH_TEST_REGISTRY_PORT: "5000" } });
  const engines: Engine[] = [];
  const skipped: string[] = [];
  let startedDockerd = false;
  if (WANT_PEERS) {
    const before = dockerdUp(docker);
    if (!before || !which("podman")) {
      log("setting up peers (shared/bench/peers.sh)");
      const r = exec(["bash", join(SHARED, "bench/peers.sh")], { env: { DOCKER_HOST: undefined }, timeoutMs: 900_000 });
      if (r.code !== 0) log(`peers.sh failed (${r.code}); using whichever peers answer`);
    }
    if (dockerdUp(docker)) {
      startedDockerd = !before;
      engines.push({ name: "dockerd", cli: [docker], env: { DOCKER_HOST: "unix:///var/run/docker.sock" } });
    } else skipped.push("dockerd");
    if (which("podman") && exec(["podman", "version"]).code === 0) engines.push({ name: "podman", cli: ["podman"], env: {} });
    else skipped.push("podman");
  }
  const address = hostAddress();
  const paths: Path[] = [
    { name: "127.0.0.1", publish: (p) => `127.0.0.1:${p}:80`, address: "127.0.0.1" },
    { name: `host address (${address})`, publish: (p) => `${p}:80`, address },
  ];
  let berthd: Berthd | undefined;
  const cleanup = () => {
    for (const e of engines) {
      const left = exec([...e.cli, "ps", "-aq", "--filter", `name=${TAG}`], { env: e.env })
        .out.split("\n")
        .filter(Boolean);
      if (left.length) exec([...e.cli, "rm", "-f", ...left], { env: e.env });
    }
    berthd?.cleanup();
    if (startedDockerd) exec(["bash", join(SHARED, "bench/peers.sh"), "stop"]);
  };
  const started = new Date();
  await withCleanup(cleanup, async () => {
    berthd = await Berthd.start({ repo: REPO, mirror: "http://127.0.0.1:5000" });
    engines.unshift({ name: "berth", cli: [docker], env: { DOCKER_HOST: berthd.host } });
    for (const e of engines) {
      if (exec([...e.cli, "image", "inspect", "busybox"], { env: e.env }).code !== 0) {
        const r = exec([...e.cli, "pull", "busybox"], { env: e.env });
        if (r.code !== 0) throw new Error(`${e.name}: pull busybox failed: ${(r.err || r.out).trim().slice(-500)}`);
      }
    }
    const samples = new Map<string, Sample[]>();
    const missing = new Map<string, number>();
    let n = 0;
    for (let run = 0; run <= RUNS; run++) {
      for (const path of paths) {
        for (const e of engines) {
          const s = await once(e, path, `${TAG}-${n++}`);
          if (run === 0) continue; // warm-up: first start of an image, first rules on a bridge
          const key = `${e.name}\t${path.name}`;
          if (s) samples.set(key, [...(samples.get(key) ?? []), s]);
          else missing.set(key, (missing.get(key) ?? 0) + 1);
        }
      }
    }
    const results: { engine: string; path: string; firstByte: Stats; run: Stats; attempts: Stats; missing: number }[] = [];
    const rows = [["", "first byte min", "median", "max", "run -d median", "connections (median)", ""]];
    for (const path of paths) {
      for (const e of engines) {
        const key = `${e.name}\t${path.name}`;
        const ss = samples.get(key) ?? [];
        const fb = stats(ss.map((s) => s.firstByteMs));
        const run = stats(ss.map((s) => s.runMs));
        const miss = missing.get(key) ?? 0;
        results.push({ engine: e.name, path: path.name, firstByte: fb, run, attempts: stats(ss.map((s) => s.attempts)), missing: miss });
        const target = e.name === "berth" ? (fb.median <= TARGET_MS && miss === 0 ? `met (<= ${TARGET_MS} ms)` : "MISSED") : "";
        rows.push([
          `  ${e.name} on ${path.name}`,
          human(fb.min, "ms"),
          human(fb.median, "ms"),
          human(fb.max, "ms"),
          human(run.median, "ms"),
          String(stats(ss.map((s) => s.attempts)).median),
          miss ? `${miss} without a byte ${target}` : target,
        ]);
      }
    }
    const load = loadavg();
    process.stdout.write(
      `published port: first byte after \`run -d\` returns, busybox httpd, ${RUNS} runs (${cpus().length} CPUs, load ${load[0]?.toFixed(1)})\n` +
        `${table(rows)}\n`,
    );
    if (skipped.length) process.stdout.write(`note: peers unavailable, skipped: ${skipped.join(", ")}\n`);
    if (flags.save) {
      const versions = {
        berth: exec(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]).out.trim(),
        dockerd: engines.some((e) => e.name === "dockerd")
          ? exec([docker, "version", "--format", "{{.Server.Version}}"], { env: { DOCKER_HOST: "unix:///var/run/docker.sock" } }).out.trim()
          : "not run",
        podman: engines.some((e) => e.name === "podman") ? exec(["podman", "--version"]).out.trim() : "not run",
        kernel: exec(["uname", "-r"]).out.trim(),
      };
      const summary = {
        date: started.toISOString(),
        runs: RUNS,
        targetMs: TARGET_MS,
        cpus: cpus().length,
        load,
        versions,
        skipped,
        results,
      };
      const file = saveResults(join(REPO, "bench/results"), "port-", started, summary);
      process.stdout.write(`wrote bench/results/${file}\n`);
    }
  });
}

main().catch(reportFailure);
