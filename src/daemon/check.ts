import { createReadStream } from "node:fs";
import { lstat, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { canceled, type Digest, Digester, isDigest, isNotFound, messageOf, parseDigest } from "../base/mod.ts";
import { type ImageConfig, type Manifest, parseImageConfig, parseManifest, parseReference } from "../oci/mod.ts";
import { chainIds } from "../snapshot/mod.ts";
import type { Daemon } from "./daemon.ts";

/**
 * How bad a problem is. `error`: the store is inconsistent or corrupt (a blob that does not hash
 * to its name, a row naming something that is not there). `garbage`: what an interrupted
 * operation legitimately leaves behind and recovery or GC removes (partial ingests, half-unpacked
 * snapshots, unreferenced blobs); it does not make a store unhealthy.
 */
export type CheckSeverity = "error" | "garbage";

/** One finding of the store checker. */
export interface CheckProblem {
  /** Stable identifier of the class of problem, e.g. `blob-corrupt`, `image-snapshot-missing`. */
  kind: string;
  /** What it is about: a digest, a snapshot key, an image name, a path. */
  subject: string;
  message: string;
  severity: CheckSeverity;
  /** Whether the checker fixed it (only with `repair`). */
  repaired: boolean;
}

/** The result of `checkStore`; `POST /berth/system/check` returns it as JSON. */
export interface CheckReport {
  /** True when no unrepaired problem of severity `error` remains. */
  ok: boolean;
  checked: { blobs: number; images: number; snapshots: number; containers: number };
  problems: CheckProblem[];
  /** What the garbage collector removed (only with `repair`). */
  gc?: { blobs: number; snapshots: number; bytes: number };
}

/** Options of `checkStore`. */
export interface CheckOptions {
  /** Fix what is provably garbage or corrupt, then run GC. Images are never removed. */
  repair: boolean;
  /**
   * True when nothing else uses the store (`berthd --check`): then things that look like an
   * operation in flight (`extract-*` snapshots, temp ingests, temp files, container directories
   * without a row) are leftovers of a crash and repair removes them. A live daemon leaves them
   * alone, since a pull or create may own them right now.
   */
  exclusive?: boolean;
  signal?: AbortSignal;
}

const HEX_LEN: Record<string, number> = { sha256: 64, sha512: 128 };
const DAY_MS = 24 * 3600 * 1000;

/** Rehashes a file with the algorithm of `d`; returns the digest it actually has. */
async function hashFile(path: string, d: Digest, signal?: AbortSignal): Promise<Digest> {
  const dg = new Digester(d.startsWith("sha512:") ? "sha512" : "sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    if (signal?.aborted) throw canceled("The store check was canceled");
    dg.update(chunk as Buffer);
  }
  return dg.digest();
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if (isNotFound(e)) return [];
    throw e;
  }
}

