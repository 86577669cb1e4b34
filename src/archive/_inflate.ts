/**
 * Decompression and digesting of a layer blob on a worker thread, for `applyLayer`.
 *
 * Unpacking a layer keeps the main thread busy creating files; decompressing (on libuv's pool)
 * and hashing what comes out, with the stream plumbing and the garbage of a chunk per 128 KiB,
 * cost it almost as much again (hundreds of MB per pull, each chunk also prompting V8 to
 * collect). Here the compressed bytes go to a worker through a shared-memory ring, and the
 * decompressed bytes come back through another as views of shared slots: the main thread only
 * copies the compressed bytes in and parses and writes the tar, allocating nothing per chunk.
 *
 * One worker serves every job of the process, started on first use and ended after a while
 * without jobs (`IDLE_MS`), so an idle daemon does not keep its memory.
 */
import { MessageChannel, Worker } from "node:worker_threads";
import { BerthError, canceled, type Digest, ErrorKind, internal } from "../base/mod.ts";
import type { InflateJobMessage, InflateJobResult } from "./_inflate_worker.ts";
import { RingCanceled, SlotRing } from "./_ring.ts";
import type { Compression } from "./compress.ts";

/** zlib's output chunk in `decompress`: one slot holds one. */
const SLOT = 128 * 1024;
const OUTPUT_SLOTS = 16;
/** Input slots hold registry body chunks (typically up to 64 KiB). */
const INPUT_SLOTS = 32;
const IDLE_MS = 30_000;

/** What a layer's uncompressed stream turned out to be. */
export interface InflateResult {
  diffId: Digest;
  size: number;
  compression: Compression;
}

interface Running {
  worker: Worker;
  /** Fails the jobs of this worker if it dies (they would never hear back). */
  failures: Set<(e: Error) => void>;
}

let current: Running | undefined;
let jobs = 0;
let idle: NodeJS.Timeout | undefined;

function workerUrl(): URL {
  // Run from the sources (.ts) or from the plain-JS build (.js): the worker is its sibling.
  const ext = import.meta.url.endsWith(".ts") ? "ts" : "js";
  return new URL(`./_inflate_worker.${ext}`, import.meta.url);
}

function acquire(): Running {
  if (idle) clearTimeout(idle);
  idle = undefined;
  if (!current) {
    const r: Running = { worker: new Worker(workerUrl()), failures: new Set() };
    r.worker.unref();
    const fail = (e: Error) => {
      if (current === r) current = undefined;
      for (const f of [...r.failures]) f(e);
    };
    r.worker.on("error", (e) => fail(e));
    r.worker.on("exit", (code) => fail(new Error(`The inflate worker exited (code ${code})`)));
    current = r;
  }
  jobs++;
  return current;
}

function release(): void {
  if (--jobs > 0) return;
  idle = setTimeout(() => {
    idle = undefined;
    if (jobs > 0 || !current) return;
    const w = current.worker;
    current = undefined;
    void w.terminate();
  }, IDLE_MS);
  idle.unref();
}

/**
 * One blob's decompression: `chunks()` yields the uncompressed bytes (each view valid only until
 * the next step), `result()` then gives the diff ID. `cancel()` stops both sides; the input
 * stream is closed in every case.
 */
export class InflateJob {
  readonly #input = SlotRing.create(INPUT_SLOTS, 64 * 1024);
  readonly #output = SlotRing.create(OUTPUT_SLOTS, SLOT);
  readonly #result: Promise<InflateJobResult>;
  readonly #pump: Promise<void>;
  #pumpError: unknown;
  #released = false;

  constructor(stream: AsyncIterable<unknown>) {
    const running = acquire();
    const { port1, port2 } = new MessageChannel();
    this.#result = new Promise<InflateJobResult>((resolve) => {
      const onFail = (e: Error) => {
        port1.close();
        this.cancel();
        resolve({ ok: false, message: e.message });
      };
      running.failures.add(onFail);
      port1.once("message", (r: InflateJobResult) => {
        running.failures.delete(onFail);
        port1.close();
        resolve(r);
      });
    });
    void this.#result.then(() => this.#release());
    const job: InflateJobMessage = { port: port2, input: this.#input.memory, output: this.#output.memory };
    running.worker.postMessage(job, [port2]);
    this.#pump = this.#feed(stream);
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    release();
  }

  async #feed(stream: AsyncIterable<unknown>): Promise<void> {
    const it = stream[Symbol.asyncIterator]();
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        const c = r.value;
        if (!(c instanceof Uint8Array)) throw new BerthError(ErrorKind.InvalidArgument, "Layer stream yielded a value that is not bytes");
        await this.#input.write(c);
      }
      this.#input.close();
    } catch (e) {
      if (!(e instanceof RingCanceled)) this.#pumpError = e;
      this.cancel();
    } finally {
      // Done or given up: a download must never wait for a reader that stopped.
      await it.return?.().catch(() => {});
    }
  }

  /** The uncompressed bytes; a view is only valid until the next one is asked for. */
  async *chunks(): AsyncGenerator<Buffer> {
    try {
      yield* this.#output.read();
    } catch (e) {
      if (!(e instanceof RingCanceled)) throw e;
      // Canceled: by the input side failing, by the worker failing, or by `cancel`.
      await this.#pump;
      if (this.#pumpError !== undefined) throw this.#pumpError;
      const r = await this.#result;
      if (!r.ok && !r.canceled) throw toError(r);
      throw canceled("Layer decompression was canceled");
    }
  }

  /** The diff ID and size, once `chunks()` has ended. */
  async result(): Promise<InflateResult> {
    await this.#pump;
    if (this.#pumpError !== undefined) throw this.#pumpError;
    const r = await this.#result;
    if (!r.ok) throw toError(r);
    return { diffId: r.diffId as Digest, size: r.size, compression: r.compression };
  }

  /** Stops the job (idempotent); pending steps on either thread end. */
  cancel(): void {
    this.#input.cancel();
    this.#output.cancel();
  }

  /** Cancels if needed and waits until the input stream is closed. */
  async close(): Promise<void> {
    this.cancel();
    await this.#pump;
  }
}

function toError(r: Extract<InflateJobResult, { ok: false }>): Error {
  if (r.canceled) return canceled("Layer decompression was canceled");
  if (r.kind && (Object.values(ErrorKind) as string[]).includes(r.kind)) return new BerthError(r.kind as ErrorKind, r.message);
  return internal(`Layer decompression failed: ${r.message}`, r.code ? { detail: { code: r.code } } : undefined);
}
