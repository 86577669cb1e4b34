/**
 * Reads conmon's k8s-file logs with Docker's log semantics. Each file line is
 * `<RFC3339Nano time> <stdout|stderr> <P|F> <content>`: `F` ends a line (its newline is the
 * container's), `P` is a piece of a longer line (conmon adds the newline). Pieces are joined
 * into one entry, as Docker's json-file driver records one message per line.
 */
import { open } from "node:fs/promises";
import { invalidArgument } from "../base/mod.ts";
import type { StdStream } from "./attach.ts";

/** One log message. */
export interface LogEntry {
  stream: StdStream;
  /** RFC3339Nano in UTC, as Docker prints with `--timestamps`. */
  time: string;
  /** Nanoseconds since the epoch, for comparisons. */
  timeNanos: bigint;
  /** The bytes, with the trailing newline when the line had one. */
  data: Buffer;
}

/** Options of `readLogs`. */
export interface ReadLogsOptions {
  stdout?: boolean;
  stderr?: boolean;
  /** Only entries at or after this time (ns since the epoch). */
  sinceNanos?: bigint;
  /** Only entries before this time (ns since the epoch). */
  untilNanos?: bigint;
  /** Only the last N entries (before following). */
  tail?: number;
  /** Keep reading new entries until `stopWhen` settles or `signal` aborts. */
  follow?: boolean;
  /** With `follow`: when this settles (the container exited), read what is left and end. */
  stopWhen?: Promise<unknown>;
  signal?: AbortSignal;
  /** Polling interval while following (ms). */
  pollMs?: number;
}

/** Cap on one joined message; longer lines are emitted in pieces. */
const MAX_MESSAGE = 1024 * 1024;

/** Parses an RFC3339 timestamp with up to 9 fractional digits to ns since the epoch. */
export function parseTimestampNanos(ts: string): bigint | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1000000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

/** Formats ns since the epoch as RFC3339Nano UTC (trailing zeros of the fraction trimmed, as Go does). */
export function formatTimestampNanos(ns: bigint): string {
  const ms = ns / 1000000n;
  const frac = (ns % 1000000000n).toString().padStart(9, "0").replace(/0+$/, "");
  const base = new Date(Number(ms)).toISOString().slice(0, 19);
  return `${base}${frac ? `.${frac}` : ""}Z`;
}

/**
 * Parses Docker's `since`/`until` query values: unix seconds with an optional fraction
 * ("1700000000.5"), or an RFC3339 time.
 */
export function parseDockerTime(value: string): bigint {
  const v = value.trim();
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (m) return BigInt(m[1]!) * 1000000000n + BigInt((m[2] ?? "").padEnd(9, "0"));
  const t = parseTimestampNanos(v);
  if (t === undefined) throw invalidArgument(`Invalid time "${value}"`);
  return t;
}

interface Line {
  stream: StdStream;
  timeNanos: bigint;
  partial: boolean;
  content: Buffer;
}

function parseLine(line: Buffer): Line | undefined {
  // "<time> <stream> <tag> <content>": find the first three spaces.
  const s1 = line.indexOf(0x20);
  const s2 = s1 < 0 ? -1 : line.indexOf(0x20, s1 + 1);
  const s3 = s2 < 0 ? -1 : line.indexOf(0x20, s2 + 1);
  if (s3 < 0) return undefined;
  const timeNanos = parseTimestampNanos(line.subarray(0, s1).toString("latin1"));
  const stream = line.subarray(s1 + 1, s2).toString("latin1");
  const tag = line.subarray(s2 + 1, s3).toString("latin1");
  if (timeNanos === undefined || (stream !== "stdout" && stream !== "stderr") || (tag !== "P" && tag !== "F")) return undefined;
  return { stream, timeNanos, partial: tag === "P", content: line.subarray(s3 + 1) };
}

