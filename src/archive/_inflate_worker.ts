/**
 * The inflate worker (see _inflate.ts): for each job, reads a layer blob from its input ring,
 * decompresses it with the same strict `decompress` as everywhere else, digests the
 * uncompressed bytes and writes them to the output ring. The decompression itself runs on
 * libuv's thread pool; this thread does the stream plumbing, the sha256 and the copies, and
 * collects the garbage of the decompressed chunks, none of which the main thread sees.
 */
import { createHash } from "node:crypto";
import { type MessagePort, parentPort } from "node:worker_threads";
import { BerthError } from "../base/mod.ts";
import { type RingMemory, RingCanceled, SlotRing } from "./_ring.ts";
import { type Compression, decompress } from "./compress.ts";

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

async function* copies(ring: SlotRing): AsyncGenerator<Buffer> {
  // zlib keeps what it is given until it has inflated it: copy out of the slot, which the
  // main thread reuses as soon as this generator steps on.
  for await (const view of ring.read()) yield Buffer.from(view);
}

async function run(job: InflateJobMessage): Promise<void> {
  const input = new SlotRing(job.input);
  const output = new SlotRing(job.output);
  const hash = createHash("sha256");
  let size = 0;
  let compression: Compression = "none";
  let result: InflateJobResult;
  try {
    for await (const chunk of decompress(copies(input), { onFormat: (f) => (compression = f) })) {
      hash.update(chunk);
      size += chunk.length;
      await output.write(chunk);
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
  }
  job.port.postMessage(result);
  job.port.close();
}

parentPort?.on("message", (job: InflateJobMessage) => {
  void run(job);
});
