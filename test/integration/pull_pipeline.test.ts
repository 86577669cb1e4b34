/**
 * Pull pipelining through a real Daemon (RealHost, overlay snapshots, as root) against an
 * in-process registry: layers are unpacked while the pull goes on, the bottom layer straight
 * from its download. Its snapshot must never be committed from bytes that fail the blob's
 * digest, a download that restarts falls back to the store, and a failed pull leaves nothing.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { gzipSync } from "node:zlib";
import { encodeHeader, END_OF_ARCHIVE, padding } from "../../src/archive/mod.ts";
import { type Digest, nullLogger, RealHost, sha256 } from "../../src/base/mod.ts";
import { checkStore, Daemon, defaultConfig } from "../../src/daemon/mod.ts";
import { type Descriptor, MediaType } from "../../src/oci/mod.ts";
import { FakeRegistry } from "../../src/registry/mod.ts";

const base = `/var/tmp/berth-pipeline-${process.pid}`;
const skip = process.getuid?.() !== 0 ? "needs root" : false;

let daemon: Daemon;
let reg: FakeRegistry;

before(async () => {
  if (skip) return;
  rmSync(base, { recursive: true, force: true });
  reg = await FakeRegistry.start();
  const cfg = defaultConfig();
  cfg.dataRoot = `${base}/data`;
  cfg.execRoot = `${base}/exec`;
  cfg.insecureRegistries = [reg.host];
  daemon = await Daemon.open(cfg, nullLogger, new RealHost());
});

after(async () => {
  if (skip) return;
  await daemon?.registry.close().catch(() => {});
  daemon?.close();
  await reg?.stop();
  rmSync(base, { recursive: true, force: true });
});

/** A layer tar of regular files (directories made implicitly by the unpacker). */
function tar(files: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, body] of Object.entries(files)) {
    const data = Buffer.from(body);
    parts.push(encodeHeader({ name, type: "file", mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 1_600_000_000 }));
    parts.push(data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

/** Puts an image of gzip layers under `repo:latest`; returns its layer descriptors and blobs. */
function image(repo: string, tars: Buffer[]): { layers: Descriptor[]; blobs: Buffer[] } {
  const blobs = tars.map((t) => gzipSync(t, { level: 6 }));
  const layers = blobs.map((b) => reg.addBlob(repo, b, MediaType.OciLayerGzip));
  const cfg = Buffer.from(
    JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: tars.map((t) => sha256(t)) } }),
  );
  const config = reg.addBlob(repo, cfg, MediaType.OciConfig);
  reg.addManifest(
    repo,
    "latest",
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers })),
    MediaType.OciManifest,
  );
  return { layers, blobs };
}

/** Records, per layer digest, whether each unpack read the download (true) or the store (false). */
function spyUnpacks(): { calls: Map<string, boolean[]>; restore: () => void } {
  const unpacker = daemon.images.unpacker;
  const orig = unpacker.unpack;
  const calls = new Map<string, boolean[]>();
  unpacker.unpack = function (this: typeof unpacker, layer, diffId, chainId, parent, options = {}) {
    calls.set(layer.digest, [...(calls.get(layer.digest) ?? []), options.stream !== undefined]);
    return orig.call(this, layer, diffId, chainId, parent, options);
  };
  return { calls, restore: () => (unpacker.unpack = orig) };
}

async function pull(repo: string, progress: (m: Record<string, unknown>) => void = () => {}): Promise<void> {
  await daemon.images.pull(`${reg.host}/${repo}:latest`, { progress });
}

async function assertEmptyAfterGc(): Promise<void> {
  await daemon.gc();
  const blobs: string[] = [];
  for await (const b of daemon.content.list()) blobs.push(b.digest);
  assert.deepEqual(blobs, []);
  assert.deepEqual(daemon.snapshots.list(), []);
  assert.deepEqual(await daemon.content.ingests(), []);
  assert.equal((await checkStore(daemon, { repair: false })).ok, true);
}

