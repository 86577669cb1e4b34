/**
 * Compression of layer blobs: detection by magic bytes, strict streaming decompression (gzip,
 * zstd) that refuses truncated input and trailing data, and compression that digests both the
 * compressed and the uncompressed bytes in one pass.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { pipeline, Readable, Transform } from "node:stream";
import { constants as zc, createGunzip, createGzip, createZstdCompress, createZstdDecompress } from "node:zlib";
import { canceled, type Digest, invalidArgument, notImplemented } from "../base/mod.ts";
import { createAdaptiveGzip } from "./_gzip.ts";

/** Compression formats berth recognises in layer blobs. */
export type Compression = "none" | "gzip" | "zstd";

const CHUNK = 128 * 1024;

/**
 * The compression of a blob from its first bytes. Formats a layer may not use (xz, bzip2)
 * are refused by `decompress`; anything unrecognised is treated as an uncompressed tar and left
 * to the tar reader to judge.
 */
export function detectCompression(head: Uint8Array): Compression | "xz" | "bzip2" {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  // A zstd skippable frame (0x184D2A5?) may come first (seekable and chunked zstd variants).
  if (head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) return "zstd";
  if (head.length >= 6 && head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a && head[5] === 0)
    return "xz";
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return "bzip2";
  return "none";
}

function toBuffer(c: unknown): Buffer {
  if (Buffer.isBuffer(c)) return c;
  if (c instanceof Uint8Array) return Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  if (typeof c === "string") return Buffer.from(c);
  throw invalidArgument("Layer stream yielded a value that is not bytes");
}

/** Options for `decompress`. */
export interface DecompressOptions {
  signal?: AbortSignal;
  /** Called once the format is known. */
  onFormat?: (format: Compression) => void;
}

/**
 * Decompresses a layer blob (gzip, zstd or none, detected from its magic bytes) into tar bytes.
 * Throws InvalidArgument for a truncated stream, bytes after the end of the compressed data, or
 * an unsupported format. Consuming stops early → the input is destroyed.
 */
export async function* decompress(input: AsyncIterable<unknown>, options: DecompressOptions = {}): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  const signal = options.signal;
  let head: Buffer = Buffer.alloc(0);
  let inputDone = false;
  try {
    while (head.length < 6) {
      signal?.throwIfAborted();
      const r = await it.next();
      if (r.done) {
        inputDone = true;
        break;
      }
      head = head.length ? Buffer.concat([head, toBuffer(r.value)]) : toBuffer(r.value);
    }
    const format = detectCompression(head);
    if (format === "xz" || format === "bzip2") throw notImplemented(`Layer compression "${format}" is not supported`);
    options.onFormat?.(format);
    let consumed = 0;
    async function* rest(): AsyncGenerator<Buffer> {
      if (head.length) {
        consumed += head.length;
        yield head;
      }
      if (inputDone) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        const b = toBuffer(r.value);
        consumed += b.length;
        yield b;
      }
    }
    if (format === "none") {
      yield* rest();
    } else if (format === "gzip") {
      const z = createGunzip({ chunkSize: CHUNK });
      pipeline(Readable.from(rest(), { objectMode: false }), z, () => {});
      for await (const c of z) yield c as Buffer;
      // zlib silently skips zero bytes after the last member; anything it did not consume is trailing data.
      if (z.bytesWritten !== consumed) throw invalidArgument("Invalid layer: data after the end of the gzip stream");
    } else {
      yield* zstdFrames(rest(), signal);
    }
  } catch (e) {
    if (signal?.aborted) throw canceled("Layer decompression was canceled", { cause: e });
    // zlib reports corrupt input with codes Z_* (gzip) and ZSTD_error_* (zstd).
    const code = (e as NodeJS.ErrnoException | null)?.code;
    if (e instanceof Error && typeof code === "string" && (code.startsWith("Z_") || code.startsWith("ZSTD_"))) {
      throw invalidArgument(`Invalid layer: ${e.message.charAt(0).toLowerCase()}${e.message.slice(1)}`, { cause: e });
    }
    throw e;
  } finally {
    await it.return?.();
  }
}

// ---------------------------------------------------------------- zstd

const ZSTD_MAGIC = 0xfd2fb528;

interface Segment {
  data: Buffer;
  /** The segment belongs to a skippable frame (not fed to the decoder). */
  skip: boolean;
  /** The frame ends with this segment. */
  end: boolean;
}

type ZState = "magic" | "fhd" | "fheader" | "bheader" | "bbody" | "checksum" | "skipsize" | "skipbody";

/**
 * Splits a zstd stream into frames by reading the frame and block headers (RFC 8878). Node's
 * decoder stops silently after the first frame and does not report truncation, so berth finds
 * the frame boundaries itself: each frame gets a fresh decoder, and input that ends inside a
 * frame, or continues with something that is not a frame, is an error.
 */
