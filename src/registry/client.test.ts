import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { type Digest, isCanceled, isInvalidArgument, isNotFound, isUnauthorized, isUnavailable, sha256 } from "../base/mod.ts";
import { ContentStore } from "../content/mod.ts";
import { type Descriptor, MediaType, parseReference } from "../oci/mod.ts";
import { FakeRegistry, type ProgressEvent, RegistryClient, type RegistryClientOptions } from "./mod.ts";

let dir: string;
let store: ContentStore;
let reg: FakeRegistry;
let sleeps: number[];
const clients: RegistryClient[] = [];
const extra: FakeRegistry[] = [];

/** Docker Hub stands in as a closed local port: unit tests use no network. */
let deadHub: string;

function client(options: Partial<RegistryClientOptions> = {}): RegistryClient {
  const c = new RegistryClient({
    store,
    dockerHub: deadHub,
    retry: {
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    },
    ...options,
  });
  clients.push(c);
  return c;
}

async function another(options: Parameters<typeof FakeRegistry.start>[0] = {}): Promise<FakeRegistry> {
  const r = await FakeRegistry.start(options);
  extra.push(r);
  return r;
}

function ref(s: string) {
  return parseReference(s);
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-registry-"));
  store = new ContentStore(join(dir, "content"));
  await store.init();
  reg = await FakeRegistry.start();
  sleeps = [];
  const dead = await FakeRegistry.start();
  deadHub = dead.url;
  await dead.stop();
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const r of extra.splice(0)) await r.stop();
  await reg.stop();
  await rm(dir, { recursive: true, force: true });
});

async function ingestDirEmpty(): Promise<boolean> {
  return (await readdir(join(dir, "content", "ingest"))).length === 0;
}