test("a multi-layer pull unpacks every layer, the bottom one from its download", { skip }, async () => {
  const big = Buffer.alloc(3 * 1024 * 1024, "x");
  const { layers } = image("multi", [
    tar({ "etc/one": "1\n", "usr/big": big }),
    tar({ "etc/two": "2\n" }),
    tar({ "etc/three": "3\n", "etc/one": "1 again\n" }),
  ]);
  const spy = spyUnpacks();
  const events: Record<string, unknown>[] = [];
  try {
    await pull("multi", (m) => events.push(m));
  } finally {
    spy.restore();
  }
  assert.deepEqual(spy.calls.get(layers[0]?.digest ?? ""), [true], "layer 0 streamed");
  const img = daemon.images.store.mustResolve(`${reg.host}/multi:latest`);
  const top = await daemon.images.topChainId(img);
  assert.ok(top);
  const dirs = daemon.snapshots.chainDirs(top);
  assert.equal(dirs.length, 3);
  const read = (p: string) => {
    for (const d of dirs) {
      try {
        return readFileSync(join(d, p), "utf8");
      } catch {}
    }
    return undefined;
  };
  assert.equal(read("etc/one"), "1 again\n");
  assert.equal(read("etc/two"), "2\n");
  assert.equal(read("etc/three"), "3\n");
  const ids = layers.map((l) => l.digest.slice(7, 19));
  for (const id of ids) {
    const mine = events.filter((e) => e.id === id).map((e) => e.status);
    assert.equal(mine.filter((s) => s === "Pull complete").length, 1, `${id}: ${mine.join(", ")}`);
    assert.ok(mine.indexOf("Download complete") < mine.indexOf("Pull complete"), `${id}: ${mine.join(", ")}`);
  }
  assert.equal((await checkStore(daemon, { repair: false })).ok, true);
  // An image sharing the bottom layer: that one "Already exists", with no "Pull complete" after it.
  image("shares", [tar({ "etc/one": "1\n", "usr/big": big }), tar({ "etc/four": "4\n" })]);
  const again: Record<string, unknown>[] = [];
  await pull("shares", (m) => again.push(m));
  const shared = again.filter((e) => e.id === ids[0]).map((e) => e.status);
  assert.deepEqual(shared, ["Already exists"]);
  await daemon.images.remove(`${reg.host}/shares:latest`);
  await daemon.images.remove(`${reg.host}/multi:latest`);
  await assertEmptyAfterGc();
});

test("a blob that fails its digest but unpacks to the right diff ID commits no snapshot", { skip }, async () => {
  // The same tar recompressed: the diff ID still matches, the blob digest does not.
  const t = tar({ "etc/evil": "recompressed\n", "usr/pad": Buffer.alloc(512 * 1024, "p") });
  const { layers, blobs } = image("recompressed", [t]);
  const evil = Buffer.from(blobs[0] as Buffer);
  evil[9] = (evil[9] ?? 0) ^ 0x01; // the gzip header's OS byte: same size, same content
  reg.blobs.set(layers[0]?.digest as Digest, evil);
  const spy = spyUnpacks();
  try {
    await assert.rejects(pull("recompressed"), /[Dd]igest/);
  } finally {
    spy.restore();
  }
  assert.deepEqual(spy.calls.get(layers[0]?.digest ?? ""), [true], "it was unpacked from the download, then dropped");
  assert.equal(daemon.images.store.resolve(`${reg.host}/recompressed:latest`), undefined);
  await assertEmptyAfterGc();
});

test("a download that restarts from byte 0 falls back to unpacking from the store", { skip }, async () => {
  const t = tar({ "etc/restart": "ok\n", "usr/pad": Buffer.from(Array.from({ length: 400_000 }, (_, i) => i % 251)) });
  const { layers, blobs } = image("restart", [t]);
  const digest = layers[0]?.digest as string;
  const good = blobs[0] as Buffer;
  let gets = 0;
  reg.intercept = (req, res) => {
    if (req.method !== "GET" || !req.url?.endsWith(`/blobs/${digest}`)) return false;
    gets++;
    res.writeHead(200, { "content-length": String(good.length) });
    if (gets === 1) {
      // Part of the body, then the connection drops; the retry's Range is then ignored.
      res.write(good.subarray(0, Math.floor(good.length / 2)));
      setTimeout(() => res.destroy(), 20);
    } else res.end(good);
    return true;
  };
  const spy = spyUnpacks();
  try {
    await pull("restart");
  } finally {
    spy.restore();
    reg.intercept = undefined;
  }
  assert.ok(gets >= 2);
  assert.deepEqual(spy.calls.get(digest), [true, false], "streamed, then from the store");
  const img = daemon.images.store.mustResolve(`${reg.host}/restart:latest`);
  const top = await daemon.images.topChainId(img);
  assert.ok(top);
  assert.equal(readFileSync(join(daemon.snapshots.dir(top), "etc/restart"), "utf8"), "ok\n");
  await daemon.images.remove(`${reg.host}/restart:latest`);
  await assertEmptyAfterGc();
});

test("two pulls of the same image at once share the work", { skip }, async () => {
  image("twice", [tar({ "a/b": "x\n" }), tar({ "a/c": "y\n" })]);
  await Promise.all([pull("twice"), pull("twice")]);
  const img = daemon.images.store.mustResolve(`${reg.host}/twice:latest`);
  const top = await daemon.images.topChainId(img);
  assert.ok(top && daemon.images.unpacker.has(top));
  assert.equal((await checkStore(daemon, { repair: false })).ok, true);
  await daemon.images.remove(`${reg.host}/twice:latest`);
  await assertEmptyAfterGc();
});
