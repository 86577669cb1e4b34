/**
 * Hostile registries and layers (SECURITY.md 1-16): crafted manifests, configs and layer tars
 * served by an in-process evil registry are pulled through a real Daemon (RealHost, overlay
 * snapshots, as root). Every case either fails with a clear error and leaves the store exactly
 * as it was (after GC: same blobs, snapshots, images and names, no ingest, no `extract-*`,
 * and `checkStore` says ok), or is provably contained (what it aims outside lands inside the
 * snapshot). Nothing outside the data root changes: a sentinel directory is hashed before and
 * after, and the /tmp paths the payloads aim at must not appear. After every case the same
 * daemon still pulls a normal image.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { gzipSync } from "node:zlib";
import { type Digest, messageOf, nullLogger, RealHost } from "../../src/base/mod.ts";
import { checkStore, Daemon, defaultConfig } from "../../src/daemon/mod.ts";
import { MediaType } from "../../src/oci/mod.ts";
import { FakeRegistry } from "../../src/registry/mod.ts";

const base = `/var/tmp/berth-hostile-${process.pid}`;
const outside = `${base}/outside`;
const tmpTarget = `/tmp/berth-hostile-pwned-${process.pid}`;
const skip = process.getuid?.() !== 0 ? "needs root" : false;
const MAX_LAYER = 8 * 1024 * 1024;

// ---- tar and image builders ----

interface Entry {
  name: string;
  type?: "file" | "dir" | "symlink" | "link";
  body?: string | Buffer;
  linkname?: string;
  mode?: number;
}

function octal(n: number, len: number): string {
  return `${n.toString(8).padStart(len - 1, "0")}\0`;
}

/** A ustar archive written by hand, so that names are exactly what a hostile layer would carry. */
function tar(entries: Entry[], options: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.type === undefined || e.type === "file" ? Buffer.from(e.body ?? "") : Buffer.alloc(0);
    const h = Buffer.alloc(512);
    let name = e.name;
    let prefix = "";
    if (Buffer.byteLength(name) > 100) {
      const i = name.lastIndexOf("/", name.length - 2);
      prefix = name.slice(0, i);
      name = name.slice(i + 1);
    }
    h.write(name, 0, 100);
    h.write(octal(e.mode ?? (e.type === "dir" ? 0o755 : 0o644), 8), 100);
    h.write(octal(0, 8), 108);
    h.write(octal(0, 8), 116);
    h.write(octal(body.length, 12), 124);
    h.write(octal(1700000000, 12), 136);
    h.write({ file: "0", dir: "5", symlink: "2", link: "1" }[e.type ?? "file"], 156);
    h.write(e.linkname ?? "", 157, 100);
    h.write("ustar\0", 257);
    h.write("00", 263);
    h.write(prefix, 345, 155);
    h.fill(" ", 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    parts.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  if (options.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function sha(b: Uint8Array): Digest {
  return `sha256:${createHash("sha256").update(b).digest("hex")}` as Digest;
}

interface Built {
  layers: { mediaType: string; digest: string; size: number }[];
  config: { mediaType: string; digest: string; size: number };
  manifest: Record<string, unknown>;
}

/**
 * Adds an image to the registry: each tar is gzipped into a layer blob and its diff ID goes in
 * the config (unless `diffIds` lies); `mutate` may change the manifest (or return raw bytes).
 */
function addImage(
  reg: FakeRegistry,
  repo: string,
  tars: Buffer[],
  options: {
    blobs?: Buffer[];
    diffIds?: string[];
    config?: Buffer;
    mutate?: (b: Built) => unknown;
    contentType?: string;
  } = {},
): Built {
  const blobs = options.blobs ?? tars.map((t) => gzipSync(t));
  const layers = blobs.map((b) => reg.addBlob(repo, b, MediaType.OciLayerGzip));
  const cfg =
    options.config ??
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: { Cmd: ["sh"] },
        rootfs: { type: "layers", diff_ids: options.diffIds ?? tars.map((t) => sha(t)) },
      }),
    );
  const config = reg.addBlob(repo, cfg, MediaType.OciConfig);
  const built: Built = { layers, config, manifest: { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers } };
  const doc = options.mutate ? options.mutate(built) : built.manifest;
  reg.addManifest(repo, "latest", doc, options.contentType ?? MediaType.OciManifest);
  return built;
}