describe("pull", () => {
  test("pulls an OCI image by tag into the content store", async () => {
    const img = reg.addImage("acc/app", "v1", [randomBytes(1000), randomBytes(2000)]);
    const events: ProgressEvent[] = [];
    const fetched: number[] = [];
    const got = await client().fetchImage(ref(`${reg.host}/acc/app:v1`), {
      onProgress: (e) => events.push(e),
      onLayerFetched: (i) => {
        fetched.push(i);
      },
    });
    assert.equal(got.digest, img.manifest.digest);
    assert.equal(got.manifestDigest, img.manifest.digest);
    assert.equal(got.indexDigest, undefined);
    assert.equal(got.mediaType, MediaType.OciManifest);
    assert.equal(got.configDigest, img.config.digest);
    assert.deepEqual(got.layers, img.layers);
    for (const d of [img.manifest.digest, img.config.digest, ...img.layers.map((l) => l.digest)]) assert.ok(await store.has(d), d);
    assert.deepEqual(fetched.sort(), [0, 1]);
    const ids = img.layers.map((l) => l.digest.slice(7, 19));
    assert.deepEqual(
      events.filter((e) => e.status === "Pulling fs layer").map((e) => e.id),
      ids,
    );
    assert.equal(events.filter((e) => e.status === "Download complete").length, 2);
    assert.ok(events.some((e) => e.status === "Downloading" && e.total === 2000));
    assert.ok(await ingestDirEmpty());

    // Second pull: everything exists.
    const again: ProgressEvent[] = [];
    await client().fetchImage(ref(`${reg.host}/acc/app:v1`), { onProgress: (e) => again.push(e) });
    assert.deepEqual(
      again.map((e) => e.status),
      ["Already exists", "Already exists"],
    );
  });

  test("pulls a Docker schema 2 image by digest", async () => {
    const img = reg.addImage("app", undefined, [randomBytes(100)], { mediaType: MediaType.DockerManifest });
    const got = await client().fetchImage(ref(`${reg.host}/app@${img.manifest.digest}`));
    assert.equal(got.digest, img.manifest.digest);
    assert.equal(got.mediaType, MediaType.DockerManifest);
  });

  test("chooses linux/amd64 from an index, or the asked platform", async () => {
    const arm = reg.addImage("multi", undefined, [randomBytes(10)], { architecture: "arm64", variant: "v8" });
    const amd = reg.addImage("multi", undefined, [randomBytes(10)]);
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        { ...arm.manifest, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
        { ...amd.manifest, platform: { os: "linux", architecture: "amd64" } },
        { mediaType: MediaType.OciManifest, digest: sha256("att"), size: 3, platform: { os: "unknown", architecture: "unknown" } },
      ],
    };
    const idx = reg.addManifest("multi", "latest", index, MediaType.OciIndex);
    const c = client();
    const got = await c.fetchImage(ref(`${reg.host}/multi`));
    assert.equal(got.indexDigest, idx.digest);
    assert.equal(got.digest, idx.digest);
    assert.equal(got.manifestDigest, amd.manifest.digest);
    assert.ok(await store.has(idx.digest));
    const a = await c.fetchImage(ref(`${reg.host}/multi`), { platform: "linux/arm64" });
    assert.equal(a.manifestDigest, arm.manifest.digest);
    await assert.rejects(c.fetchImage(ref(`${reg.host}/multi`), { platform: "linux/s390x" }), (e) => {
      assert.ok(isNotFound(e));
      assert.equal((e as Error).message, "no matching manifest for linux/s390x in the manifest list entries");
      return true;
    });
  });

  test("a single-platform image must match an explicit platform", async () => {
    reg.addImage("arm", "latest", [randomBytes(10)], { architecture: "arm64" });
    await assert.rejects(client().fetchImage(ref(`${reg.host}/arm`), { platform: "linux/amd64" }), /does not match the specified platform/);
  });

  test("unknown manifests and repositories get docker's wording", async () => {
    await assert.rejects(client().fetchImage(ref(`${reg.host}/acc/does-not-exist:nope`)), (e) => {
      assert.ok(isNotFound(e));
      assert.equal((e as Error).message, `manifest for ${reg.host}/acc/does-not-exist:nope not found: manifest unknown: manifest unknown`);
      return true;
    });
    await assert.rejects(client().headManifest(ref(`${reg.host}/acc/does-not-exist:nope`)), isNotFound);
  });

  test("headManifest resolves a tag cheaply", async () => {
    const img = reg.addImage("app", "v1", [randomBytes(10)]);
    const d = await client().headManifest(ref(`${reg.host}/app:v1`));
    assert.deepEqual(d, { mediaType: MediaType.OciManifest, digest: img.manifest.digest, size: img.manifest.size });
    assert.ok(reg.requests.some((r) => r.method === "HEAD" && r.url.endsWith("/manifests/v1")));
    assert.ok(!reg.requests.some((r) => r.method === "GET" && r.url.includes("/manifests/")));
  });

  test("listTags follows pagination", async () => {
    const img = reg.addImage("app", "a", [randomBytes(10)]);
    for (let i = 0; i < 25; i++) reg.addManifest("app", `t${String(i).padStart(2, "0")}`, img.manifestBytes, MediaType.OciManifest);
    reg.tagPageSize = 10;
    const tags = await client().listTags(ref(`${reg.host}/app`));
    assert.equal(tags.length, 26);
    assert.equal(new Set(tags).size, 26);
  });

  test("layers download at most maxConcurrentDownloads at a time, the rest wait", async () => {
    reg.addImage(
      "big",
      "latest",
      Array.from({ length: 8 }, () => randomBytes(5000)),
    );
    reg.blobDelayMs = 30;
    const events: ProgressEvent[] = [];
    await client({ maxConcurrentDownloads: 2 }).fetchImage(ref(`${reg.host}/big`), { onProgress: (e) => events.push(e) });
    assert.equal(reg.maxInflightBlobGets, 2);
    assert.equal(events.filter((e) => e.status === "Waiting").length, 6);
  });

  test("two pulls of one image at once download each layer once", async () => {
    const img = reg.addImage("app", "latest", [randomBytes(100_000), randomBytes(100_000)]);
    reg.blobDelayMs = 20;
    const c = client();
    const [a, b] = await Promise.all([c.fetchImage(ref(`${reg.host}/app`)), c.fetchImage(ref(`${reg.host}/app`))]);
    assert.equal(a.digest, b.digest);
    for (const l of img.layers) {
      assert.equal(reg.requests.filter((r) => r.method === "GET" && r.url.endsWith(`/blobs/${l.digest}`)).length, 1);
    }
  });

  test("an onLayerFetched failure fails the pull", async () => {
    reg.addImage("app", "latest", [randomBytes(10), randomBytes(10)]);
    await assert.rejects(
      client().fetchImage(ref(`${reg.host}/app`), {
        onLayerFetched: async () => {
          throw new Error("unpack failed");
        },
      }),
      /unpack failed/,
    );
  });

  test("onConfig comes before any layer; onLayerStream hands over the bytes, ending once the blob is committed", async () => {
    const blobs = [randomBytes(300_000), randomBytes(5000)];
    const img = reg.addImage("app", "latest", blobs);
    const order: string[] = [];
    const seen = new Map<number, Buffer>();
    const consumers: Promise<void>[] = [];
    await client().fetchImage(ref(`${reg.host}/app`), {
      onConfig: (config, layers, attempt) => {
        order.push("config");
        assert.equal(config.rootfs.diff_ids.length, 2);
        assert.deepEqual(layers, img.layers);
        assert.equal(attempt.aborted, false);
      },
      onLayerStream: (i, layer, body) => {
        order.push(`stream ${i}`);
        if (i !== 0) return false;
        consumers.push(
          (async () => {
            const parts: Buffer[] = [];
            for await (const c of body) parts.push(c);
            // The stream ends only after the blob is verified and in the store.
            assert.ok(await store.has(layer.digest));
            seen.set(i, Buffer.concat(parts));
          })(),
        );
        return true;
      },
      onLayerFetched: (i) => {
        order.push(`fetched ${i}`);
      },
    });
    await Promise.all(consumers);
    assert.equal(order[0], "config");
    assert.ok(order.includes("stream 0") && order.includes("stream 1"));
    assert.ok(order.indexOf("stream 0") < order.indexOf("fetched 0"));
    assert.deepEqual(seen.get(0), reg.blobs.get((img.layers[0] as Descriptor).digest));
    for (const l of img.layers) assert.ok(await store.has(l.digest));
  });

  test("a consumer that stops early does not hold the download back", async () => {
    const img = reg.addImage("app", "latest", [randomBytes(20 * 1024 * 1024)]);
    await client().fetchImage(ref(`${reg.host}/app`), {
      onLayerStream: (_i, _layer, body) => {
        void (async () => {
          for await (const _c of body) break;
        })();
        return true;
      },
    });
    assert.ok(await store.has((img.layers[0] as Descriptor).digest));
  });

  test("a consumer that never reads fails nothing when the stream is declined", async () => {
    const img = reg.addImage("app", "latest", [randomBytes(20 * 1024 * 1024)]);
    await client().fetchImage(ref(`${reg.host}/app`), { onLayerStream: () => false });
    assert.ok(await store.has((img.layers[0] as Descriptor).digest));
  });

  test("a tampered blob fails the stream at its end, and the pull", async () => {
    const img = reg.addImage("app", "latest", [randomBytes(100_000)]);
    const layer = img.layers[0] as Descriptor;
    const evil = Buffer.from(reg.blobs.get(layer.digest) as Buffer);
    evil[50_000] = (evil[50_000] ?? 0) ^ 0xff;
    reg.blobs.set(layer.digest, evil);
    let consumed = 0;
    let streamError: unknown;
    let attemptSignal: AbortSignal | undefined;
    let consumer: Promise<void> = Promise.resolve();
    await assert.rejects(
      client().fetchImage(ref(`${reg.host}/app`), {
        onConfig: (_c, _l, attempt) => {
          attemptSignal = attempt;
        },
        onLayerStream: (_i, _l, body) => {
          consumer = (async () => {
            try {
              for await (const c of body) consumed += c.length;
            } catch (e) {
              streamError = e;
            }
          })();
          return true;
        },
      }),
      /Digest mismatch/,
    );
    await consumer;
    assert.equal(consumed, 100_000, "every byte was handed over before the check");
    assert.match(String((streamError as Error | undefined)?.message), /Digest mismatch/);
    assert.equal(attemptSignal?.aborted, true, "the attempt is aborted");
    assert.equal(await store.has(layer.digest), false);
  });

  test("a stream whose download restarts from the beginning fails; the pull still succeeds", async () => {
    const img = reg.addImage("app", "latest", [randomBytes(200_000)]);
    const layer = img.layers[0] as Descriptor;
    const good = reg.blobs.get(layer.digest) as Buffer;
    let gets = 0;
    reg.intercept = (req, res) => {
      if (!req.url?.endsWith(`/blobs/${layer.digest}`) || req.method !== "GET") return false;
      gets++;
      if (gets === 1) {
        // Half the body, then the connection drops: a retry resumes with Range...
        res.writeHead(200, { "content-length": String(good.length) });
        res.write(good.subarray(0, 100_000));
        setTimeout(() => res.destroy(), 20);
        return true;
      }
      // ...which this registry ignores: the whole body again, from byte 0.
      res.writeHead(200, { "content-length": String(good.length) });
      res.end(good);
      return true;
    };
    let streamError: unknown;
    let consumer: Promise<void> = Promise.resolve();
    await client().fetchImage(ref(`${reg.host}/app`), {
      onLayerStream: (_i, _l, body) => {
        consumer = (async () => {
          try {
            for await (const _c of body);
          } catch (e) {
            streamError = e;
          }
        })();
        return true;
      },
    });
    await consumer;
    assert.ok(gets >= 2);
    assert.match(String((streamError as Error | undefined)?.message), /restarted/);
    assert.ok(await store.has(layer.digest));
  });

  test("an aborted pull is Canceled", async () => {
    reg.addImage("app", "latest", [randomBytes(10)]);
    reg.blobDelayMs = 200;
    const ctl = new AbortController();
    const p = client().fetchImage(ref(`${reg.host}/app`), { signal: ctl.signal });
    setTimeout(() => ctl.abort(), 50);
    await assert.rejects(p, isCanceled);
  });
});

