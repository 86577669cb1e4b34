/**
 * Streaming gzip decompression on the calling thread, into buffers the caller owns.
 *
 * Node's zlib streams inflate on libuv's thread pool, one job per input chunk or output buffer,
 * each ending in a callback on the JavaScript thread before the next job starts; on a busy
 * machine the inflating thread waits for that callback a good part of the time. The inflate
 * worker (_inflate_worker.ts) has nothing else to do, so it inflates synchronously, straight into
 * the shared slots the main thread reads from, and hashes them there: no thread hand-over, no
 * copy and no garbage per chunk.
 *
 * This drives the zlib binding under `createGunzip()` (its `_handle.writeSync` and `_writeState`,
 * what `zlib.gunzipSync` itself uses) one step at a time. Those are not a public API:
 * `SyncGunzip.create()` returns undefined when they are not there, and callers fall back to the
 * stream. The semantics are the stream's: members of a multi-member file are read one after the
 * other, corrupt input fails with zlib's message and code, and `finish()` fails for a truncated
 * stream. Unlike the stream, input left over after the end of the data is reported (`step`
 * consumes less than it was given), so that trailing garbage is an error for the caller.
 */
import { constants as zc, createGunzip, type Gunzip } from "node:zlib";

interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  onerror: (message: string, errno: number, code?: string) => void;
}

/** zlib's error, as the stream would have reported it (message, `errno`, `code` Z_*). */
export class ZlibError extends Error {
  readonly code: string;
  readonly errno: number;
  constructor(message: string, errno: number, code: string | undefined) {
    super(message);
    this.code = code ?? "Z_DATA_ERROR";
    this.errno = errno;
  }
}

/** What one `step` did. */
export interface Step {
  /** Input bytes consumed. */
  read: number;
  /** Output bytes written. */
  written: number;
}

export class SyncGunzip {
  readonly #z: Gunzip;
  readonly #handle: ZlibHandle;
  readonly #state: Uint32Array;
  #error: ZlibError | undefined;
  #closed = false;

  private constructor(z: Gunzip, handle: ZlibHandle, state: Uint32Array) {
    this.#z = z;
    this.#handle = handle;
    this.#state = state;
    handle.onerror = (message, errno, code) => {
      this.#error = new ZlibError(message, errno, code);
    };
  }

  /** A decompressor, or undefined when this Node has not the binding this relies on. */
  static create(): SyncGunzip | undefined {
    const z = createGunzip();
    const internals = z as unknown as { _handle?: Partial<ZlibHandle>; _writeState?: unknown };
    const handle = internals._handle;
    const state = internals._writeState;
    if (!handle || typeof handle.writeSync !== "function" || !(state instanceof Uint32Array) || state.length < 2) {
      z.close();
      return undefined;
    }
    return new SyncGunzip(z, handle as ZlibHandle, state);
  }

  /**
   * Inflates from `input` into `out` until either is used up, or the compressed data ends
   * (then `read` is less than `input.length` when something follows it). Throws ZlibError for
   * corrupt data.
   */
  step(input: Uint8Array, out: Uint8Array): Step {
    return this.#write(zc.Z_NO_FLUSH, input, out);
  }

  /**
   * The input is complete: writes what zlib still holds into `out`. `written === out.length`
   * means there may be more (call again with a fresh buffer); a stream that ends early fails
   * with "unexpected end of file" (Z_BUF_ERROR).
   */
  finish(out: Uint8Array): Step {
    return this.#write(zc.Z_FINISH, EMPTY, out);
  }

  #write(flush: number, input: Uint8Array, out: Uint8Array): Step {
    if (this.#closed) throw new Error("The decompressor is closed");
    if (this.#error) throw this.#error;
    this.#handle.writeSync(flush, input, 0, input.length, out, 0, out.length);
    if (this.#error) throw this.#error;
    const availOut = this.#state[0] ?? 0;
    const availIn = this.#state[1] ?? 0;
    return { read: input.length - availIn, written: out.length - availOut };
  }

  /** Frees zlib's memory (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#z.close();
  }
}

const EMPTY = new Uint8Array(0);