// ---- host state that must not change ----

function treeHash(dir: string): string {
  const h = createHash("sha256");
  const walk = (p: string) => {
    const st = lstatSync(p);
    h.update(`${p} ${st.mode} ${st.uid} ${st.gid} ${st.nlink}\n`);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n));
    else if (st.isSymbolicLink()) h.update(readlinkSync(p));
    else if (st.isFile()) h.update(readFileSync(p));
  };
  walk(dir);
  return h.digest("hex");
}

function makeSentinel(): void {
  mkdirSync(`${outside}/sub`, { recursive: true });
  writeFileSync(`${outside}/secret`, "sentinel secret\n");
  writeFileSync(`${outside}/sub/authorized_keys`, "ssh-ed25519 AAAA sentinel\n");
}

// ---- the daemon under attack ----

let daemon: Daemon;
let reg: FakeRegistry;
let sentinelHash = "";

before(async () => {
  if (skip) return;
  rmSync(base, { recursive: true, force: true });
  makeSentinel();
  sentinelHash = treeHash(outside);
  reg = await FakeRegistry.start();
  const cfg = defaultConfig();
  cfg.dataRoot = `${base}/data`;
  cfg.execRoot = `${base}/exec`;
  cfg.insecureRegistries = [reg.host];
  cfg.raw = { "max-layer-size": MAX_LAYER };
  daemon = await Daemon.open(cfg, nullLogger, new RealHost());
});

after(async () => {
  if (skip) return;
  await daemon?.registry.close().catch(() => {});
  daemon?.close();
  await reg?.stop();
  rmSync(base, { recursive: true, force: true });
  rmSync(tmpTarget, { recursive: true, force: true });
});

async function pull(repo: string, auth?: { username: string; password: string }): Promise<void> {
  await daemon.images.pull(`${reg.host}/${repo}:latest`, { progress: () => {}, ...(auth ? { auth } : {}) });
}

interface StoreState {
  blobs: string[];
  snapshots: string[];
  images: string[];
  names: string[];
  ingests: string[];
}

async function state(): Promise<StoreState> {
  const blobs: string[] = [];
  for await (const b of daemon.content.list()) blobs.push(b.digest);
  return {
    blobs: blobs.sort(),
    snapshots: daemon.snapshots
      .list()
      .map((s) => `${s.key} ${s.kind}`)
      .sort(),
    images: daemon.images.store
      .list()
      .map((i) => i.id)
      .sort(),
    names: daemon.images.store
      .names()
      .map((n) => n.name)
      .sort(),
    ingests: (await daemon.content.ingests()).map((i) => i.ref).sort(),
  };
}

function assertHostUntouched(what: string): void {
  assert.equal(treeHash(outside), sentinelHash, `${what}: the sentinel directory outside the data root changed`);
  assert.ok(!existsSync(tmpTarget), `${what}: ${tmpTarget} was created`);
  for (const p of ["/dotdot-pwned", "/abs-pwned", "/through-pwned"]) assert.ok(!existsSync(p), `${what}: ${p} was created`);
}

let goodCount = 0;

/** The daemon still pulls and unpacks a normal image; then it goes again. */
async function assertStillWorks(what: string): Promise<void> {
  const repo = `good/${++goodCount}`;
  addImage(reg, repo, [
    tar([
      { name: "etc/", type: "dir" },
      { name: "etc/good", body: `good ${goodCount}\n` },
    ]),
  ]);
  await pull(repo).catch((e: unknown) => assert.fail(`${what}: a normal pull afterwards failed: ${messageOf(e)}`));
  const img = daemon.images.store.resolve(`${reg.host}/${repo}:latest`);
  assert.ok(img, `${what}: the normal image is in the store`);
  await daemon.images.remove(`${reg.host}/${repo}:latest`);
  await daemon.gc();
}