describe("verification", () => {
  test("a tampered blob is rejected and nothing is committed", async () => {
    const img = reg.addImage("app", "latest", [randomBytes(1000)]);
    const layer = img.layers[0] as Descriptor;
    const evil = Buffer.from(reg.blobs.get(layer.digest) as Buffer);
    evil[0] = (evil[0] ?? 0) ^ 0xff;
    reg.blobs.set(layer.digest, evil);
    await assert.rejects(
      client().fetchImage(ref(`${reg.host}/app`)),
      (e) => isInvalidArgument(e) && /Digest mismatch/.test((e as Error).message),
    );
    assert.equal(await store.has(layer.digest), false);
    assert.ok(await ingestDirEmpty());
  });

  test("a blob longer than its descriptor is cut and rejected", async () => {
    const img = reg.addImage("app", "latest", [randomBytes(1000)]);
    const layer = img.layers[0] as Descriptor;
    reg.blobs.set(layer.digest, Buffer.concat([reg.blobs.get(layer.digest) as Buffer, randomBytes(100_000)]));
    await assert.rejects(client().fetchImage(ref(`${reg.host}/app`)), /larger than its declared size/);
    assert.equal(await store.has(layer.digest), false);
  });

  test("a manifest fetched by digest must hash to it", async () => {
    const img = reg.addImage("app", undefined, [randomBytes(10)]);
    const r = reg.repos.get("app");
    const m = r?.manifests.get(img.manifest.digest);
    assert.ok(m);
    m.bytes = Buffer.from(JSON.stringify({ ...JSON.parse(m.bytes.toString()), annotations: { x: "y" } }));
    await assert.rejects(client().fetchImage(ref(`${reg.host}/app@${img.manifest.digest}`)), /Manifest digest mismatch/);
  });

  test("a manifest by tag whose Docker-Content-Digest disagrees is rejected", async () => {
    reg.addImage("app", "latest", [randomBytes(10)]);
    reg.intercept = (req, res) => {
      if (!req.url?.endsWith("/manifests/latest")) return false;
      const body = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OciManifest,
          config: { mediaType: MediaType.OciConfig, digest: sha256("c"), size: 1 },
          layers: [],
        }),
      );
      res.writeHead(200, {
        "content-type": MediaType.OciManifest,
        "docker-content-digest": sha256("other"),
        "content-length": String(body.length),
      });
      res.end(body);
      return true;
    };
    await assert.rejects(client().fetchImage(ref(`${reg.host}/app`)), /does not match the content digest/);
  });

  test("duplicate keys, manifests+layers, and mediaType/Content-Type disagreement are rejected", async () => {
    const cfg = { mediaType: MediaType.OciConfig, digest: sha256("c"), size: 1 };
    const cases: [string, string, RegExp][] = [
      [`{"schemaVersion":2,"schemaVersion":2,"config":${JSON.stringify(cfg)},"layers":[]}`, MediaType.OciManifest, /duplicate key/],
      [
        JSON.stringify({ schemaVersion: 2, config: cfg, layers: [], manifests: [] }),
        MediaType.OciManifest,
        /both "manifests" and "layers"/,
      ],
      [
        JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }),
        MediaType.OciManifest,
        /does not match Content-Type/,
      ],
    ];
    for (const [i, [body, ct, re]] of cases.entries()) {
      reg.addManifest("bad", `t${i}`, body, ct);
      await assert.rejects(client().fetchImage(ref(`${reg.host}/bad:t${i}`)), re);
    }
  });

  test("a manifest over 4 MiB is not read past the bound", async () => {
    reg.intercept = (req, res) => {
      if (!req.url?.includes("/manifests/")) return false;
      res.writeHead(200, { "content-type": MediaType.OciManifest });
      // No Content-Length: the client must stop reading on its own.
      let sent = 0;
      const chunk = Buffer.alloc(256 * 1024, 0x20);
      const pump = () => {
        while (sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return res.once("drain", pump);
        }
        res.end();
      };
      res.on("close", () => {
        sent = Number.POSITIVE_INFINITY;
      });
      pump();
      return true;
    };
    await assert.rejects(client().fetchImage(ref(`${reg.host}/huge`)), /larger than 4194304 bytes/);
  });

  test("an index with 100k entries is rejected", async () => {
    const manifests = Array.from({ length: 100_000 }, (_, i) => ({ mediaType: "m", digest: sha256(String(i)), size: 1 }));
    reg.addManifest("idx", "latest", { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }, MediaType.OciIndex);
    await assert.rejects(
      client().fetchImage(ref(`${reg.host}/idx`)),
      (e) => isInvalidArgument(e) && /larger than|more than/.test((e as Error).message),
    );
  });

  test("a child manifest larger than its index descriptor says is rejected", async () => {
    const amd = reg.addImage("m", undefined, [randomBytes(10)]);
    reg.addManifest(
      "m",
      "latest",
      {
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [{ ...amd.manifest, size: 20, platform: { os: "linux", architecture: "amd64" } }],
      },
      MediaType.OciIndex,
    );
    await assert.rejects(client().fetchImage(ref(`${reg.host}/m`)), /larger than 20 bytes/);
  });

  test("unsafe digests are rejected before any request", async () => {
    const c = client();
    for (const d of ["sha256:../../x", `sha256:${"A".repeat(64)}`, "sha256:abc", `md5:${"a".repeat(32)}`]) {
      await assert.rejects(c.blobExists(ref(`${reg.host}/app`), d as Digest), isInvalidArgument);
      await assert.rejects(
        c.fetchBlob(ref(`${reg.host}/app`), { mediaType: MediaType.OciLayerGzip, digest: d as Digest, size: 1 }),
        isInvalidArgument,
      );
    }
    assert.equal(reg.requests.length, 0);
    // A manifest naming an unsafe layer digest is refused by the parser.
    reg.addManifest(
      "evil",
      "latest",
      {
        schemaVersion: 2,
        config: { mediaType: MediaType.OciConfig, digest: sha256("x"), size: 1 },
        layers: [{ mediaType: MediaType.OciLayerGzip, digest: "sha256:../../../etc/passwd", size: 1 }],
      },
      MediaType.OciManifest,
    );
    await assert.rejects(c.fetchImage(ref(`${reg.host}/evil`)), /bad digest/);
  });
});