class ZstdScanner {
  #state: ZState = "magic";
  #acc: number[] = [];
  #need = 0;
  #skip = false;
  #checksum = false;

  push(chunk: Buffer): Segment[] {
    const out: Segment[] = [];
    let segStart = 0;
    let off = 0;
    const len = chunk.length;
    const emitEnd = (endOff: number) => {
      out.push({ data: chunk.subarray(segStart, endOff), skip: this.#skip, end: true });
      segStart = endOff;
      this.#state = "magic";
      this.#acc = [];
    };
    while (off < len) {
      switch (this.#state) {
        case "magic": {
          this.#acc.push(chunk[off++]!);
          if (this.#acc.length < 4) break;
          const m = (this.#acc[0]! | (this.#acc[1]! << 8) | (this.#acc[2]! << 16) | (this.#acc[3]! << 24)) >>> 0;
          if (m === ZSTD_MAGIC) {
            this.#skip = false;
            this.#state = "fhd";
          } else if ((m & 0xfffffff0) >>> 0 === 0x184d2a50) {
            this.#skip = true;
            this.#state = "skipsize";
          } else throw invalidArgument("Invalid layer: data after the end of the zstd stream");
          // The magic may straddle chunks: hand it to the decoder as its own piece.
          out.push({ data: Buffer.from(this.#acc), skip: this.#skip, end: false });
          segStart = off;
          this.#acc = [];
          break;
        }
        case "fhd": {
          const fhd = chunk[off++]!;
          if (fhd & 0x08) throw invalidArgument("Invalid layer: corrupt zstd frame header");
          const fcsFlag = fhd >> 6;
          const single = (fhd >> 5) & 1;
          this.#checksum = ((fhd >> 2) & 1) === 1;
          const dict = [0, 1, 2, 4][fhd & 3]!;
          const fcs = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag]!;
          this.#need = (single ? 0 : 1) + dict + fcs;
          this.#state = this.#need ? "fheader" : "bheader";
          this.#acc = [];
          break;
        }
        case "fheader": {
          const n = Math.min(this.#need, len - off);
          off += n;
          this.#need -= n;
          if (this.#need === 0) this.#state = "bheader";
          break;
        }
        case "bheader": {
          this.#acc.push(chunk[off++]!);
          if (this.#acc.length < 3) break;
          const h = this.#acc[0]! | (this.#acc[1]! << 8) | (this.#acc[2]! << 16);
          this.#acc = [];
          const last = (h & 1) === 1;
          const type = (h >> 1) & 3;
          const size = h >>> 3;
          if (type === 3) throw invalidArgument("Invalid layer: corrupt zstd block");
          this.#need = type === 1 ? 1 : size;
          // Remember whether this block ends the frame by encoding it in the state after the body.
          this.#lastBlock = last;
          this.#state = "bbody";
          if (this.#need === 0) this.#afterBlock(off, emitEnd);
          break;
        }
        case "bbody": {
          const n = Math.min(this.#need, len - off);
          off += n;
          this.#need -= n;
          if (this.#need === 0) this.#afterBlock(off, emitEnd);
          break;
        }
        case "checksum": {
          const n = Math.min(this.#need, len - off);
          off += n;
          this.#need -= n;
          if (this.#need === 0) emitEnd(off);
          break;
        }
        case "skipsize": {
          this.#acc.push(chunk[off++]!);
          if (this.#acc.length < 4) break;
          this.#need = (this.#acc[0]! | (this.#acc[1]! << 8) | (this.#acc[2]! << 16) | (this.#acc[3]! << 24)) >>> 0;
          this.#acc = [];
          this.#state = "skipbody";
          if (this.#need === 0) emitEnd(off);
          break;
        }
        case "skipbody": {
          const n = Math.min(this.#need, len - off);
          off += n;
          this.#need -= n;
          if (this.#need === 0) emitEnd(off);
          break;
        }
      }
    }
    if (segStart < len && this.#state !== "magic") out.push({ data: chunk.subarray(segStart, len), skip: this.#skip, end: false });
    return out;
  }

  #lastBlock = false;

  #afterBlock(off: number, emitEnd: (o: number) => void): void {
    if (!this.#lastBlock) {
      this.#state = "bheader";
      return;
    }
    if (this.#checksum) {
      this.#need = 4;
      this.#state = "checksum";
    } else emitEnd(off);
  }

  /** Throws if the input stopped inside a frame. */
  end(): void {
    if (this.#state !== "magic" || this.#acc.length) throw invalidArgument("Invalid layer: truncated zstd stream");
  }
}

async function* zstdSegments(src: AsyncIterable<Buffer>): AsyncGenerator<Segment> {
  const scanner = new ZstdScanner();
  for await (const chunk of src) yield* scanner.push(chunk);
  scanner.end();
}

async function* zstdFrames(src: AsyncIterable<Buffer>, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  const it = zstdSegments(src)[Symbol.asyncIterator]();
  const stop = new AbortController();
  try {
    let next = await it.next();
    while (!next.done) {
      const first = next.value;
      if (first.skip) {
        next = await it.next();
        continue;
      }
      const dec = createZstdDecompress({ chunkSize: CHUNK });
      const feed = async () => {
        let s = first;
        for (;;) {
          signal?.throwIfAborted();
          if (!dec.write(s.data)) await once(dec, "drain", { signal: stop.signal });
          if (s.end) break;
          const r = await it.next();
          if (r.done) throw invalidArgument("Invalid layer: truncated zstd stream");
          s = r.value;
        }
        dec.end();
      };
      let feedError: unknown;
      const fed = feed().catch((e) => {
        feedError = e;
        dec.destroy(e instanceof Error ? e : new Error(String(e)));
      });
      try {
        for await (const c of dec) yield c as Buffer;
      } catch (e) {
        throw feedError ?? e;
      }
      await fed;
      if (feedError) throw feedError;
      next = await it.next();
    }
  } finally {
    stop.abort();
    await it.return?.(undefined);
  }
}

// ---------------------------------------------------------------- compression

/** Digests of a compressed layer, known once its stream has been read to the end. */
export interface CompressedLayerInfo {
  /** Digest of the compressed bytes (the blob / descriptor digest). */
  digest: Digest;
  /** Size of the compressed bytes. */
  size: number;
  /** Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  diffId: Digest;
  /** Size of the uncompressed tar. */
  diffSize: number;
}

/** A compressed layer stream and the digests it will have. */
export interface CompressedLayer {
  stream: Readable;
  /** Resolves after `stream` has ended; rejects if it failed. */
  info: Promise<CompressedLayerInfo>;
}

/** Options for `compressLayer`. */
export interface CompressOptions {
  format?: "gzip" | "zstd";
  /** gzip level 1-9 (default 6, as Docker) or zstd level (default 3). */
  level?: number;
  /**
   * gzip only: store blocks that look incompressible instead of deflating them (_gzip.ts);
   * for layers of freshly written files, where deflate time would dominate.
   */
  adaptive?: boolean;
  signal?: AbortSignal;
}

/**
 * Compresses an uncompressed layer tar, computing the blob digest and the diff ID in the same
 * pass. Used by commit, build and push of locally created layers.
 */
export function compressLayer(tar: AsyncIterable<unknown>, options: CompressOptions = {}): CompressedLayer {
  const diff = createHash("sha256");
  const blob = createHash("sha256");
  let diffSize = 0;
  let size = 0;
  let resolve!: (v: CompressedLayerInfo) => void;
  let reject!: (e: unknown) => void;
  const info = new Promise<CompressedLayerInfo>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  info.catch(() => {});
  async function* tap(): AsyncGenerator<Buffer> {
    for await (const c of tar) {
      const b = toBuffer(c);
      diff.update(b);
      diffSize += b.length;
      yield b;
    }
  }
  const compressor =
    options.format === "zstd"
      ? createZstdCompress({ chunkSize: CHUNK, params: { [zc.ZSTD_c_compressionLevel]: options.level ?? 3 } })
      : options.adaptive
        ? createAdaptiveGzip(options.level ?? 6)
        : createGzip({ chunkSize: CHUNK, level: options.level ?? 6 });
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      blob.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      resolve({
        digest: `sha256:${blob.digest("hex")}` as Digest,
        size,
        diffId: `sha256:${diff.digest("hex")}` as Digest,
        diffSize,
      });
      cb();
    },
  });
  const stream = pipeline(Readable.from(tap(), { objectMode: false }), compressor, counter, (err) => {
    if (err) reject(err);
  });
  if (options.signal) {
    const onAbort = () => stream.destroy(canceled("Layer compression was canceled"));
    if (options.signal.aborted) onAbort();
    else options.signal.addEventListener("abort", onAbort, { once: true });
  }
  return { stream, info };
}

/**
 * The diff ID and uncompressed size of a layer blob without unpacking it (verifies the
 * compressed stream strictly, as `applyLayer` does).
 */
export async function digestLayer(
  blob: AsyncIterable<unknown>,
  options: { signal?: AbortSignal } = {},
): Promise<{ diffId: Digest; size: number }> {
  const h = createHash("sha256");
  let size = 0;
  for await (const c of decompress(blob, options)) {
    h.update(c);
    size += c.length;
  }
  return { diffId: `sha256:${h.digest("hex")}` as Digest, size };
}