/** Pulls `repo`, expects `message`, and checks that nothing changed. */
async function rejected(what: string, repo: string, message: RegExp, options: { auth?: { username: string; password: string } } = {}) {
  const before = await state();
  await assert.rejects(pull(repo, options.auth), (e: unknown) => {
    if (process.env.BERTH_HOSTILE_DEBUG) process.stderr.write(`${what}: ${messageOf(e)}\n`);
    assert.match(messageOf(e), message, `${what}: unexpected error`);
    return true;
  });
  await daemon.gc();
  assert.deepEqual(await state(), before, `${what}: the store changed`);
  const report = await checkStore(daemon, { repair: false });
  assert.deepEqual(
    report.problems.filter((p) => p.severity === "error"),
    [],
    `${what}: the store check found problems`,
  );
  assertHostUntouched(what);
  await assertStillWorks(what);
}

/** Pulls `repo`, which must succeed with its effects inside the snapshot; `inside` checks them. */
async function contained(what: string, repo: string, inside: (topDir: string) => void, auth?: { username: string; password: string }) {
  await pull(repo, auth);
  const name = `${reg.host}/${repo}:latest`;
  const img = daemon.images.store.mustResolve(name);
  const top = await daemon.images.topChainId(img);
  assert.ok(top);
  inside(daemon.snapshots.dir(top));
  assertHostUntouched(what);
  assert.equal((await checkStore(daemon, { repair: false })).ok, true);
  await daemon.images.remove(name);
  await daemon.gc();
  await assertStillWorks(what);
}

const climb = "../".repeat(24);
/** Shorter, for link targets (100 bytes in a ustar header); still far above any root. */
const linkClimb = "../".repeat(12);
const rel = outside.slice(1); // the sentinel path without its leading slash

// ---- layers that must be rejected ----

test("layer entry climbing out with ../ is rejected", { skip }, async () => {
  addImage(reg, "evil/dotdot", [
    tar([
      { name: `${climb}${rel}/dotdot-pwned`, body: "x" },
      { name: `${climb}dotdot-pwned`, body: "x" },
    ]),
  ]);
  await rejected("dotdot", "evil/dotdot", /Cannot unpack layer "sha256:[a-f0-9]{64}": entry "\.\.\/.*": path escapes the root/);
});

test("hard link to ../outside is rejected", { skip }, async () => {
  addImage(reg, "evil/hardlink-dotdot", [
    tar([
      { name: "a", body: "a" },
      { name: "b", type: "link", linkname: `${linkClimb}${rel}/secret` },
    ]),
  ]);
  await rejected("hardlink-dotdot", "evil/hardlink-dotdot", /hard link target ".*secret" escapes the root/);
});

test("hard link to an absolute path outside resolves inside the root (and is missing there)", { skip }, async () => {
  addImage(reg, "evil/hardlink-abs", [tar([{ name: "c", type: "link", linkname: `${outside}/secret` }])]);
  await rejected("hardlink-abs", "evil/hardlink-abs", /hard link target ".*\/outside\/secret" does not exist/);
});

test("hard link through a symlink to outside then a write through it is contained or rejected", { skip }, async () => {
  // d -> /outside (absolute); e is a hard link to d/secret: resolves to <root>/outside/secret.
  addImage(reg, "evil/hardlink-symlink", [
    tar([
      { name: "d", type: "symlink", linkname: outside },
      { name: "e", type: "link", linkname: "d/secret" },
    ]),
  ]);
  await rejected("hardlink-symlink", "evil/hardlink-symlink", /hard link target "d\/secret" does not exist/);
});

test("whiteout naming a path outside is rejected", { skip }, async () => {
  addImage(reg, "evil/whiteout-dotdot", [tar([{ name: `${climb}${rel}/.wh.secret`, body: "" }])]);
  await rejected("whiteout-dotdot", "evil/whiteout-dotdot", /path escapes the root/);
});

test('whiteout named ".wh.." is rejected', { skip }, async () => {
  addImage(reg, "evil/whiteout-dots", [
    tar([
      { name: "x/", type: "dir" },
      { name: "x/.wh..", body: "" },
    ]),
  ]);
  await rejected("whiteout-dots", "evil/whiteout-dots", /invalid whiteout name/);
});

test("gzip bomb over the layer size cap is rejected", { skip }, async () => {
  const big = Buffer.alloc(4 * MAX_LAYER);
  const t = tar([{ name: "bomb", body: big }]);
  const blob = gzipSync(t, { level: 9 });
  assert.ok(blob.length < 200 * 1024, "the bomb is small");
  addImage(reg, "evil/bomb", [t], { blobs: [blob] });
  await rejected("bomb", "evil/bomb", new RegExp(`larger than the limit of ${MAX_LAYER} bytes uncompressed`));
});