describe("resume and retries", () => {
  test("a dropped connection resumes with a Range request", async () => {
    const img = reg.addImage("app", "latest", [randomBytes(300_000)]);
    const layer = img.layers[0] as Descriptor;
    let dropped = false;
    const ranges: string[] = [];
    reg.intercept = (req, res) => {
      if (!req.url?.endsWith(`/blobs/${layer.digest}`)) return false;
      ranges.push(String(req.headers.range ?? ""));
      if (dropped) return false;
      dropped = true;
      const data = reg.blobs.get(layer.digest) as Buffer;
      res.writeHead(200, { "content-length": String(data.length) });
      res.write(data.subarray(0, 100_000), () => setTimeout(() => res.destroy(), 20));
      return true;
    };
    await client().fetchImage(ref(`${reg.host}/app`));
    assert.ok(await store.has(layer.digest));
    assert.equal(ranges.length, 2);
    assert.equal(ranges[0], "");
    assert.match(ranges[1] ?? "", /^bytes=\d+-$/);
    assert.ok(Number(/\d+/.exec(ranges[1] ?? "")?.[0]) > 0);
    assert.equal(sleeps.length, 1);
  });

  test("a server that ignores Range makes the download start over", async () => {
    const img = reg.addImage("app", "latest", [randomBytes(300_000)]);
    const layer = img.layers[0] as Descriptor;
    reg.rangeSupport = false;
    let dropped = false;
    reg.intercept = (req, res) => {
      if (!req.url?.endsWith(`/blobs/${layer.digest}`) || dropped) return false;
      dropped = true;
      const data = reg.blobs.get(layer.digest) as Buffer;
      res.writeHead(200, { "content-length": String(data.length) });
      res.write(data.subarray(0, 100_000), () => setTimeout(() => res.destroy(), 20));
      return true;
    };
    await client().fetchImage(ref(`${reg.host}/app`));
    assert.ok(await store.has(layer.digest));
  });

  test("a partial download left by a restart resumes from its offset", async () => {
    const data = randomBytes(50_000);
    const img = reg.addImage("app", "latest", [data]);
    const layer = img.layers[0] as Descriptor;
    const ing = await store.ingest({ digest: layer.digest, size: layer.size });
    await ing.write(data.subarray(0, 20_000));
    await ing.close();
    await client().fetchImage(ref(`${reg.host}/app`));
    const blobGets = reg.requests.filter((r) => r.url.endsWith(`/blobs/${layer.digest}`));
    assert.equal(blobGets.length, 1);
    assert.equal(blobGets[0]?.headers.range, "bytes=20000-");
    assert.ok(await store.has(layer.digest));
  });

  test("a corrupt partial download gets one fresh start", async () => {
    const data = randomBytes(50_000);
    const img = reg.addImage("app", "latest", [data]);
    const layer = img.layers[0] as Descriptor;
    const ing = await store.ingest({ digest: layer.digest, size: layer.size });
    await ing.write(randomBytes(20_000));
    await ing.close();
    await client().fetchImage(ref(`${reg.host}/app`));
    assert.ok(await store.has(layer.digest));
  });

  test("5xx and 429 are retried with backoff and Retry-After", async () => {
    reg.addImage("app", "latest", [randomBytes(10)]);
    let n = 0;
    reg.intercept = (req, res) => {
      if (!req.url?.includes("/manifests/")) return false;
      n++;
      if (n === 1) {
        res.writeHead(503).end();
        return true;
      }
      if (n === 2) {
        res.writeHead(429, { "retry-after": "7" }).end();
        return true;
      }
      return false;
    };
    await client().fetchImage(ref(`${reg.host}/app`));
    assert.deepEqual(sleeps, [1000, 7000]);
  });

  test("retries give up after the policy's attempts", async () => {
    reg.intercept = (_req, res) => {
      res.writeHead(502).end();
      return true;
    };
    await assert.rejects(
      client({ retry: { attempts: 3, sleep: async (ms) => void sleeps.push(ms) } }).fetchImage(ref(`${reg.host}/app`)),
      isUnavailable,
    );
    assert.deepEqual(sleeps, [1000, 2000]);
  });

  test("a layer retry reports 'Retrying in N seconds'", async () => {
    const img = reg.addImage("app", "latest", [randomBytes(1000)]);
    let failed = false;
    reg.intercept = (req, res) => {
      if (!req.url?.endsWith(`/blobs/${img.layers[0]?.digest}`) || failed) return false;
      failed = true;
      res.writeHead(500).end();
      return true;
    };
    const events: ProgressEvent[] = [];
    await client().fetchImage(ref(`${reg.host}/app`), { onProgress: (e) => events.push(e) });
    assert.ok(events.some((e) => e.status === "Retrying in 1 second"));
  });
});

