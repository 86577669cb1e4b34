/**
 * The inflate worker (see _inflate.ts): for each job, reads a layer blob from its input ring,
 * decompresses it, digests the uncompressed bytes and hands them to the output ring. gzip, what
 * registries serve almost always, is inflated on this thread straight into the output slots
 * (_gunzip.ts), hashed there, and never copied or allocated; zstd and uncompressed tars go
 * through the same strict `decompress` stream as everywhere else. Errors are decompress's: an
 * invalid, truncated or trailing-data blob is InvalidArgument "Invalid layer: ...".
 */
import { createHash, type Hash } from "node:crypto";
import { type MessagePort, parentPort } from "node:worker_threads";
import { BerthError, invalidArgument } from "../base/mod.ts";
import { SyncGunzip, ZlibError } from "./_gunzip.ts";
import { type RingMemory, RingCanceled, SlotRing } from "./_ring.ts";
import { type Compression, decompress, detectCompression } from "./compress.ts";

/** A job as the main thread posts it. */
export interface InflateJobMessage {
  port: MessagePort;
  input: RingMemory;
  output: RingMemory;
}

/** What a job's port receives once, at its end. */
export type InflateJobResult =
  | { ok: true; diffId: string; size: number; compression: Compression }
  | { ok: false; kind?: string; message: string; code?: string; canceled?: boolean };

/** Copies out of the ring's slots (for the stream decompressors, which keep what they are given). */
async function* copies(first: Buffer | undefined, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  if (first) yield first;
  for (;;) {
    const r = await rest.next();
    if (r.done) return;
    yield Buffer.from(r.value);
  }
}

/**
 * gzip, inflated on this thread straight into the output ring's slots (_gunzip.ts): a slot is
 * handed over when it is full, or when the input has nothing ready (so the main thread never
 * waits for bytes this thread holds). Returns the uncompressed size.
 */
async function inflateGzip(gz: SyncGunzip, first: Buffer, input: SlotRing, rest: AsyncIterator<Buffer>, output: SlotRing, hash: Hash) {
  let size = 0;
  let slot: Buffer | undefined;
  let filled = 0;
  const handOver = () => {
    if (!slot || !filled) return;
    const view = slot.subarray(0, filled);
    hash.update(view);
    size += filled;
    output.publish(filled);
    slot = undefined;
    filled = 0;
  };
  const room = async (): Promise<Buffer> => {
    if (slot && filled === slot.length) handOver();
    if (!slot) slot = await output.reserve();
    return slot.subarray(filled);
  };
  try {
    let view: Buffer | undefined = first;
    while (view) {
      let off = 0;
      while (off < view.length) {
        const out = await room();
        const s = gz.step(off ? view.subarray(off) : view, out);
        off += s.read;
        filled += s.written;
        if (off < view.length && s.written < out.length) throw invalidArgument("Invalid layer: data after the end of the gzip stream");
      }
      if (!input.ready) handOver();
      const r = await rest.next();
      view = r.done ? undefined : r.value;
    }
    for (;;) {
      const out = await room();
      const s = gz.finish(out);
      filled += s.written;
      if (s.written < out.length) break;
    }
    handOver();
    return size;
  } catch (e) {
    if (e instanceof ZlibError)
      throw invalidArgument(`Invalid layer: ${e.message.charAt(0).toLowerCase()}${e.message.slice(1)}`, { cause: e });
    throw e;
  } finally {
    gz.close();
  }
}

async function run(job: InflateJobMessage): Promise<void> {
  const input = new SlotRing(job.input);
  const output = new SlotRing(job.output);
  const hash = createHash("sha256");
  let size = 0;
  let compression: Compression = "none";
  let result: InflateJobResult;
  const rest = input.read();
  try {
    const r = await rest.next();
    const first = r.done ? undefined : r.value;
    const gz = first && first.length >= 2 && detectCompression(first) === "gzip" ? SyncGunzip.create() : undefined;
    if (first && gz) {
      compression = "gzip";
      size = await inflateGzip(gz, first, input, rest, output, hash);
    } else {
      // zstd, an uncompressed tar, or a first slot too short to tell: the stream decompressor.
      const head = first ? Buffer.from(first) : undefined;
      for await (const chunk of decompress(copies(head, rest), { onFormat: (f) => (compression = f) })) {
        hash.update(chunk);
        size += chunk.length;
        await output.write(chunk);
      }
    }
    output.close();
    result = { ok: true, diffId: `sha256:${hash.digest("hex")}`, size, compression };
  } catch (e) {
    input.cancel();
    output.cancel();
    if (e instanceof RingCanceled) result = { ok: false, message: e.message, canceled: true };
    else if (e instanceof BerthError) result = { ok: false, kind: e.kind, message: e.message };
    else {
      const code = (e as NodeJS.ErrnoException | null)?.code;
      result = { ok: false, message: e instanceof Error ? e.message : String(e), ...(typeof code === "string" ? { code } : {}) };
    }
  } finally {
    await rest.return(undefined);
  }
  job.port.postMessage(result);
  job.port.close();
}

parentPort?.on("message", (job: InflateJobMessage) => {
  void run(job);
});
