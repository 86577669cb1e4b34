import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, test } from "node:test";
import { isInvalidArgument, sha256 } from "../base/mod.ts";
import { ContentStore } from "./mod.ts";

let dir: string;
let store: ContentStore;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-content-"));
  store = new ContentStore(dir);
  await store.init();
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("put stores bytes under their digest and verifies the expected one", async () => {
  const data = Buffer.from("hello");
  const info = await store.put(data);
  assert.equal(info.digest, sha256(data));
  assert.deepEqual(await store.readBytes(info.digest), data);
  await assert.rejects(store.put(Buffer.from("other"), sha256("x")), isInvalidArgument);
});

test("a digest mismatch leaves nothing behind", async () => {
  const d = sha256("expected");
  await assert.rejects(store.writeStream(Readable.from([Buffer.from("tampered")]), { digest: d, size: 8 }), /Digest mismatch/);
  assert.equal(await store.has(d), false);
  assert.deepEqual(await readdir(join(dir, "ingest")), []);
});

test("a size lie is rejected before the data is written", async () => {
  const data = Buffer.from("0123456789");
  const d = sha256(data);
  await assert.rejects(store.writeStream(Readable.from([data]), { digest: d, size: 4 }), /larger than its declared size/);
  assert.equal(await store.has(d), false);
});

test("an ingest resumes at its offset after close", async () => {
  const data = Buffer.from("a".repeat(1000) + "b".repeat(1000));
  const d = sha256(data);
  const ing = await store.ingest({ digest: d, size: data.length });
  await ing.write(data.subarray(0, 1200));
  await ing.close();
  const again = await store.ingest({ digest: d, size: data.length });
  assert.equal(again.offset, 1200);
  await again.write(data.subarray(1200));
  const info = await again.commit();
  assert.equal(info.size, 2000);
  assert.deepEqual(await store.readBytes(d), data);
});

test("concurrent ingestOnce of one digest fetches once", async () => {
  const data = Buffer.from("shared layer");
  const d = sha256(data);
  let fetches = 0;
  const fetch = async (ing: { write(c: Uint8Array): Promise<void> }) => {
    fetches++;
    await new Promise((r) => setTimeout(r, 20));
    await ing.write(data);
  };
  const [a, b] = await Promise.all([store.ingestOnce({ digest: d }, fetch), store.ingestOnce({ digest: d }, fetch)]);
  assert.equal(fetches, 1);
  assert.deepEqual(a, b);
});

test("blob paths reject unsafe digests", async () => {
  assert.throws(() => store.blobPath("sha256:../../etc/passwd"), isInvalidArgument);
  assert.throws(() => store.blobPath(`SHA256:${"a".repeat(64)}`), isInvalidArgument);
  await writeFile(join(dir, "x"), "");
});