describe("mirrors", () => {
  test("mirror 1 down, mirror 2 404, then the next answers", async () => {
    const m2 = await another();
    const up = await another();
    const img = up.addImage("library/busybox", "latest", [randomBytes(100)]);
    // A closed port for mirror 1.
    const dead = await another();
    const deadUrl = dead.url;
    await dead.stop();
    extra.splice(extra.indexOf(dead), 1);
    const c = client({ mirrors: [deadUrl, m2.url, up.url] });
    const got = await c.fetchImage(ref("busybox"));
    assert.equal(got.digest, img.manifest.digest);
    assert.equal(got.source, up.url);
    assert.ok(m2.requests.some((r) => r.url === "/v2/library/busybox/manifests/latest"));
  });

  test("when no mirror answers and docker.io is unreachable, the error says so", async () => {
    const m = await another();
    const c = client({ mirrors: [m.url] });
    await m.stop();
    extra.splice(extra.indexOf(m), 1);
    await assert.rejects(c.fetchImage(ref("busybox")), (e) => {
      assert.ok(isUnavailable(e), String(e));
      assert.match(
        (e as Error).message,
        /^Cannot pull "busybox:latest": no registry answered: mirror http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.*; http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
      );
      return true;
    });
  });

  test("a mirror answering 503 falls back at once, without backoff", async () => {
    const m = await another();
    m.intercept = (_req, res) => {
      res.writeHead(503).end();
      return true;
    };
    const up = await another();
    up.addImage("library/busybox", "latest", [randomBytes(10)]);
    await client({ mirrors: [m.url, up.url] }).fetchImage(ref("busybox"));
    assert.deepEqual(sleeps, []);
  });

  test("a mirror's 'not found' is the answer when docker.io cannot be reached", async () => {
    const m = await another();
    await assert.rejects(client({ mirrors: [m.url] }).fetchImage(ref("nosuch")), (e) => {
      assert.ok(isNotFound(e), String(e));
      assert.equal((e as Error).message, "manifest for nosuch:latest not found: manifest unknown: manifest unknown");
      return true;
    });
  });

  test("mirrors get no credentials", async () => {
    const m = await another();
    m.addImage("library/busybox", "latest", [randomBytes(10)]);
    await client({ mirrors: [m.url] }).fetchImage(ref("busybox"), { auth: { username: "u", password: "p" } });
    assert.ok(m.requests.every((r) => r.headers.authorization === undefined));
  });
});