test("a layer that is not a tar is rejected", { skip }, async () => {
  const junk = Buffer.from("this is not a tar archive, just text pretending to be a layer\n".repeat(40));
  addImage(reg, "evil/not-tar", [junk]);
  await rejected("not-tar", "evil/not-tar", /Cannot unpack layer "sha256:[a-f0-9]{64}": not a tar archive/);
});

test("a truncated gzip stream is rejected", { skip }, async () => {
  const t = tar([{ name: "f", body: createHash("sha512").update("x").digest().toString("hex").repeat(200) }]);
  const gz = gzipSync(t);
  addImage(reg, "evil/truncated-gzip", [t], { blobs: [gz.subarray(0, gz.length - 40)] });
  await rejected("truncated-gzip", "evil/truncated-gzip", /Cannot unpack layer "sha256:[a-f0-9]{64}": .*unexpected end of file/);
});

test("a truncated tar (entry cut short, no end blocks) is rejected", { skip }, async () => {
  const full = tar([{ name: "f", body: "y".repeat(5000) }], { end: false });
  const t = full.subarray(0, 512 + 1000);
  addImage(reg, "evil/truncated-tar", [t]);
  await rejected("truncated-tar", "evil/truncated-tar", /Cannot unpack layer "sha256:[a-f0-9]{64}": .*truncated/);
});

test("a diff ID that does not match the layer is rejected", { skip }, async () => {
  const t = tar([{ name: "f", body: "diff id test" }]);
  addImage(reg, "evil/diffid", [t], { diffIds: [sha(Buffer.from("something else"))] });
  await rejected("diffid", "evil/diffid", /its content hashes to "sha256:[a-f0-9]{64}", but the image config says "sha256:[a-f0-9]{64}"/);
});

// ---- registry answers that must be rejected ----

test("a blob whose content does not match its digest is rejected", { skip }, async () => {
  const t = tar([{ name: "f", body: "tampered" }]);
  const b = addImage(reg, "evil/tampered", [t]);
  const d = b.layers[0]?.digest as Digest;
  const real = reg.blobs.get(d) ?? Buffer.alloc(0);
  const evil = Buffer.from(real);
  evil[evil.length - 5] = (evil[evil.length - 5] ?? 0) ^ 0xff;
  reg.blobs.set(d, evil);
  await rejected("tampered", "evil/tampered", /Digest mismatch for blob "sha256:[a-f0-9]{64}": content hashes to "sha256:[a-f0-9]{64}"/);
});

test("a descriptor size smaller than the blob is rejected", { skip }, async () => {
  const t = tar([{ name: "f", body: "size lie ".repeat(500) }]);
  addImage(reg, "evil/size-lie", [t], {
    mutate: (b) => ({ ...b.manifest, layers: b.layers.map((l) => ({ ...l, size: l.size - 10 })) }),
  });
  await rejected("size-lie", "evil/size-lie", /larger than its declared size/);
});

test("a manifest naming a blob the registry does not have is rejected", { skip }, async () => {
  const t = tar([{ name: "f", body: "missing" }]);
  addImage(reg, "evil/missing-blob", [t], {
    mutate: (b) => ({ ...b.manifest, layers: [{ mediaType: MediaType.OciLayerGzip, digest: sha(Buffer.from("nowhere")), size: 7 }] }),
  });
  await rejected("missing-blob", "evil/missing-blob", /blob unknown to registry/);
});

test("a manifest with more layers than the limit is rejected", { skip }, async () => {
  const t = tar([{ name: "f", body: "many" }]);
  addImage(reg, "evil/many-layers", [t], {
    mutate: (b) => ({ ...b.manifest, layers: Array.from({ length: 100_000 }, () => b.layers[0]) }),
  });
  await rejected("many-layers", "evil/many-layers", /more than 500 layers|is larger than 4194304 bytes/);
});

