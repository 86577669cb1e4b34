import type { Readable, Writable } from "node:stream";
import { internal, invalidArgument } from "../base/mod.ts";

/** Largest single JSON value accepted from a message stream. */
const MAX_MESSAGE = 64 * 1024 * 1024;

/**
 * Decodes a stream of concatenated JSON values (the Engine API's progress, events and stats
 * streams: usually one object per line, but any whitespace or none may separate them).
 */
export async function* decodeJsonStream<T = unknown>(stream: AsyncIterable<Buffer | string>, reviver?: JsonReviver): AsyncGenerator<T> {
  let buf = "";
  let start = -1;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let scanned = 0;
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    buf += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    let i = scanned;
    for (; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (start < 0) {
        // Between values: skip whitespace, anything else starts a value.
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
        start = i;
        depth = 0;
      }
      if (inString) {
        if (escaped) escaped = false;
        else if (c === 0x5c) escaped = true;
        else if (c === 0x22) inString = false;
        continue;
      }
      if (c === 0x22) inString = true;
      else if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) {
        depth--;
        if (depth === 0) {
          const text = buf.slice(start, i + 1);
          start = -1;
          yield parse<T>(text, reviver);
          buf = buf.slice(i + 1);
          i = -1;
        }
      }
    }
    scanned = buf.length;
    if (start < 0) {
      buf = "";
      scanned = 0;
    } else if (buf.length - start > MAX_MESSAGE) {
      throw invalidArgument(`JSON message from daemon is larger than ${MAX_MESSAGE} bytes`);
    }
  }
  const rest = buf.slice(Math.max(start, 0)).trim();
  if (rest !== "") yield parse<T>(rest, reviver);
}

/** A JSON.parse reviver that also sees the number's source text (to keep int64 values exact). */
export type JsonReviver = (key: string, value: unknown, context: { source?: string }) => unknown;

/** Keeps `timeNano` (int64 nanoseconds, beyond float precision) exact as a bigint. */
export const exactTimeNano: JsonReviver = (key, value, context) =>
  key === "timeNano" && typeof value === "number" && context?.source ? BigInt(context.source) : value;

function parse<T>(text: string, reviver?: JsonReviver): T {
  try {
    return (reviver ? JSON.parse(text, reviver as (k: string, v: unknown) => unknown) : JSON.parse(text)) as T;
  } catch (e) {
    throw invalidArgument(`Invalid JSON message from daemon: ${(e as Error).message}`, { detail: { text: text.slice(0, 200) } });
  }
}

/** Stream numbers of the multiplexed (stdcopy) format. */
export const StdStream = { stdin: 0, stdout: 1, stderr: 2, systemErr: 3 } as const;

/** One frame of a multiplexed stream. */
export interface StdFrame {
  stream: number;
  data: Buffer;
}

/**
 * Splits a multiplexed attach/logs/exec stream (8-byte header: stream byte, 3 zero bytes,
 * big-endian payload size) into frames. A `systemErr` frame is the daemon reporting a failure
 * mid-stream: it ends the iteration with an error carrying that text.
 */
export async function* demuxStream(stream: AsyncIterable<Buffer | string>): AsyncGenerator<StdFrame> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of stream) {
    const b = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    pending = pending.length === 0 ? b : Buffer.concat([pending, b]);
    while (pending.length >= 8) {
      const kind = pending[0] ?? 0;
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      const data = pending.subarray(8, 8 + size);
      pending = pending.subarray(8 + size);
      if (kind === StdStream.systemErr) throw internal(data.toString("utf8"));
      if (kind > 3) throw invalidArgument(`Unrecognized input header: ${kind}`);
      yield { stream: kind, data };
    }
  }
  if (pending.length > 0) {
    // A truncated frame at the end: deliver what arrived, as docker's stdcopy does with a short read.
    const kind = pending[0] ?? 1;
    if (pending.length > 8) yield { stream: kind, data: pending.subarray(8) };
  }
}

/** Copies a multiplexed stream to stdout and stderr writers, honouring backpressure. */
export async function demuxTo(stream: AsyncIterable<Buffer | string>, stdout: Writable, stderr: Writable): Promise<void> {
  for await (const f of demuxStream(stream)) {
    const target = f.stream === StdStream.stderr ? stderr : stdout;
    if (!target.write(f.data)) await new Promise<void>((resolve) => target.once("drain", resolve));
  }
}

/** Encodes one frame of the multiplexed format (for tests and fakes). */
export function encodeFrame(stream: number, data: string | Uint8Array): Buffer {
  const payload = typeof data === "string" ? Buffer.from(data) : Buffer.from(data);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Collects a readable stream into one buffer (bounded). */
export async function collect(stream: Readable, max = 1024 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = typeof c === "string" ? Buffer.from(c) : (c as Buffer);
    n += b.length;
    if (n > max) throw invalidArgument(`Stream is larger than ${max} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
