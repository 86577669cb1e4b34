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

test("an ingest written in small chunks commits every byte in order; a closed one resumes at its full offset", async () => {
  const data = Buffer.alloc(3 * 1024 * 1024 + 12345);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 10)) & 0xff;
  const digest = sha256(data);
  const chunks = (from: number, to: number) => {
    const out: Buffer[] = [];
    for (let o = from; o < to; o += 16 * 1024 + 3) out.push(data.subarray(o, Math.min(to, o + 16 * 1024 + 3)));
    return out;
  };
  // Half, then close (as a dropped download does): what was accepted is on disk for a resume.
  const half = Math.floor(data.length / 2) + 5;
  const first = await store.ingest({ digest, size: data.length });
  for (const c of chunks(0, half)) await first.write(c);
  assert.equal(first.offset, half);
  await first.close();
  const resumed = await store.ingest({ digest, size: data.length });
  assert.equal(resumed.offset, half, "the reopened ingest holds every accepted byte");
  for (const c of chunks(half, data.length)) await resumed.write(c);
  const info = await resumed.commit();
  assert.deepEqual(info, { digest, size: data.length });
  assert.ok((await store.readBytes(digest, 8 * 1024 * 1024)).equals(data));
});