test("a manifest with 501 layers is rejected before any download", { skip }, async () => {
  const t = tar([{ name: "f", body: "five hundred and one" }]);
  const n = reg.requests.length;
  addImage(reg, "evil/501-layers", [t], {
    mutate: (b) => ({ ...b.manifest, layers: Array.from({ length: 501 }, () => b.layers[0]) }),
  });
  await rejected("501-layers", "evil/501-layers", /Invalid manifest: more than 500 layers/);
  const blobGets = reg.requests.slice(n).filter((r) => r.method === "GET" && r.url.includes("/evil/501-layers/blobs/"));
  assert.deepEqual(blobGets, [], "nothing was downloaded");
});

test("a manifest with duplicate keys is rejected", { skip }, async () => {
  const t = tar([{ name: "f", body: "dup" }]);
  addImage(reg, "evil/dup-keys", [t], {
    mutate: (b) => {
      const m = JSON.stringify(b.manifest);
      // Two "layers" keys: parsers disagree about which one wins.
      return Buffer.from(`${m.slice(0, -1)},"layers":[]}`);
    },
  });
  await rejected("dup-keys", "evil/dup-keys", /duplicate key "layers"/);
});

test("a manifest with both layers and manifests is rejected", { skip }, async () => {
  const t = tar([{ name: "f", body: "both" }]);
  addImage(reg, "evil/both", [t], { mutate: (b) => ({ ...b.manifest, manifests: [] }) });
  await rejected("both", "evil/both", /has both "manifests" and "layers"/);
});

test("a manifest whose mediaType disagrees with its Content-Type is rejected", { skip }, async () => {
  const t = tar([{ name: "f", body: "media" }]);
  addImage(reg, "evil/media", [t], { contentType: MediaType.DockerManifest });
  await rejected("media", "evil/media", /mediaType ".*" does not match Content-Type ".*"/);
});

test("a manifest over 4 MiB is rejected", { skip }, async () => {
  const t = tar([{ name: "f", body: "huge" }]);
  addImage(reg, "evil/huge-manifest", [t], {
    mutate: (b) => ({ ...b.manifest, annotations: { pad: "x".repeat(5 * 1024 * 1024) } }),
  });
  await rejected("huge-manifest", "evil/huge-manifest", /is larger than 4194304 bytes/);
});

test("a layer digest with a path in it is rejected before any path join or request", { skip }, async () => {
  const t = tar([{ name: "f", body: "bad digest" }]);
  addImage(reg, "evil/bad-digest", [t], {
    mutate: (b) => ({ ...b.manifest, layers: [{ mediaType: MediaType.OciLayerGzip, digest: "sha256:../../../../etc/passwd", size: 10 }] }),
  });
  await rejected("bad-digest", "evil/bad-digest", /bad digest "sha256:\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd"/);
});

test("a config that lists fewer diff IDs than layers is rejected", { skip }, async () => {
  const t1 = tar([{ name: "f1", body: "one" }]);
  const t2 = tar([{ name: "f2", body: "two" }]);
  addImage(reg, "evil/count", [t1, t2], { diffIds: [sha(t1)] });
  await rejected("count", "evil/count", /2 layers in the manifest but 1 diff_ids in the config/);
});

test("a config that is not JSON is rejected", { skip }, async () => {
  const t = tar([{ name: "f", body: "config" }]);
  addImage(reg, "evil/bad-config", [t], { config: Buffer.from("not json at all") });
  await rejected("bad-config", "evil/bad-config", /Invalid image config/);
});

// ---- layers whose effect must stay inside the root ----

test("absolute entry names land inside the root", { skip }, async () => {
  addImage(reg, "evil/absolute", [
    tar([
      { name: `${outside}/abs-pwned`, body: "abs" },
      { name: "/abs-pwned", body: "abs" },
    ]),
  ]);
  await contained("absolute", "evil/absolute", (top) => {
    assert.equal(readFileSync(`${top}${outside}/abs-pwned`, "utf8"), "abs");
    assert.equal(readFileSync(`${top}/abs-pwned`, "utf8"), "abs");
  });
});