describe("auth", () => {
  test("bearer: anonymous pull, token cached per scope", async () => {
    reg.auth = { kind: "bearer", users: {} };
    reg.addImage("app", "latest", [randomBytes(10), randomBytes(10)]);
    reg.addImage("other", "latest", [randomBytes(10)]);
    const c = client();
    await c.fetchImage(ref(`${reg.host}/app`));
    assert.equal(reg.tokenRequests.length, 1);
    await c.fetchImage(ref(`${reg.host}/app:latest`));
    assert.equal(reg.tokenRequests.length, 1);
    await c.fetchImage(ref(`${reg.host}/other`));
    assert.equal(reg.tokenRequests.length, 2);
    assert.match(reg.tokenRequests[1]?.url ?? "", /scope=repository%3Aother%3Apull/);
  });

  test("bearer with credentials, and a refused login", async () => {
    reg.auth = { kind: "bearer", users: { alice: "secret" }, anonymousPull: false };
    reg.addImage("app", "latest", [randomBytes(10)]);
    await assert.rejects(client().fetchImage(ref(`${reg.host}/app`)), isUnauthorized);
    await client().fetchImage(ref(`${reg.host}/app`), { auth: { username: "alice", password: "secret" } });
    const tr = reg.tokenRequests.at(-1);
    assert.equal(tr?.headers.authorization, `Basic ${Buffer.from("alice:secret").toString("base64")}`);
    await assert.rejects(client().fetchImage(ref(`${reg.host}/app`), { auth: { username: "alice", password: "wrong" } }), (e) => {
      assert.ok(isUnauthorized(e));
      assert.match((e as Error).message, /incorrect username or password/);
      return true;
    });
  });

  test("expired tokens are refreshed", async () => {
    reg.auth = { kind: "bearer", users: {}, expiresIn: 60 };
    reg.addImage("app", "latest", [randomBytes(10)]);
    let now = Date.now();
    const c = client({ now: () => now });
    await c.fetchImage(ref(`${reg.host}/app`));
    assert.equal(reg.tokenRequests.length, 1);
    now += 59_000;
    await c.headManifest(ref(`${reg.host}/app`));
    assert.equal(reg.tokenRequests.length, 2);
  });

  test("a revoked token is replaced once", async () => {
    reg.auth = { kind: "bearer", users: {} };
    reg.addImage("app", "latest", [randomBytes(10)]);
    const c = client();
    await c.headManifest(ref(`${reg.host}/app`));
    let refuse = true;
    reg.intercept = (req, res) => {
      if (!refuse || !req.headers.authorization) return false;
      refuse = false;
      res.writeHead(401, { "www-authenticate": `Bearer realm="${reg.url}/token",service="fake"` }).end();
      return true;
    };
    await c.headManifest(ref(`${reg.host}/app`));
    assert.equal(reg.tokenRequests.length, 2);
  });

  test("basic auth", async () => {
    reg.auth = { kind: "basic", users: { bob: "pw" } };
    reg.addImage("app", "latest", [randomBytes(10)]);
    await assert.rejects(client().fetchImage(ref(`${reg.host}/app`)), isUnauthorized);
    await client().fetchImage(ref(`${reg.host}/app`), { auth: { username: "bob", password: "pw" } });
  });

  test("identity tokens are exchanged with an OAuth2 POST", async () => {
    reg.auth = { kind: "bearer", users: { alice: "secret" }, anonymousPull: false };
    reg.addImage("app", "latest", [randomBytes(10)]);
    const login = await client().checkAuth(reg.host, { username: "alice", password: "secret" });
    assert.equal(login.status, "Login Succeeded");
    assert.ok(login.identityToken);
    await client().fetchImage(ref(`${reg.host}/app`), { auth: { identityToken: login.identityToken } });
    assert.equal(reg.tokenRequests.at(-1)?.method, "POST");
  });

  test("checkAuth: ok, refused with the registry's message, basic, no auth", async () => {
    reg.auth = { kind: "bearer", users: { alice: "secret" } };
    const c = client();
    assert.equal((await c.checkAuth(`http://${reg.host}/`, { username: "alice", password: "secret" })).status, "Login Succeeded");
    await assert.rejects(c.checkAuth(reg.host, { username: "alice", password: "nope" }), (e) => {
      assert.ok(isUnauthorized(e));
      assert.equal((e as Error).message, "unauthorized: incorrect username or password");
      return true;
    });
    reg.auth = { kind: "basic", users: { bob: "pw" } };
    assert.equal((await c.checkAuth(reg.host, { username: "bob", password: "pw" })).status, "Login Succeeded");
    await assert.rejects(c.checkAuth(reg.host, { username: "bob", password: "x" }), isUnauthorized);
    reg.auth = { kind: "none" };
    assert.equal((await c.checkAuth(reg.host, {})).status, "Login Succeeded");
  });

  test("a token realm on another host over HTTP gets no credentials", async () => {
    const tokens = await another({ auth: { kind: "bearer", users: { alice: "secret" } } });
    // "localhost" vs "127.0.0.1": another host.
    reg.auth = { kind: "bearer", users: { alice: "secret" }, realm: `http://localhost:${tokens.port}/token` };
    reg.addImage("app", "latest", [randomBytes(10)]);
    await assert.rejects(
      client().fetchImage(ref(`${reg.host}/app`), { auth: { username: "alice", password: "secret" } }),
      /Refusing to send credentials/,
    );
    assert.ok(tokens.tokenRequests.every((r) => r.headers.authorization === undefined));
    // Anonymous is fine.
    await client().fetchImage(ref(`${reg.host}/app`));
  });

  test("huge, non-JSON and expired token responses fail clearly", async () => {
    const tokenSrv = await another();
    let mode = "";
    tokenSrv.intercept = () => false;
    reg.auth = { kind: "bearer", users: {}, realm: `${reg.url}/token` };
    reg.addImage("app", "latest", [randomBytes(10)]);
    const { createServer } = await import("node:http");
    const srv = createServer((_req, res) => {
      if (mode === "huge") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(Buffer.alloc(2 * 1024 * 1024, 0x20));
      } else if (mode === "html") {
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<html>hello</html>");
      } else if (mode === "expired") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ token: "fake.x", expires_in: 60, issued_at: "2001-01-01T00:00:00Z" }));
      } else {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ token: "fake.x", expires_in: -5 }));
      }
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as { port: number }).port;
    try {
      reg.auth = { kind: "bearer", users: {}, realm: `http://127.0.0.1:${port}/token` };
      for (const [m, re] of [
        ["huge", /larger than 1048576 bytes/],
        ["html", /is not JSON/],
        ["expired", /has already expired/],
        ["negative", /has already expired/],
      ] as const) {
        mode = m;
        await assert.rejects(client().fetchImage(ref(`${reg.host}/app`)), re);
      }
    } finally {
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});

