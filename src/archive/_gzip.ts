/**
 * A gzip compressor that does not spend time on data it cannot shrink. Layers often hold
 * already-compressed files (archives, images, packed binaries); deflate costs about 20 ms per
 * MB on them at any level and saves nothing. Here the input is cut into 4 KiB blocks and a
 * block whose byte entropy (sampled) is that of random data goes out as a deflate *stored*
 * block, a copy; runs of other blocks are deflated at the requested level, unless they are
 * short stretches between stored ones (a tar header between two compressed files), which are
 * not worth a deflate call. The output is one
 * ordinary gzip member (RFC 1952) that any gunzip reads; only the time and, for compressible
 * data, a negligible amount of ratio (the dictionary restarts at each run) change.
 *
 * Deflated runs are compressed with `zlib.deflateRaw` ending in a sync flush, which leaves the
 * stream byte-aligned with no final block, so that runs, stored blocks and the closing empty
 * final block can simply be concatenated.
 */
import { Transform, type TransformCallback } from "node:stream";
import { constants as zc, crc32, deflateRaw } from "node:zlib";

const BLOCK = 4096;
/** Input gathered before a batch is classified and compressed. */
const BATCH = 1024 * 1024;
/** Compressible runs shorter than this between stored blocks are stored too. */
const MIN_DEFLATE = 32 * 1024;
/** Sampled bytes per block: every second. */
const STEP = 2;
/**
 * Entropy (bits per byte) at or above which a block is stored. Uniform random bytes measure
 * about 7.91 with 2 Ki samples (the estimate is biased low by about 255 / (2·n·ln 2)); text is
 * near 5, machine code near 6, base64 at most 6, and deflate saves little above 7.5.
 */
const INCOMPRESSIBLE = 7.8;

const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
/** A final, empty block with fixed Huffman codes. */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

const counts = new Uint32Array(256);
const log2 = new Float64Array(BLOCK / STEP + 1).map((_, i) => (i ? Math.log2(i) : 0));

/** Whether a block looks like random bytes (sampled Shannon entropy). */
function incompressible(b: Buffer): boolean {
  counts.fill(0);
  let n = 0;
  for (let i = 0; i < b.length; i += STEP) {
    const v = b[i] as number;
    counts[v] = (counts[v] as number) + 1;
    n++;
  }
  if (n < 512) return false;
  let sum = 0;
  for (let i = 0; i < 256; i++) {
    const c = counts[i] as number;
    if (c) sum += c * (log2[c] ?? Math.log2(c));
  }
  // H = log2(n) - (1/n) * Σ c·log2(c)
  return Math.log2(n) - sum / n >= INCOMPRESSIBLE;
}

/** Non-final stored blocks holding `b` (each at most 65535 bytes). */
function stored(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < b.length; off += 65535) {
    const part = b.subarray(off, Math.min(off + 65535, b.length));
    const h = Buffer.alloc(5);
    h[0] = 0; // BFINAL=0, BTYPE=00; the stream is byte-aligned here
    h.writeUInt16LE(part.length, 1);
    h.writeUInt16LE(~part.length & 0xffff, 3);
    out.push(h, part);
  }
  return out;
}

function deflateRun(b: Buffer, level: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    deflateRaw(b, { level, finishFlush: zc.Z_SYNC_FLUSH }, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

/** A Transform from bytes to a gzip stream, storing incompressible blocks (see above). */
export function createAdaptiveGzip(level = 6): Transform {
  let pending: Buffer[] = [];
  let pendingSize = 0;
  let crc = 0;
  let size = 0;
  let started = false;

  async function emit(t: Transform, input: Buffer): Promise<void> {
    if (!started) {
      t.push(HEADER);
      started = true;
    }
    crc = crc32(input, crc);
    size += input.length;
    // Runs of blocks of one kind: [start, end, stored].
    const runs: [number, number, boolean][] = [];
    for (let off = 0; off < input.length; off += BLOCK) {
      const end = Math.min(off + BLOCK, input.length);
      const s = incompressible(input.subarray(off, end));
      const last = runs[runs.length - 1];
      if (last && last[2] === s) last[1] = end;
      else runs.push([off, end, s]);
    }
    // Short compressible runs next to stored ones join them.
    const merged: [number, number, boolean][] = [];
    for (const r of runs) {
      if (!r[2] && r[1] - r[0] < MIN_DEFLATE && runs.length > 1) r[2] = true;
      const last = merged[merged.length - 1];
      if (last && last[2] === r[2]) last[1] = r[1];
      else merged.push(r);
    }
    // One buffer per batch: the consumer (a file write per chunk) pays per chunk, not per byte.
    const parts: Buffer[] = [];
    for (const [start, end, isStored] of merged) {
      const run = input.subarray(start, end);
      if (isStored) parts.push(...stored(run));
      else parts.push(await deflateRun(run, level));
    }
    if (parts.length) t.push(parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }

  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      pending.push(chunk);
      pendingSize += chunk.length;
      if (pendingSize < BATCH) {
        cb();
        return;
      }
      const input = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingSize);
      pending = [];
      pendingSize = 0;
      emit(this, input).then(() => cb(), cb);
    },
    flush(cb: TransformCallback) {
      const input = Buffer.concat(pending, pendingSize);
      pending = [];
      emit(this, input).then(() => {
        this.push(FINAL_BLOCK);
        const trailer = Buffer.alloc(8);
        trailer.writeUInt32LE(crc >>> 0, 0);
        trailer.writeUInt32LE(size % 2 ** 32, 4);
        this.push(trailer);
        cb();
      }, cb);
    },
  });
}
