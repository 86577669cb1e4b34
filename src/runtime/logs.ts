/**
 * Reads conmon's k8s-file logs with Docker's log semantics. Each file line is
 * `<RFC3339Nano time> <stdout|stderr> <P|F> <content>`: `F` ends a line (its newline is the
 * container's), `P` is a piece of a longer line (conmon adds the newline). Pieces are joined
 * into one entry, as Docker's json-file driver records one message per line.
 */
import { existsSync } from "node:fs";
import { copyFile, open, rename, rm, stat, truncate } from "node:fs/promises";
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

/** The rotated files of a log, oldest first (`<path>.N` ... `<path>.1`). */
function rotatedFiles(path: string): string[] {
  const out: string[] = [];
  for (let i = 1; i < 100 && existsSync(`${path}.${i}`); i++) out.unshift(`${path}.${i}`);
  return out;
}

/**
 * Rotates a log that conmon keeps appending to (O_APPEND): `<path>.1` ... shift up, the live
 * file is copied to `<path>.1` and truncated, so that conmon's next write lands at its start.
 * `files` counts the live file too, as Docker's `max-file`. Returns whether it rotated.
 */
export async function rotateLog(path: string, maxSize: number, files: number): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  if (!st || st.size < maxSize || files < 2) return false;
  await rm(`${path}.${files - 1}`, { force: true });
  for (let i = files - 2; i >= 1; i--) {
    if (existsSync(`${path}.${i}`)) await rename(`${path}.${i}`, `${path}.${i + 1}`);
  }
  // Copy and put the copy in place as <path>.1, take what was appended meanwhile, then truncate
  // at once: the window in which a write could land between the last copy and the truncation
  // is a few microseconds. A follower notices the truncation only when <path>.1 is complete.
  const tmp = `${path}.rotating`;
  await copyFile(path, tmp);
  await rename(tmp, `${path}.1`);
  const src = await open(path, "r");
  const dst = await open(`${path}.1`, "a");
  try {
    let at = (await dst.stat()).size;
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await src.read(buf, 0, buf.length, at);
      if (bytesRead === 0) break;
      await dst.write(buf, 0, bytesRead);
      at += bytesRead;
    }
    await truncate(path, 0);
  } finally {
    await src.close();
    await dst.close();
  }
  return true;
}

/**
 * Reads a container's log: its rotated files, oldest first, then the live one. Without
 * `follow`, ends at the end of the live file; with it, keeps reading until `stopWhen` settles
 * (then drains what is left) or `signal` aborts. A rotation while following is noticed by the
 * live file shrinking: the rest of what was read from is in `<path>.1` at the same offsets.
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
  /** Reads `file` from `from` to its end, pushing complete lines; returns the new offset. */
  const readFrom = async (file: Awaited<ReturnType<typeof open>>, from: number, out: LogEntry[]): Promise<number> => {
    let at = from;
    for (;;) {
      const { bytesRead } = await file.read(buf, 0, buf.length, at);
      if (bytesRead === 0) return at;
      at += bytesRead;
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
  };
  let lastRotatedIno = (await stat(`${path}.1`).catch(() => undefined))?.ino;
  /** The live file's first bytes when it was read from its start (a time stamp to the ns). */
  let head: string | undefined;
  const headOf = async (file: Awaited<ReturnType<typeof open>>): Promise<string> => {
    const b = Buffer.alloc(48);
    const { bytesRead } = await file.read(b, 0, b.length, 0);
    return b.subarray(0, bytesRead).toString("latin1");
  };
  const readAvailable = async (): Promise<LogEntry[]> => {
    const out: LogEntry[] = [];
    if (!fh) {
      try {
        fh = await open(path, "r");
      } catch {
        return out;
      }
    }
    // A rotation puts a new file at <path>.1, then truncates the live one. Done when the live
    // file is shorter than what was read, or, if it has grown past that again since, when its
    // first bytes changed (a new <path>.1 alone may be a rotation still under way).
    let rotated = false;
    if (position > 0) {
      rotated = (await fh.stat()).size < position;
      const ino = (await stat(`${path}.1`).catch(() => undefined))?.ino;
      if (!rotated && ino !== undefined && ino !== lastRotatedIno) rotated = (await headOf(fh)) !== head;
      if (rotated) lastRotatedIno = ino;
    }
    if (rotated) {
      // Rotated: finish from the copy, then start the live file over.
      const moved = await open(`${path}.1`, "r").catch(() => undefined);
      if (moved) {
        try {
          await readFrom(moved, position, out);
        } finally {
          await moved.close();
        }
      }
      position = 0;
      rest = Buffer.alloc(0);
      head = undefined;
    }
    const from = position;
    position = await readFrom(fh, position, out);
    if (from === 0 && position > 0) head = await headOf(fh);
    return out;
  };
  try {
    // The existing content: all of it, or the last `tail` entries (ring buffer, bounded memory).
    const tail = options.tail !== undefined && options.tail >= 0 ? options.tail : undefined;
    let initial: LogEntry[] = [];
    for (const old of rotatedFiles(path)) {
      const f = await open(old, "r").catch(() => undefined);
      if (!f) continue;
      try {
        const batch: LogEntry[] = [];
        await readFrom(f, 0, batch);
        initial.push(...batch);
        if (tail !== undefined && initial.length > tail) initial = initial.slice(initial.length - tail);
      } finally {
        await f.close();
      }
    }
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