/** Mount points at or under `dir` (from /proc/self/mountinfo; octal escapes decoded). */
async function mountsUnder(dir: string): Promise<string[]> {
  let text = "";
  try {
    text = await readFile("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const mp = line.split(" ")[4];
    if (!mp) continue;
    const p = mp.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    if (p === dir || p.startsWith(`${dir}/`)) out.push(p);
  }
  return out;
}

/**
 * Verifies the whole store of a daemon and optionally repairs it:
 *
 * - blobs: every file under `content/blobs/<alg>/` has a valid digest name and hashes to it;
 * - images: manifest, config and layer blobs exist, are recorded for GC, the config is the
 *   image ID and lists as many diff IDs as the manifest has layers, and every layer's committed
 *   snapshot (by chain ID) exists; names point at existing images;
 * - snapshots: parents exist and are committed, directories exist, no directory without a row;
 * - containers: their directory and snapshot exist;
 * - crash leftovers: `extract-*` snapshots, temp and stale ingests, `.tmp-*` files.
 *
 * With `repair`, corrupt blobs and stray files in the blob directory are removed, missing GC
 * records are re-added, missing layer snapshots are unpacked again from verified blobs, dangling
 * names are deleted, leftovers are removed (only when `exclusive`), and GC runs. Images that
 * lost a required blob are reported, not removed: that is the user's decision (`docker rmi`).
 */
export async function checkStore(daemon: Daemon, options: CheckOptions): Promise<CheckReport> {
  const { repair, signal } = options;
  const exclusive = options.exclusive ?? false;
  const problems: CheckProblem[] = [];
  /** Re-checks after GC whether a garbage problem is gone. */
  const afterGc: { problem: CheckProblem; gone: () => Promise<boolean> }[] = [];
  const report = (kind: string, subject: string, message: string, severity: CheckSeverity = "error"): CheckProblem => {
    const p: CheckProblem = { kind, subject, message, severity, repaired: false };
    problems.push(p);
    return p;
  };
  const tryRepair = async (p: CheckProblem, fn: () => Promise<void> | void): Promise<void> => {
    if (!repair) return;
    try {
      await fn();
      p.repaired = true;
    } catch (e) {
      p.message += ` (repair failed: ${messageOf(e)})`;
    }
  };
  const checkAbort = () => {
    if (signal?.aborted) throw canceled("The store check was canceled");
  };
  const content = daemon.content;
  const images = daemon.images;
  const store = images.store;
  const snaps = daemon.snapshots;
  const checked = { blobs: 0, images: 0, snapshots: 0, containers: 0 };

  // ---- database ----
  const integrity = daemon.db.all<Record<string, string>>("PRAGMA integrity_check");
  const firstIntegrity = Object.values(integrity[0] ?? {})[0];
  if (integrity.length !== 1 || firstIntegrity !== "ok") {
    report("database-corrupt", "berth.db", `SQLite integrity check failed: ${integrity.map((r) => Object.values(r).join(" ")).join("; ")}`);
  }

  // ---- blobs ----
  const blobs = new Map<string, number>();
  const corrupt = new Set<string>();
  const blobsRoot = join(content.root, "blobs");
  for (const alg of await names(blobsRoot)) {
    const dir = join(blobsRoot, alg);
    const want = HEX_LEN[alg];
    const st = await lstat(dir);
    if (want === undefined || !st.isDirectory()) {
      const p = report("blob-stray", dir, `Unexpected entry "${alg}" in the blob directory: not a digest algorithm`);
      await tryRepair(p, () => rm(dir, { recursive: true, force: true }));
      continue;
    }
    for (const hex of await names(dir)) {
      checkAbort();
      const path = join(dir, hex);
      const digest = `${alg}:${hex}`;
      let s: Awaited<ReturnType<typeof lstat>>;
      try {
        s = await lstat(path);
      } catch (e) {
        if (isNotFound(e)) continue; // removed by GC meanwhile
        throw e;
      }
      if (hex.length !== want || !isDigest(digest) || !s.isFile()) {
        const p = report("blob-stray", path, `Blob "${digest}" has an invalid name or is not a regular file`);
        await tryRepair(p, () => rm(path, { recursive: true, force: true }));
        continue;
      }
      checked.blobs++;
      let actual: Digest;
      try {
        actual = await hashFile(path, digest as Digest, signal);
      } catch (e) {
        if (isNotFound(e)) continue;
        throw e;
      }
      if (actual !== digest) {
        corrupt.add(digest);
        const p = report("blob-corrupt", digest, `Blob "${digest}" is corrupt: its content hashes to "${actual}"`);
        await tryRepair(p, () => content.delete(digest as Digest));
        continue;
      }
      blobs.set(digest, s.size);
    }
  }
  // A blob committed after the scan (a live daemon pulls meanwhile) was verified by its commit.
  const blobSize = async (d: string): Promise<number | undefined> => {
    if (corrupt.has(d)) return undefined;
    const known = blobs.get(d);
    if (known !== undefined || !isDigest(d)) return known;
    return (await content.info(d))?.size;
  };

  // ---- images ----
  const keepSnapshots = new Set<string>();
  const recorded = new Map<string, Set<string>>();
  for (const r of daemon.db.all<{ image_id: string; digest: string }>("SELECT image_id, digest FROM image_blobs")) {
    let set = recorded.get(r.image_id);
    if (!set) {
      set = new Set();
      recorded.set(r.image_id, set);
    }
    set.add(r.digest);
  }
  for (const img of store.list()) {
    checkAbort();
    checked.images++;
    const subject = img.id;
    const missing = async (d: string, what: string) => {
      if ((await blobSize(d)) !== undefined) return false;
      const why = corrupt.has(d) ? "was corrupt" : "is missing";
      report("image-blob-missing", subject, `Image "${img.id}": its ${what} blob "${d}" ${why}`);
      return true;
    };
    let manifest: Manifest | undefined;
    if (!(await missing(img.manifestDigest, "manifest"))) {
      try {
        const p = parseManifest(await content.readBytes(img.manifestDigest, 4 * 1024 * 1024), img.manifestMediaType);
        if (p.kind !== "manifest") throw new Error("it is an index, not a platform manifest");
        manifest = p.manifest;
      } catch (e) {
        report("image-manifest-invalid", subject, `Image "${img.id}": manifest "${img.manifestDigest}" is invalid: ${messageOf(e)}`);
      }
    }
    let config: ImageConfig | undefined;
    if (!(await missing(img.id, "config"))) {
      try {
        config = parseImageConfig(await content.readBytes(img.id));
      } catch (e) {
        report("image-config-invalid", subject, `Image "${img.id}": config is invalid: ${messageOf(e)}`);
      }
    }
    if (manifest && manifest.config.digest !== img.id) {
      report("image-manifest-invalid", subject, `Image "${img.id}": manifest names config "${manifest.config.digest}"`);
    }
    const required = new Set<string>([img.manifestDigest, img.id]);
    let layersOk = true;
    if (manifest) {
      for (const l of manifest.layers) {
        required.add(l.digest);
        const size = await blobSize(l.digest);
        if (await missing(l.digest, "layer")) layersOk = false;
        else if (size !== l.size) {
          layersOk = false;
          report("image-blob-size", subject, `Image "${img.id}": layer "${l.digest}" has ${size} bytes, the manifest says ${l.size}`);
        }
      }
    }
    // Blobs recorded for the image (index digests too) must exist; required ones must be recorded
    // or GC would delete them.
    const rec = recorded.get(img.id) ?? new Set<string>();
    for (const d of rec) if (!required.has(d)) await missing(d, "recorded");
    const unrecorded: string[] = [];
    for (const d of required) if (!rec.has(d) && (await blobSize(d)) !== undefined) unrecorded.push(d);
    if (unrecorded.length) {
      const p = report("image-blob-unrecorded", subject, `Image "${img.id}": blobs not recorded for GC: ${unrecorded.join(", ")}`);
      await tryRepair(p, () => {
        store.put(img, unrecorded as Digest[]);
      });
    }
    if (config) {
      const diffIds = config.rootfs.diff_ids;
      const chains = chainIds(diffIds);
      for (const c of chains) keepSnapshots.add(c);
      if (manifest && manifest.layers.length !== diffIds.length) {
        report(
          "image-config-invalid",
          subject,
          `Image "${img.id}": the manifest has ${manifest.layers.length} layers but the config lists ${diffIds.length} diff IDs`,
        );
        continue;
      }
      const absent = chains.filter((c) => snaps.stat(c)?.kind !== "committed");
      if (absent.length) {
        const p = report(
          "image-snapshot-missing",
          subject,
          `Image "${img.id}": layer snapshots missing or not committed: ${absent.join(", ")}`,
        );
        if (manifest && layersOk && absent.every((c) => snaps.stat(c) === undefined)) {
          const layers = manifest.layers;
          await tryRepair(p, () => images.unpackAll(layers, diffIds, signal));
        }
      }
    }
  }
  for (const n of store.names()) {
    let valid = true;
    try {
      parseReference(n.name);
    } catch {
      valid = false;
      report("name-invalid", n.name, `Image name "${n.name}" is not a valid reference`);
    }
    if (!store.get(n.imageId)) {
      const p = report("name-dangling", n.name, `Image name "${n.name}" points at missing image "${n.imageId}"`);
      await tryRepair(p, () => store.untag(n.name));
    } else if (valid && n.kind === "digest" && n.targetDigest !== undefined && !isDigest(n.targetDigest)) {
      report("name-invalid", n.name, `Image name "${n.name}" has an invalid target digest "${n.targetDigest}"`);
    }
  }

  // ---- containers ----
  const containerRoot = join(daemon.config.dataRoot, "containers");
  const containers = daemon.containers.store.list();
  const containerIds = new Set<string>();
  for (const c of containers) {
    checked.containers++;
    containerIds.add(c.Id);
    keepSnapshots.add(c.berth.snapshotKey);
    if (c.berth.topChainId) keepSnapshots.add(c.berth.topChainId);
    if (!snaps.stat(c.berth.snapshotKey)) {
      report("container-snapshot-missing", c.Id, `Container "${c.Id}" (${c.Name}): its snapshot "${c.berth.snapshotKey}" is missing`);
    }
    if (c.berth.topChainId && snaps.stat(c.berth.topChainId)?.kind !== "committed") {
      report("container-snapshot-missing", c.Id, `Container "${c.Id}" (${c.Name}): its image layer "${c.berth.topChainId}" is missing`);
    }
    if (!(await exists(join(containerRoot, c.Id)))) {
      report("container-dir-missing", c.Id, `Container "${c.Id}" (${c.Name}): its directory is missing`);
    }
  }
  for (const id of await names(containerRoot)) {
    const dir = join(containerRoot, id);
    if (containerIds.has(id)) {
      for (const f of await names(dir)) {
        if (!f.startsWith(".tmp-")) continue;
        const p = report("temp-file", join(dir, f), `Temporary file "${join(dir, f)}" left by an interrupted write`, "garbage");
        if (exclusive) await tryRepair(p, () => rm(join(dir, f), { force: true }));
      }
      continue;
    }
    const p = report("container-dir-orphan", dir, `Directory "${dir}" belongs to no container`, "garbage");
    // Never rm -r through a mount: a leftover rootfs mount would take image layers with it.
    if (exclusive && (await mountsUnder(dir)).length === 0) await tryRepair(p, () => rm(dir, { recursive: true, force: true }));
  }

  // ---- snapshots ----
  const all = snaps.list();
  const keys = new Map(all.map((s) => [s.key, s]));
  const parents = new Set(all.map((s) => s.parent).filter((p): p is string => p !== undefined));
  for (const s of all) {
    checked.snapshots++;
    if (s.parent !== undefined) {
      const p = keys.get(s.parent);
      if (!p) report("snapshot-parent-missing", s.key, `Snapshot "${s.key}": its parent "${s.parent}" is missing`);
      else if (p.kind !== "committed")
        report("snapshot-parent-invalid", s.key, `Snapshot "${s.key}": its parent "${s.parent}" is not committed`);
    }
    const dir = join(snaps.root, String(s.id));
    if (s.key.startsWith("extract-")) {
      const p = report("snapshot-extract", s.key, `Snapshot "${s.key}" is a leftover of an interrupted unpack`, "garbage");
      if (exclusive && !parents.has(s.key)) await tryRepair(p, () => snaps.remove(s.key));
      continue;
    }
    if (!(await exists(join(dir, "fs")))) {
      report("snapshot-dir-missing", s.key, `Snapshot "${s.key}": its directory "${dir}/fs" is missing`);
    }
    if (!keepSnapshots.has(s.key) && !images.leases.has(s.key) && !parents.has(s.key)) {
      const p = report("snapshot-unreferenced", s.key, `Snapshot "${s.key}" is used by no image or container`, "garbage");
      afterGc.push({ problem: p, gone: async () => snaps.stat(s.key) === undefined });
    }
  }
  for (const dir of await snaps.orphanDirs()) {
    const p = report("snapshot-orphan-dir", dir, `Directory "${dir}" belongs to no snapshot`, "garbage");
    if (exclusive && (await mountsUnder(dir)).length === 0) await tryRepair(p, () => rm(dir, { recursive: true, force: true }));
    else afterGc.push({ problem: p, gone: async () => !(await exists(dir)) });
  }

  // ---- ingests and temp files ----
  for (const i of await content.ingests()) {
    const temp = i.ref.startsWith("tmp-") || i.ref.startsWith("put-");
    if (!temp && i.ageMs <= DAY_MS) continue; // a resumable partial download
    const p = report(
      "ingest-stale",
      i.ref,
      `Ingest "${i.ref}" (${i.size} bytes) is ${temp ? "a temporary spool" : "older than a day"} left by an interrupted write`,
      "garbage",
    );
    if (exclusive) await tryRepair(p, () => content.abortIngest(i.ref));
  }
  for (const dir of [daemon.config.dataRoot, content.root, snaps.root]) {
    for (const f of await names(dir)) {
      if (!f.startsWith(".tmp-")) continue;
      const p = report("temp-file", join(dir, f), `Temporary file "${join(dir, f)}" left by an interrupted write`, "garbage");
      if (exclusive) await tryRepair(p, () => rm(join(dir, f), { recursive: true, force: true }));
    }
  }

  // ---- blobs nothing references ----
  const referenced = store.referencedBlobs();
  for (const d of blobs.keys()) {
    if (referenced.has(d) || images.leases.has(d)) continue;
    const p = report("blob-unreferenced", d, `Blob "${d}" is referenced by no image`, "garbage");
    afterGc.push({ problem: p, gone: async () => !(await content.has(parseDigest(d))) });
  }

  let gc: CheckReport["gc"];
  if (repair) {
    checkAbort();
    gc = await daemon.gc();
    for (const { problem, gone } of afterGc) if (!problem.repaired && (await gone())) problem.repaired = true;
  }
  const ok = problems.every((p) => p.severity !== "error" || p.repaired);
  return gc ? { ok, checked, problems, gc } : { ok, checked, problems };
}
