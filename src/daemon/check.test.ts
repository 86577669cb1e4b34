import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { gzipSync } from "node:zlib";
import { type Digest, FakeHost, nullLogger, sha256 } from "../base/mod.ts";
import { MediaType } from "../oci/mod.ts";
import { chainIds } from "../snapshot/mod.ts";
import { type CheckReport, checkStore } from "./check.ts";
import { defaultConfig } from "./config.ts";
import { Daemon } from "./daemon.ts";

/** A one-file ustar layer. */
function layerTar(name: string, body: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write("0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write(`${body.length.toString(8).padStart(11, "0")}\0`, 124);
  h.write("00000000000\0", 136);
  h.write("0", 156);
  h.write("ustar\0", 257);
  h.write("00", 263);
  h.fill(" ", 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const data = Buffer.alloc(Math.ceil(body.length / 512) * 512);
  data.write(body);
  return Buffer.concat([h, data, Buffer.alloc(1024)]);
}

let dir: string;
let daemon: Daemon;

/** Stores an image the way a pull does: blobs, unpacked layers, the image row and its name. */
async function addImage(name: string, body: string): Promise<{ id: Digest; layer: Digest; chain: Digest }> {
  const tar = layerTar("hello", body);
  const blob = gzipSync(tar);
  const layer = (await daemon.content.put(blob)).digest;
  const diffId = sha256(tar);
  const cfg = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [diffId] } }));
  const id = (await daemon.content.put(cfg)).digest;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: id, size: cfg.length },
      layers: [{ mediaType: MediaType.OciLayerGzip, digest: layer, size: blob.length }],
    }),
  );
  const manifestDigest = (await daemon.content.put(manifest)).digest;
  await daemon.images.unpackAll([{ mediaType: MediaType.OciLayerGzip, digest: layer, size: blob.length }], [diffId]);
  await daemon.images.record({ id, manifestDigest, manifestMediaType: MediaType.OciManifest, blobs: [id, manifestDigest, layer] }, [
    { name, kind: "tag" },
  ]);
  const chain = chainIds([diffId])[0] as Digest;
  return { id, layer, chain };
}

function kinds(r: CheckReport): string[] {
  return r.problems.map((p) => `${p.severity}:${p.kind}${p.repaired ? ":repaired" : ""}`).sort();
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "berth-check-"));
  const cfg = defaultConfig();
  cfg.dataRoot = join(dir, "data");
  cfg.execRoot = join(dir, "exec");
  daemon = await Daemon.open(cfg, nullLogger, new FakeHost());
});

after(() => {
  daemon.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a healthy store checks ok and counts what it checked", async () => {
  await addImage("docker.io/library/one:latest", "one");
  const r = await checkStore(daemon, { repair: false });
  assert.equal(r.ok, true, JSON.stringify(r.problems));
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.checked, { blobs: 3, images: 1, snapshots: 1, containers: 0 });
});

test("a corrupt blob is found; repair removes it and reports the image that needs it", async () => {
  const { layer } = await addImage("docker.io/library/two:latest", "two");
  appendFileSync(daemon.content.blobPath(layer), "garbage");
  const r = await checkStore(daemon, { repair: false });
  assert.equal(r.ok, false);
  assert.deepEqual(kinds(r), ["error:blob-corrupt", "error:image-blob-missing"]);
  assert.match(r.problems[0]?.message ?? "", /^Blob "sha256:[a-f0-9]{64}" is corrupt: its content hashes to "sha256:[a-f0-9]{64}"$/);
  const fixed = await checkStore(daemon, { repair: true, exclusive: true });
  assert.deepEqual(kinds(fixed), ["error:blob-corrupt:repaired", "error:image-blob-missing"]);
  assert.equal(fixed.ok, false, "an image without its layer blob stays a problem: only rmi can decide");
  assert.equal(existsSync(daemon.content.blobPath(layer)), false);
  await daemon.images.remove("docker.io/library/two:latest");
  await daemon.gc();
  assert.equal((await checkStore(daemon, { repair: false })).ok, true);
});

