import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { SyncGunzip } from "./_gunzip.ts";

/** Inflates `blob` fed `inChunk` bytes at a time into a shared `outSize` buffer, as the inflate worker does. */
function inflate(blob: Buffer, inChunk: number, outSize: number): Buffer | string {
  const g = SyncGunzip.create();
  assert.ok(g, "this Node has the zlib binding the worker relies on");
  const out = Buffer.from(new SharedArrayBuffer(outSize));
  const input = Buffer.from(new SharedArrayBuffer(inChunk));
  const parts: Buffer[] = [];
  try {
    for (let o = 0; o < blob.length; o += inChunk) {
      const n = blob.copy(input, 0, o, Math.min(o + inChunk, blob.length));
      let view = input.subarray(0, n);
      while (view.length) {
        const s = g.step(view, out);
        parts.push(Buffer.from(out.subarray(0, s.written)));
        if (s.read < view.length && s.written < out.length) return "trailing data";
        view = view.subarray(s.read);
      }
    }
    for (;;) {
      const s = g.finish(out);
      parts.push(Buffer.from(out.subarray(0, s.written)));
      if (s.written < out.length) break;
    }
    return Buffer.concat(parts);
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  } finally {
    g.close();
  }
}

const data = Buffer.concat([randomBytes(50_000), Buffer.alloc(300_000, 7), Buffer.from("hello ".repeat(10_000))]);
const gz = gzipSync(data);

test("sync gunzip: any input and output sizes give the data back", () => {
  for (const [i, o] of [
    [1, 1],
    [7, 100],
    [1000, 4096],
    [65_536, 131_072],
    [gz.length, 1 << 20],
  ] as const) {
    assert.deepEqual(inflate(gz, i, o), data, `${i}/${o}`);
  }
  assert.deepEqual(inflate(gzipSync(Buffer.alloc(0)), 10, 10), Buffer.alloc(0));
});

test("sync gunzip: members follow each other; what follows the data is reported or refused", () => {
  assert.deepEqual(inflate(Buffer.concat([gz, gzipSync(Buffer.from("abc"))]), 999, 4096), Buffer.concat([data, Buffer.from("abc")]));
  assert.equal(inflate(Buffer.concat([gz, Buffer.alloc(10)]), 999, 4096), "trailing data");
  assert.match(String(inflate(Buffer.concat([gz, Buffer.from("xyz!")]), 999, 4096)), /^Z_DATA_ERROR: incorrect header check/);
});

test("sync gunzip: truncated and corrupt streams fail with zlib's code", () => {
  assert.match(String(inflate(gz.subarray(0, gz.length - 100), 999, 4096)), /^Z_BUF_ERROR: unexpected end of file/);
  assert.match(String(inflate(gz.subarray(0, gz.length - 4), 999, 4096)), /^Z_BUF_ERROR: unexpected end of file/);
  const crc = Buffer.from(gz);
  crc[gz.length - 6] = (crc[gz.length - 6] ?? 0) ^ 0xff;
  assert.match(String(inflate(crc, 999, 4096)), /^Z_DATA_ERROR: incorrect data check/);
  assert.match(String(inflate(Buffer.from("\x1f\x8b\x08\x00garbage-garbage"), 999, 4096)), /^Z_/);
});

test("sync gunzip: a closed decompressor refuses further use", () => {
  const g = SyncGunzip.create();
  assert.ok(g);
  g.close();
  g.close();
  assert.throws(() => g.step(gz, Buffer.alloc(10)), /closed/);
});