describe("endpoints", () => {
  test("an insecure registry is tried over HTTPS first, then plain HTTP, and remembered", async () => {
    const { Shared } = await import("./_session.ts");
    const { Transport, defaultRetryPolicy } = await import("./_http.ts");
    const t = new Transport();
    try {
      const shared = new Shared(t, { ...defaultRetryPolicy, sleep: async () => {} }, Date.now);
      const ep = { domain: reg.host, candidates: [new URL(`https://${reg.host}`), new URL(reg.url)], mirror: false, insecureTls: true };
      const p = await shared.ping(ep);
      assert.equal(p.base.protocol, "http:");
      const n = reg.requests.length;
      assert.equal((await shared.ping(ep)).base.protocol, "http:");
      assert.equal(reg.requests.length, n);
    } finally {
      await t.close();
    }
  });
});

describe("redirects", () => {
  test("blob redirects to another host carry no Authorization", async () => {
    reg.auth = { kind: "bearer", users: { alice: "secret" } };
    const storage = await another();
    const img = reg.addImage("app", "latest", [randomBytes(1000)]);
    const layer = img.layers[0] as Descriptor;
    storage.addBlob("s", reg.blobs.get(layer.digest) as Buffer);
    reg.intercept = (req, res) => {
      if (req.method !== "GET" || !req.url?.endsWith(`/blobs/${layer.digest}`) || !req.headers.authorization) return false;
      res.writeHead(307, { location: `http://localhost:${storage.port}/v2/s/blobs/${layer.digest}?sig=abc` }).end();
      return true;
    };
    await client().fetchImage(ref(`${reg.host}/app`), { auth: { username: "alice", password: "secret" } });
    assert.ok(await store.has(layer.digest));
    assert.equal(storage.requests.length, 1);
    assert.equal(storage.requests[0]?.headers.authorization, undefined);
    assert.equal(storage.requests[0]?.headers.cookie, undefined);
  });

  test("more than 10 redirects is an error", async () => {
    reg.addImage("app", "latest", [randomBytes(10)]);
    let n = 0;
    reg.intercept = (req, res) => {
      if (!req.url?.includes("/blobs/")) return false;
      n++;
      res.writeHead(302, { location: `/v2/app/blobs/${sha256(String(n))}` }).end();
      return true;
    };
    await assert.rejects(client().fetchImage(ref(`${reg.host}/app`)), /Stopped after 10 redirects/);
  });
});

