/**
 * Micro-benchmark of `applyLayer` alone: the debian:bookworm layer blob (fetched once from the
 * registry fixture into memory) applied onto a fresh directory, next to the in-process floor
 * (gunzip + sha256, no files) and GNU `tar -xzf` of the same blob. Unlike bench/run.ts this
 * imports engine code: it isolates the unpacker from the registry, the content store and the
 * daemon. Runs as root (owners are applied) or not.
 *
 *   node bench/apply.ts [--runs N] [--repo library/debian] [--tag bookworm] [--only apply,floor,tar]
 *                       [--compare path/to/other/apply.ts]
 *
 * `--compare` loads a second `applyLayer` (say, the previous version copied out of git) and
 * runs it in turn with the current one, so that drift in the machine's load hits both alike.
 * Prints wall-clock and CPU time (this process, all threads) per run and the medians.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { createGunzip } from "node:zlib";
import { applyLayer } from "../src/archive/mod.ts";
import { type Digest, RealHost } from "../src/base/mod.ts";
import { exec, human, stats, table } from "./_lib.ts";

const REGISTRY = process.env.BENCH_REGISTRY ?? "127.0.0.1:5000";
const { values: flags } = parseArgs({
  options: {
    runs: { type: "string" },
    repo: { type: "string" },
    tag: { type: "string" },
    only: { type: "string" },
    compare: { type: "string" },
  },
});
const RUNS = Math.max(1, Number(flags.runs ?? 5) || 5);
const REPO = flags.repo ?? "library/debian";
const TAG = flags.tag ?? "bookworm";
const ONLY = new Set((flags.only ?? "apply,floor,tar").split(","));

const ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

async function json(path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://${REGISTRY}/v2/${path}`, { headers: { accept: ACCEPT } });
  if (!res.ok) throw new Error(`Registry answered ${res.status} for "${path}"`);
  return (await res.json()) as Record<string, unknown>;
}

async function firstLayer(): Promise<{ blob: Buffer; diffId: string }> {
  let m = await json(`${REPO}/manifests/${TAG}`);
  if (Array.isArray(m.manifests)) {
    const pick = (m.manifests as { digest: string; platform?: { os?: string; architecture?: string } }[]).find(
      (x) => x.platform?.os === "linux" && x.platform.architecture === "amd64",
    );
    if (!pick) throw new Error("No linux/amd64 image");
    m = await json(`${REPO}/manifests/${pick.digest}`);
  }
  const layers = m.layers as { digest: string }[];
  const config = await json(`${REPO}/blobs/${(m.config as { digest: string }).digest}`);
  const diffId = (config.rootfs as { diff_ids: string[] }).diff_ids[0] ?? "";
  const res = await fetch(`http://${REGISTRY}/v2/${REPO}/blobs/${layers[0]?.digest}`);
  if (!res.ok) throw new Error(`Registry answered ${res.status} for the layer blob`);
  return { blob: Buffer.from(await res.arrayBuffer()), diffId };
}

async function timed(fn: () => Promise<void>): Promise<{ ms: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  return { ms, cpu: (c.user + c.system) / 1e6 };
}

/** The blob as a registry body would arrive: 64 KiB chunks. */
function chunks(b: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let o = 0; o < b.length; o += 64 * 1024) yield b.subarray(o, o + 64 * 1024);
    })(),
  );
}

type Apply = typeof applyLayer;

async function main(): Promise<void> {
  const appliers: [string, Apply][] = [["applyLayer", applyLayer]];
  if (flags.compare) {
    const other = (await import(new URL(flags.compare, `file://${process.cwd()}/`).href)) as { applyLayer: Apply };
    appliers.push([`applyLayer (${flags.compare})`, other.applyLayer]);
  }
  const { blob, diffId } = await firstLayer();
  process.stderr.write(`apply: ${REPO}:${TAG} layer ${(blob.length / 1e6).toFixed(1)} MB\n`);
  const dir = mkdtempSync("/var/tmp/berth-bench-apply-");
  // As the snapshotter does (docs/storage.md, "Placement"): a +T parent and fresh random names,
  // so that ext4 does not put each target among the inodes the previous run just freed.
  exec(["chattr", "+T", dir]);
  const host = new RealHost();
  const file = join(dir, "layer.gz");
  writeFileSync(file, blob);
  const res: Record<string, { ms: number[]; cpu: number[] }> = {};
  const add = (k: string, m: { ms: number; cpu: number }) => {
    res[k] ??= { ms: [], cpu: [] };
    res[k].ms.push(m.ms);
    res[k].cpu.push(m.cpu);
  };
  try {
    for (let i = 0; i < RUNS; i++) {
      if (ONLY.has("apply")) {
        // Alternate which one goes first, so that neither always follows the other's deletes.
        const order = i % 2 ? [...appliers].reverse() : appliers;
        for (const [name, apply] of order) {
          const target = join(dir, `t${i}-${randomBytes(8).toString("hex")}`);
          mkdirSync(target);
          exec(["sync"]);
          const m = await timed(async () => {
            const r = await apply(chunks(blob), target, { host, diffId: diffId as Digest, layerName: "bench" });
            if (r.diffId !== diffId) throw new Error("diff ID mismatch");
          });
          add(name, m);
          rmSync(target, { recursive: true, force: true });
          exec(["sync"]);
        }
      }
      if (ONLY.has("floor")) {
        add(
          "floor: gunzip+sha256",
          await timed(
            () =>
              new Promise<void>((resolve, reject) => {
                const h = createHash("sha256");
                const g = createGunzip({ chunkSize: 64 * 1024 });
                g.on("data", (d: Buffer) => h.update(d));
                g.on("end", () => (`sha256:${h.digest("hex")}` === diffId ? resolve() : reject(new Error("floor mismatch"))));
                g.on("error", reject);
                g.end(blob);
              }),
          ),
        );
      }
      if (ONLY.has("tar")) {
        const target = join(dir, `tar${i}`);
        mkdirSync(target);
        exec(["sync"]);
        const r = exec(["sh", "-c", `tar -xzf '${file}' -C '${target}' && cat /proc/$$/stat`]);
        // The child's CPU: from the shell's own /proc stat, its reaped children (cutime+cstime).
        const f = r.out.slice(r.out.lastIndexOf(")") + 2).split(" ");
        add("tar -xzf", { ms: r.ms, cpu: (Number(f[13]) + Number(f[14])) / 100 });
        rmSync(target, { recursive: true, force: true });
      }
      process.stderr.write(
        `run ${i + 1}/${RUNS}: ${Object.entries(res)
          .map(([k, v]) => `${k} ${human(v.ms.at(-1) ?? 0, "ms")} (cpu ${(v.cpu.at(-1) ?? 0).toFixed(2)} s)`)
          .join(", ")}\n`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = Object.entries(res).map(([k, v]) => {
    const s = stats(v.ms);
    const c = stats(v.cpu);
    return [`  ${k}`, human(s.min, "ms"), human(s.median, "ms"), human(s.max, "ms"), `${c.median.toFixed(2)} s`];
  });
  process.stdout.write(`${table([["", "min", "median", "max", "cpu (median)"], ...rows])}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`apply: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