test("a symlink to outside then a write through it in the same layer stays inside", { skip }, async () => {
  addImage(reg, "evil/symlink-same", [
    tar([
      { name: "esc", type: "symlink", linkname: outside },
      { name: "esc/through-pwned", body: "through" },
      { name: "rel", type: "symlink", linkname: `${linkClimb}${rel}/sub` },
      { name: "rel/authorized_keys", body: "ssh-rsa attacker\n" },
      { name: "t", type: "symlink", linkname: "/tmp" },
      { name: `t/berth-hostile-pwned-${process.pid}`, body: "tmp" },
    ]),
  ]);
  await contained("symlink-same", "evil/symlink-same", (top) => {
    assert.equal(readlinkSync(`${top}/esc`), outside);
    assert.equal(readFileSync(`${top}${outside}/through-pwned`, "utf8"), "through");
    assert.equal(readFileSync(`${top}${outside}/sub/authorized_keys`, "utf8"), "ssh-rsa attacker\n");
    assert.equal(readFileSync(`${top}${tmpTarget}`, "utf8"), "tmp");
  });
});

test("a symlink in one layer and a write through it in the next stay inside (CVE-2025-45582)", { skip }, async () => {
  addImage(reg, "evil/symlink-across", [
    tar([{ name: "x", type: "symlink", linkname: `${outside}/sub` }]),
    tar([{ name: "x/authorized_keys", body: "ssh-rsa attacker across\n" }]),
  ]);
  await contained("symlink-across", "evil/symlink-across", (top) => {
    assert.equal(readFileSync(`${top}${outside}/sub/authorized_keys`, "utf8"), "ssh-rsa attacker across\n");
  });
});

test("a whiteout under a symlinked parent removes nothing outside", { skip }, async () => {
  addImage(reg, "evil/whiteout-symlink", [
    tar([{ name: "y", type: "symlink", linkname: outside }]),
    tar([
      { name: "y/.wh.secret", body: "" },
      { name: "y/sub/.wh..wh..opq", body: "" },
    ]),
  ]);
  await contained("whiteout-symlink", "evil/whiteout-symlink", () => {});
});

// ---- credentials ----

test("a redirect to another host carries no Authorization", { skip }, async () => {
  const other: IncomingHttpHeaders[] = [];
  const blobBytes = new Map<string, Buffer>();
  const storage: Server = createServer((req, res) => {
    other.push(req.headers);
    const b = blobBytes.get(req.url?.slice(1) ?? "");
    if (!b) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-length": String(b.length) });
    res.end(b);
  });
  await new Promise<void>((r) => storage.listen(0, "127.0.0.1", r));
  const port = (storage.address() as AddressInfo).port;
  const secure = await FakeRegistry.start({ auth: { kind: "basic", users: { alice: "s3cret" } } });
  try {
    const t = tar([{ name: "f", body: "redirected" }]);
    const built = addImage(secure, "priv/app", [t]);
    for (const l of built.layers) blobBytes.set(l.digest, secure.blobs.get(l.digest as Digest) ?? Buffer.alloc(0));
    secure.intercept = (req, res) => {
      const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? "");
      if (req.method === "GET" && m?.[1] && blobBytes.has(m[1])) {
        res.writeHead(307, { location: `http://127.0.0.1:${port}/${m[1]}` }).end();
        return true;
      }
      return false;
    };
    const name = `${secure.host}/priv/app:latest`;
    // The daemon trusts this registry over HTTP only through insecure-registries; loopback is allowed.
    await daemon.images.pull(name, { progress: () => {}, auth: { username: "alice", password: "s3cret" } });
    assert.ok(other.length > 0, "the blob came from the other host");
    for (const h of other) {
      assert.equal(h.authorization, undefined, "the other host saw Authorization");
      assert.equal(h["proxy-authorization"], undefined);
      assert.equal(h.cookie, undefined);
    }
    assert.ok(
      secure.requests.some((r) => typeof r.headers.authorization === "string"),
      "the registry itself got credentials",
    );
    assertHostUntouched("redirect");
    await daemon.images.remove(name);
    await daemon.gc();
  } finally {
    secure.intercept = undefined;
    await secure.stop();
    storage.closeAllConnections();
    await new Promise<void>((r) => storage.close(() => r()));
  }
  await assertStillWorks("redirect");
});

test("after all attacks the store verifies and holds nothing of them", { skip }, async () => {
  await daemon.gc();
  const s = await state();
  assert.deepEqual(s.images, []);
  assert.deepEqual(s.snapshots, []);
  assert.deepEqual(s.blobs, []);
  assert.deepEqual(s.ingests, []);
  const report = await checkStore(daemon, { repair: false });
  assert.equal(report.ok, true, JSON.stringify(report.problems));
  assertHostUntouched("end");
});
