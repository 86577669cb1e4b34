/**
 * registry against the real registry fixture (CNCF distribution, ../shared/fixtures/registry.sh):
 * pull docker.io/library/busybox through the mirror config, push it to other repositories
 * (cross-repository mount, chunked upload) and check with skopeo that the registry holds the
 * digest we computed. Pushed repositories are deleted afterwards.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { isNotFound } from "../../src/base/mod.ts";
import { ContentStore } from "../../src/content/mod.ts";
import { parseReference } from "../../src/oci/mod.ts";
import { type ProgressEvent, RegistryClient } from "../../src/registry/mod.ts";

const PORT = process.env.BERTH_TEST_REGISTRY_PORT ?? "5000";
const HOST = `127.0.0.1:${PORT}`;
const fixture = process.env.BERTH_SHARED ? join(process.env.BERTH_SHARED, "fixtures/registry.sh") : "/work/shared/fixtures/registry.sh";
const suffix = randomBytes(4).toString("hex");
const pushed: { repo: string; digest: string }[] = [];
let dir: string;
let store: ContentStore;
let client: RegistryClient;

before(async () => {
  execFileSync("bash", [fixture, "start"], { stdio: "ignore", env: { ...process.env, BERTH_TEST_REGISTRY_PORT: PORT } });
  dir = mkdtempSync(join(tmpdir(), "berth-registry-it-"));
  store = new ContentStore(join(dir, "content"));
  await store.init();
  client = new RegistryClient({ store, mirrors: [`http://${HOST}`] });
});

after(async () => {
  for (const p of pushed) {
    await fetch(`http://${HOST}/v2/${p.repo}/manifests/${p.digest}`, { method: "DELETE" }).catch(() => {});
  }
  await client?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function skopeoDigest(ref: string): string {
  const out = execFileSync("skopeo", ["inspect", "--tls-verify=false", "--raw", `docker://${ref}`]);
  const inspect = JSON.parse(execFileSync("skopeo", ["inspect", "--tls-verify=false", `docker://${ref}`]).toString()) as { Digest: string };
  assert.ok(out.length > 0);
  return inspect.Digest;
}

test("pulls docker.io/library/busybox through the mirror and pushes it elsewhere", async () => {
  const events: ProgressEvent[] = [];
  const landed: number[] = [];
  const img = await client.fetchImage(parseReference("busybox"), {
    onProgress: (e) => events.push(e),
    onLayerFetched: (i) => {
      landed.push(i);
    },
  });
  assert.equal(img.source, `http://${HOST}`);
  assert.equal(img.digest, skopeoDigest(`${HOST}/library/busybox:latest`));
  assert.ok(img.layers.length >= 1);
  assert.equal(landed.length, img.layers.length);
  for (const l of img.layers) assert.ok(await store.has(l.digest));
  assert.ok(events.some((e) => e.status === "Download complete"));

  // The cheap check of an up-to-date image.
  const head = await client.headManifest(parseReference("busybox"));
  assert.equal(head.digest, img.digest);

  // Push with a cross-repository mount from library/busybox.
  const repo = `berth-it/busybox-${suffix}`;
  const pushEvents: ProgressEvent[] = [];
  const out = await client.pushImage(parseReference(`${HOST}/${repo}:t1`), {
    manifestBytes: img.manifestBytes,
    mediaType: img.mediaType,
    blobs: [img.manifest.config, ...img.layers],
    mountFrom: ["library/busybox"],
    onProgress: (e) => pushEvents.push(e),
  });
  pushed.push({ repo, digest: out.digest });
  assert.equal(out.digest, img.manifestDigest);
  assert.equal(skopeoDigest(`${HOST}/${repo}:t1`), out.digest);
  assert.ok(
    pushEvents.some((e) => e.status === "Mounted from library/busybox"),
    JSON.stringify(pushEvents),
  );

  // Push again without mounts, in chunks, to a fresh repository: real uploads.
  const repo2 = `berth-it/chunked-${suffix}`;
  const out2 = await client.pushImage(parseReference(`${HOST}/${repo2}:t2`), {
    manifestBytes: img.manifestBytes,
    mediaType: img.mediaType,
    blobs: [img.manifest.config, ...img.layers],
    chunkSize: 256 * 1024,
  });
  pushed.push({ repo: repo2, digest: out2.digest });
  assert.equal(skopeoDigest(`${HOST}/${repo2}:t2`), out2.digest);

  // And pull it back from there into a fresh store: every blob verifies.
  const dir2 = mkdtempSync(join(tmpdir(), "berth-registry-it2-"));
  const c2 = new RegistryClient({ store: new ContentStore(dir2) });
  try {
    await (c2.store as ContentStore).init();
    const back = await c2.fetchImage(parseReference(`${HOST}/${repo2}:t2`));
    assert.equal(back.manifestDigest, out2.digest);
    assert.deepEqual(await c2.listTags(parseReference(`${HOST}/${repo2}`)), ["t2"]);
  } finally {
    await c2.close();
    rmSync(dir2, { recursive: true, force: true });
  }
});

test("an unknown tag gets docker's wording from the real registry", async () => {
  await assert.rejects(client.fetchImage(parseReference(`localhost:${PORT}/acc/does-not-exist:nope`)), (e) => {
    assert.ok(isNotFound(e));
    assert.equal(
      (e as Error).message,
      `manifest for localhost:${PORT}/acc/does-not-exist:nope not found: manifest unknown: manifest unknown`,
    );
    return true;
  });
});