/** Turns file lines into entries, joining partial pieces per stream. */
class Joiner {
  #pending = new Map<StdStream, { timeNanos: bigint; parts: Buffer[]; size: number }>();
  push(l: Line): LogEntry[] {
    const out: LogEntry[] = [];
    let p = this.#pending.get(l.stream);
    if (!p) {
      p = { timeNanos: l.timeNanos, parts: [], size: 0 };
      this.#pending.set(l.stream, p);
    }
    p.parts.push(l.content);
    p.size += l.content.length;
    if (!l.partial) {
      p.parts.push(Buffer.from("\n"));
      out.push(this.#take(l.stream));
    } else if (p.size >= MAX_MESSAGE) out.push(this.#take(l.stream));
    return out;
  }
  #take(stream: StdStream): LogEntry {
    const p = this.#pending.get(stream)!;
    this.#pending.delete(stream);
    return { stream, timeNanos: p.timeNanos, time: formatTimestampNanos(p.timeNanos), data: Buffer.concat(p.parts) };
  }
  /** Unterminated pieces (the process exited mid-line). */
  flush(): LogEntry[] {
    return [...this.#pending.keys()].map((s) => this.#take(s));
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/**
 * Reads a container's log. Without `follow`, ends at the end of the file; with it, keeps
 * reading until `stopWhen` settles (then drains what is left) or `signal` aborts.
 */
export async function* readLogs(path: string, options: ReadLogsOptions = {}): AsyncGenerator<LogEntry> {
  const wantOut = options.stdout !== false;
  const wantErr = options.stderr !== false;
  const keep = (e: LogEntry) =>
    ((e.stream === "stdout" && wantOut) || (e.stream === "stderr" && wantErr)) &&
    (options.sinceNanos === undefined || e.timeNanos >= options.sinceNanos) &&
    (options.untilNanos === undefined || e.timeNanos < options.untilNanos);
  let stopped = false;
  options.stopWhen?.then(
    () => {
      stopped = true;
    },
    () => {
      stopped = true;
    },
  );
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const joiner = new Joiner();
  let position = 0;
  let rest = Buffer.alloc(0);
  const buf = Buffer.alloc(64 * 1024);
  const readAvailable = async (): Promise<LogEntry[]> => {
    const out: LogEntry[] = [];
    if (!fh) {
      try {
        fh = await open(path, "r");
      } catch {
        return out;
      }
    }
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      let chunk = Buffer.concat([rest, buf.subarray(0, bytesRead)]);
      let nl = chunk.indexOf(0x0a);
      while (nl >= 0) {
        const l = parseLine(chunk.subarray(0, nl));
        if (l) for (const e of joiner.push(l)) if (keep(e)) out.push(e);
        chunk = chunk.subarray(nl + 1);
        nl = chunk.indexOf(0x0a);
      }
      rest = Buffer.from(chunk);
    }
    return out;
  };
  try {
    // The existing content: all of it, or the last `tail` entries (ring buffer, bounded memory).
    const tail = options.tail !== undefined && options.tail >= 0 ? options.tail : undefined;
    let initial: LogEntry[] = [];
    for (;;) {
      const batch = await readAvailable();
      if (!batch.length) break;
      initial.push(...batch);
      if (tail !== undefined && initial.length > tail) initial = initial.slice(initial.length - tail);
    }
    if (!options.follow || stopped) {
      for (const e of joiner.flush()) if (keep(e)) initial.push(e);
      if (tail !== undefined && initial.length > tail) initial = initial.slice(initial.length - tail);
    }
    for (const e of initial) yield e;
    if (!options.follow) return;
    for (;;) {
      if (options.signal?.aborted) return;
      const wasStopped = stopped;
      for (const e of await readAvailable()) yield e;
      if (wasStopped) {
        for (const e of joiner.flush()) if (keep(e)) yield e;
        return;
      }
      if (options.untilNanos !== undefined && BigInt(Date.now()) * 1000000n >= options.untilNanos) return;
      await sleep(options.pollMs ?? 100, options.signal);
    }
  } finally {
    await fh?.close();
  }
}
