import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { gunzipSync } from "node:zlib";
import { createAdaptiveGzip } from "./_gzip.ts";
import { compressLayer, decompress } from "./compress.ts";
import { test } from "node:test";

async function gz(input: Buffer, pieces = 7): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const step = Math.max(1, Math.ceil(input.length / pieces));
  const src = Readable.from(Array.from({ length: Math.ceil(input.length / step) }, (_, i) => input.subarray(i * step, (i + 1) * step)));
  for await (const c of src.pipe(createAdaptiveGzip())) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const text = Buffer.from("the quick brown fox jumps over the lazy dog; ".repeat(60_000));

test("adaptive gzip: random data is stored, text is deflated, gunzip reads both back", async () => {
  const random = randomBytes(3 * 1024 * 1024 + 123);
  const r = await gz(random);
  assert.deepEqual(gunzipSync(r), random);
  // Stored: the size of the input plus 5 bytes per 64 KiB and the framing.
  assert.ok(r.length > random.length && r.length < random.length + 1024, String(r.length));
  const t = await gz(text);
  assert.deepEqual(gunzipSync(t), text);
  assert.ok(t.length < text.length / 50, String(t.length));
});

test("adaptive gzip: mixed runs, tiny and empty inputs are valid gzip members", async () => {
  const mixed = Buffer.concat([
    text.subarray(0, 200_000),
    randomBytes(300_000),
    text.subarray(0, 70_000),
    randomBytes(65_536),
    Buffer.from("end"),
  ]);
  const m = await gz(mixed, 13);
  assert.deepEqual(gunzipSync(m), mixed);
  assert.ok(m.length < 300_000 + 65_536 + 20_000, String(m.length));
  assert.deepEqual(gunzipSync(await gz(Buffer.from("x"))), Buffer.from("x"));
  assert.deepEqual(gunzipSync(await gz(Buffer.alloc(0), 1)), Buffer.alloc(0));
});

test("compressLayer with adaptive: digests of both sides match what was written", async () => {
  const input = Buffer.concat([randomBytes(2_000_000), text]);
  const c = compressLayer(Readable.from([input]), { adaptive: true });
  const out: Buffer[] = [];
  for await (const x of c.stream) out.push(x as Buffer);
  const blob = Buffer.concat(out);
  const info = await c.info;
  assert.equal(info.digest, `sha256:${createHash("sha256").update(blob).digest("hex")}`);
  assert.equal(info.diffId, `sha256:${createHash("sha256").update(input).digest("hex")}`);
  assert.equal(info.diffSize, input.length);
  assert.deepEqual(gunzipSync(blob), input);
  // berth's own strict reader (used by pull and applyLayer) and the system's gzip agree.
  const back: Buffer[] = [];
  for await (const x of decompress(Readable.from([blob]))) back.push(x);
  assert.deepEqual(Buffer.concat(back), input);
  assert.equal(spawnSync("gzip", ["-t"], { input: blob }).status, 0);
});
