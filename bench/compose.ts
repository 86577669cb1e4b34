/**
 * Compose benchmark (issue "Compose"): `up -d` and `down` of a 10-service file, median of N
 * runs, `berth compose` against berthd beside docker-compose against dockerd (peers.sh) in the
 * same run; docker-compose against berthd is shown too. Target: berth at most 0.5× the peer.
 *
 *   node bench/compose.ts [--runs N] [--save]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Berthd } from "./berthd.ts";
import { exec, stats, table, which } from "./_lib.ts";

const repo = new URL("..", import.meta.url).pathname;
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : Number(process.env.BENCH_RUNS ?? 5);
const SERVICES = 10;

function composeFile(): string {
  let y = "services:\n";
  for (let i = 0; i < SERVICES; i++) {
    y += `  s${i}:\n    image: busybox\n    command: ["sleep", "600"]\n    init: true\n`;
    if (i > 0) y += `    depends_on: [s${i - 1}]\n`;
  }
  return y;
}

function timed(argv: string[], env: NodeJS.ProcessEnv, cwd: string): number {
  const t0 = performance.now();
  const r = exec(argv, { env, cwd });
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed (${r.code}): ${r.err.slice(-500)}`);
  return ms;
}

async function main(): Promise<void> {
  exec(["bash", join(repo, "../shared/fixtures/registry.sh"), "start"]);
  const dir = mkdtempSync("/var/tmp/berth-bench-compose-");
  writeFileSync(join(dir, "docker-compose.yml"), composeFile());
  const berthd = await Berthd.start({ repo, mirror: "http://127.0.0.1:5000" });
  const rows: string[][] = [["client → engine", "up -d median", "down median", "up / peer", "down / peer"]];
  const results: Record<string, { up: ReturnType<typeof stats>; down: ReturnType<typeof stats> }> = {};
  try {
    const engines: { name: string; argv: string[]; env: NodeJS.ProcessEnv }[] = [
      { name: "berth compose → berthd", argv: [join(repo, "bin/berth"), "compose"], env: { ...process.env, DOCKER_HOST: berthd.host } },
    ];
    if (which("docker-compose")) {
      engines.push({ name: "docker-compose → berthd", argv: ["docker-compose"], env: { ...process.env, DOCKER_HOST: berthd.host } });
      const dockerd = exec(["docker", "-H", "unix:///var/run/docker.sock", "version", "--format", "{{.Server.Version}}"]);
      if (dockerd.code === 0)
        engines.push({
          name: `docker-compose → dockerd ${dockerd.out.trim()}`,
          argv: ["docker-compose"],
          env: { ...process.env, DOCKER_HOST: "unix:///var/run/docker.sock" },
        });
    }
    for (const e of engines) exec(["docker", "pull", "-q", "busybox"], { env: e.env });
    const samples = new Map<string, { up: number[]; down: number[] }>();
    for (let run = 0; run <= RUNS; run++) {
      for (const e of engines) {
        const project = ["-p", `benchc${process.pid}`];
        const up = timed([...e.argv, ...project, "up", "-d"], e.env, dir);
        const down = timed([...e.argv, ...project, "down", "-t", "0"], e.env, dir);
        if (run === 0) continue; // warm-up
        const s = samples.get(e.name) ?? { up: [], down: [] };
        s.up.push(up);
        s.down.push(down);
        samples.set(e.name, s);
      }
    }
    const peer = [...samples.keys()].find((k) => k.includes("dockerd"));
    for (const [name, s] of samples) {
      results[name] = { up: stats(s.up), down: stats(s.down) };
    }
    const pu = peer ? results[peer]?.up.median : undefined;
    const pd = peer ? results[peer]?.down.median : undefined;
    for (const [name, r] of Object.entries(results)) {
      rows.push([
        name,
        `${Math.round(r.up.median)} ms`,
        `${Math.round(r.down.median)} ms`,
        pu ? (r.up.median / pu).toFixed(2) : "-",
        pd ? (r.down.median / pd).toFixed(2) : "-",
      ]);
    }
    process.stdout.write(`compose: ${SERVICES} services, ${RUNS} runs (target: berth ≤ 0.5× docker-compose → dockerd)\n${table(rows)}\n`);
    if (process.argv.includes("--save")) {
      writeFileSync(
        join(repo, "bench/results", `compose-${new Date().toISOString().slice(0, 10)}.json`),
        `${JSON.stringify({ date: new Date().toISOString(), runs: RUNS, services: SERVICES, results }, null, 2)}\n`,
      );
    }
  } finally {
    berthd.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