describe("push", () => {
  async function seedStore(layers: Buffer[]) {
    const ls: Descriptor[] = [];
    for (const b of layers) {
      const i = await store.put(b);
      ls.push({ mediaType: MediaType.OciLayerGzip, digest: i.digest, size: i.size });
    }
    const cfgBytes = Buffer.from(
      JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: ls.map((l) => l.digest) } }),
    );
    const ci = await store.put(cfgBytes);
    const config: Descriptor = { mediaType: MediaType.OciConfig, digest: ci.digest, size: ci.size };
    const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: ls }));
    return { layers: ls, config, manifestBytes };
  }

  test("uploads blobs and the manifest; a second push skips what exists", async () => {
    const img = await seedStore([randomBytes(5000), randomBytes(7000)]);
    const events: ProgressEvent[] = [];
    const c = client();
    const out = await c.pushImage(ref(`${reg.host}/acc/app:v1`), {
      manifestBytes: img.manifestBytes,
      mediaType: MediaType.OciManifest,
      blobs: [img.config, ...img.layers],
      onProgress: (e) => events.push(e),
    });
    assert.equal(out.digest, sha256(img.manifestBytes));
    assert.equal(reg.repos.get("acc/app")?.tags.get("v1"), out.digest);
    for (const b of [img.config, ...img.layers]) assert.ok(reg.blobs.get(b.digest));
    // Layers go up in parallel: they finish in any order.
    assert.deepEqual(
      events
        .filter((e) => e.status === "Pushed")
        .map((e) => e.id)
        .sort(),
      img.layers.map((l) => l.digest.slice(7, 19)).sort(),
    );
    assert.ok(events.some((e) => e.status === "Pushing" && e.current === 7000));
    const again: ProgressEvent[] = [];
    await c.pushImage(ref(`${reg.host}/acc/app:v2`), {
      manifestBytes: img.manifestBytes,
      mediaType: MediaType.OciManifest,
      blobs: [img.config, ...img.layers],
      onProgress: (e) => again.push(e),
    });
    assert.equal(again.filter((e) => e.status === "Layer already exists").length, 2);
    // Pull it back.
    const { rm: _rm } = await import("node:fs/promises");
    void _rm;
    const back = await client().headManifest(ref(`${reg.host}/acc/app:v2`));
    assert.equal(back.digest, out.digest);
  });

  test("mounts blobs from another repository of the same registry", async () => {
    const img = await seedStore([randomBytes(3000)]);
    const layer = img.layers[0] as Descriptor;
    reg.addBlob("library/base", (await store.readBytes(layer.digest)) as Buffer);
    const events: ProgressEvent[] = [];
    await client().pushImage(ref(`${reg.host}/acc/app:v1`), {
      manifestBytes: img.manifestBytes,
      mediaType: MediaType.OciManifest,
      blobs: [img.config, ...img.layers],
      mountFrom: ["nothere", "library/base"],
      onProgress: (e) => events.push(e),
    });
    assert.ok(events.some((e) => e.status === "Mounted from library/base"));
    assert.ok(reg.requests.some((r) => r.method === "DELETE"));
    assert.ok(!reg.requests.some((r) => r.method === "PUT" && r.url.includes(layer.digest.slice(7))));
  });

  test("mount with bearer auth asks for pull on the source", async () => {
    reg.auth = { kind: "bearer", users: { alice: "secret" } };
    const img = await seedStore([randomBytes(3000)]);
    const layer = img.layers[0] as Descriptor;
    reg.addBlob("library/base", (await store.readBytes(layer.digest)) as Buffer);
    const events: ProgressEvent[] = [];
    await client().pushImage(ref(`${reg.host}/acc/app:v1`), {
      manifestBytes: img.manifestBytes,
      mediaType: MediaType.OciManifest,
      blobs: [img.config, ...img.layers],
      mountFrom: () => ["library/base"],
      auth: { username: "alice", password: "secret" },
      onProgress: (e) => events.push(e),
    });
    assert.ok(events.some((e) => e.status === "Mounted from library/base"));
    assert.ok(reg.tokenRequests.some((r) => r.url.includes(encodeURIComponent("repository:library/base:pull"))));
  });

  test("chunked uploads with absolute locations", async () => {
    reg.absoluteLocations = true;
    const img = await seedStore([randomBytes(10_000)]);
    await client().pushImage(ref(`${reg.host}/chunky:latest`), {
      manifestBytes: img.manifestBytes,
      mediaType: MediaType.OciManifest,
      blobs: [img.config, ...img.layers],
      chunkSize: 3000,
    });
    assert.equal(reg.requests.filter((r) => r.method === "PATCH").length, 4 + 1);
    assert.ok(reg.blobs.get((img.layers[0] as Descriptor).digest));
  });

  test("uploads at most maxConcurrentUploads at a time and push without auth is refused", async () => {
    const img = await seedStore(Array.from({ length: 6 }, () => randomBytes(1000)));
    let inflight = 0;
    let max = 0;
    reg.intercept = async (req) => {
      if (req.method !== "PUT" || !req.url?.includes("/blobs/uploads/")) return false;
      inflight++;
      max = Math.max(max, inflight);
      await new Promise((r) => setTimeout(r, 30));
      inflight--;
      return false;
    };
    const events: ProgressEvent[] = [];
    await client({ maxConcurrentUploads: 2 }).pushImage(ref(`${reg.host}/app:latest`), {
      manifestBytes: img.manifestBytes,
      mediaType: MediaType.OciManifest,
      blobs: [img.config, ...img.layers],
      onProgress: (e) => events.push(e),
    });
    assert.equal(max, 2);
    assert.ok(events.some((e) => e.status === "Waiting"));
    reg.auth = { kind: "bearer", users: { alice: "secret" } };
    await assert.rejects(
      client().pushImage(ref(`${reg.host}/app2:latest`), {
        manifestBytes: img.manifestBytes,
        mediaType: MediaType.OciManifest,
        blobs: [img.config, ...img.layers],
      }),
      isUnauthorized,
    );
  });

  test("pushes an index with its child manifests", async () => {
    const img = await seedStore([randomBytes(1000)]);
    const child = await store.put(img.manifestBytes);
    const childDesc: Descriptor = {
      mediaType: MediaType.OciManifest,
      digest: child.digest,
      size: child.size,
      platform: { os: "linux", architecture: "amd64" },
    };
    const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [childDesc] }));
    const out = await client().pushImage(ref(`${reg.host}/multi:latest`), {
      manifestBytes: indexBytes,
      mediaType: MediaType.OciIndex,
      blobs: [img.config, ...img.layers],
      manifests: [childDesc],
    });
    assert.equal(reg.repos.get("multi")?.tags.get("latest"), out.digest);
    assert.ok(reg.repos.get("multi")?.manifests.has(child.digest));
    const back = await client().fetchImage(ref(`${reg.host}/multi`));
    assert.equal(back.indexDigest, out.digest);
  });

  test("a blob missing from the store is a clear error", async () => {
    const img = await seedStore([randomBytes(100)]);
    await store.delete((img.layers[0] as Descriptor).digest);
    await assert.rejects(
      client().pushImage(ref(`${reg.host}/app:latest`), {
        manifestBytes: img.manifestBytes,
        mediaType: MediaType.OciManifest,
        blobs: [img.config, ...img.layers],
      }),
      /not in the content store/,
    );
  });
});

before(() => {});
after(() => {});