test("stray files in the blob directory are errors that repair removes", async () => {
  const stray = join(daemon.content.root, "blobs", "sha256", "not-a-digest");
  writeFileSync(stray, "x");
  const r = await checkStore(daemon, { repair: true });
  assert.deepEqual(kinds(r), ["error:blob-stray:repaired"]);
  assert.equal(r.ok, true);
  assert.equal(existsSync(stray), false);
});

test("a missing layer snapshot is unpacked again from its verified blob", async () => {
  const { chain } = await addImage("docker.io/library/three:latest", "three");
  await daemon.snapshots.remove(chain);
  const r = await checkStore(daemon, { repair: false });
  assert.deepEqual(kinds(r), ["error:image-snapshot-missing"]);
  const fixed = await checkStore(daemon, { repair: true });
  assert.deepEqual(kinds(fixed), ["error:image-snapshot-missing:repaired"]);
  assert.equal(fixed.ok, true);
  assert.equal(daemon.snapshots.stat(chain)?.kind, "committed");
  assert.equal((await checkStore(daemon, { repair: false })).problems.length, 0);
});

test("crash leftovers are garbage: reported, removed only when the store is exclusive", async () => {
  await daemon.snapshots.prepare("extract-deadbeef-0123", undefined, { "berth.extract": "1" });
  const orphan = join(daemon.snapshots.root, "999");
  mkdirSync(join(orphan, "fs"), { recursive: true });
  const ing = await daemon.content.ingest({ digest: sha256("partial") }, "tmp-1-2-x");
  await ing.write(Buffer.from("par"));
  await ing.close();
  writeFileSync(join(daemon.config.dataRoot, ".tmp-abc"), "x");
  const orphanContainer = join(daemon.config.dataRoot, "containers", "0123abcd");
  mkdirSync(orphanContainer, { recursive: true });
  const unreferenced = (await daemon.content.put(Buffer.from("nobody wants me"))).digest;

  const live = await checkStore(daemon, { repair: true });
  assert.equal(live.ok, true, "garbage does not make a store unhealthy");
  const expected = [
    "garbage:blob-unreferenced:repaired",
    "garbage:container-dir-orphan",
    "garbage:ingest-stale",
    "garbage:snapshot-extract",
    "garbage:snapshot-orphan-dir:repaired",
    "garbage:temp-file",
  ];
  assert.deepEqual(kinds(live), expected, "a live daemon's repair leaves what an operation in flight may own");
  assert.equal(existsSync(daemon.content.blobPath(unreferenced)), false, "GC ran");
  assert.ok(daemon.snapshots.stat("extract-deadbeef-0123"));

  const offline = await checkStore(daemon, { repair: true, exclusive: true });
  assert.deepEqual(kinds(offline), [
    "garbage:container-dir-orphan:repaired",
    "garbage:ingest-stale:repaired",
    "garbage:snapshot-extract:repaired",
    "garbage:temp-file:repaired",
  ]);
  assert.equal(daemon.snapshots.stat("extract-deadbeef-0123"), undefined);
  assert.equal(existsSync(orphanContainer), false);
  assert.deepEqual(await daemon.content.ingests(), []);
  assert.deepEqual((await checkStore(daemon, { repair: false })).problems, []);
});

test("an image whose blobs are not recorded for GC gets them recorded", async () => {
  const { id, layer } = await addImage("docker.io/library/four:latest", "four");
  daemon.db.run("DELETE FROM image_blobs WHERE image_id = ? AND digest = ?", id, layer);
  const r = await checkStore(daemon, { repair: true });
  assert.deepEqual(kinds(r), ["error:image-blob-unrecorded:repaired"]);
  assert.ok(daemon.images.store.referencedBlobs().has(layer));
  assert.equal(existsSync(daemon.content.blobPath(layer)), true, "GC kept the layer");
});

test("a check can be canceled", async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(checkStore(daemon, { repair: false, signal: ac.signal }), /canceled/);
});
