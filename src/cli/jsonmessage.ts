/**
 * Renders the Engine API's JSON progress streams (pull, push, load, import, build) as the docker
 * CLI's jsonmessage package does: on a terminal one line per layer id, rewritten in place with
 * ANSI cursor movement and progress bars; elsewhere plain status lines without the bars.
 */
import type { JsonMessage } from "../client/mod.ts";
import { type OutStream, writeTo } from "./cli.ts";
import { humanSize, rfc3339NanoFixed } from "./units.ts";

/** An `errorDetail` received in the stream: the operation failed on the daemon's side. */
export class JsonMessageError extends Error {
  readonly code: number | undefined;
  constructor(message: string, code?: number) {
    super(message);
    this.name = "JsonMessageError";
    this.code = code;
  }
}

const ESC = "\x1b[";

/** Go's Duration.String() of a whole number of seconds (`1m30s`, `2h0m5s`, `0s`). */
export function goDurationSeconds(totalSeconds: number): string {
  if (totalSeconds === 0) return "0s";
  const neg = totalSeconds < 0;
  let s = Math.abs(totalSeconds);
  const h = Math.trunc(s / 3600);
  s -= h * 3600;
  const m = Math.trunc(s / 60);
  s -= m * 60;
  let out = "";
  if (h > 0) out = `${h}h${m}m${s}s`;
  else if (m > 0) out = `${m}m${s}s`;
  else out = `${s}s`;
  return neg ? `-${out}` : out;
}

/** The progress part of a message (`[====>    ]  1.2MB/4.5MB 3s`), as JSONProgress.String(). */
export function progressString(p: NonNullable<JsonMessage["progressDetail"]>, width: number, now = Date.now()): string {
  const current = p.current ?? 0;
  const total = p.total ?? 0;
  if (current <= 0 && total <= 0) return "";
  if (total <= 0) {
    if (!p.units) return humanSize(current).padStart(8);
    return `${current} ${p.units}`;
  }
  let percentage = Math.trunc(Math.trunc((current / total) * 100) / 2);
  if (percentage > 50) percentage = 50;
  let bar = "";
  if (width > 110) {
    const spaces = Math.max(50 - percentage, 0);
    bar = `[${"=".repeat(percentage)}>${" ".repeat(spaces)}] `;
  }
  let numbers = "";
  if (p.hidecounts) numbers = "";
  else if (!p.units) {
    const cur = humanSize(current);
    numbers = `${cur.padStart(8)}/${humanSize(total)}`;
    if (current > total) numbers = cur.padStart(8);
  } else {
    numbers = `${current}/${total} ${p.units}`;
    if (current > total) numbers = `${current} ${p.units}`;
  }
  let left = "";
  if (width > 50 && current > 0 && (p.start ?? 0) > 0 && percentage < 50) {
    const fromStartNs = (now - (p.start as number) * 1000) * 1e6;
    const perEntry = Math.trunc(fromStartNs / current);
    const leftNs = (total - current) * perEntry;
    left = ` ${goDurationSeconds(Math.round(leftNs / 1e9))}`;
  }
  return bar + numbers + left;
}

/** Renders one message; returns the text (without cursor movement around it). */
function renderOne(jm: JsonMessage, isTerminal: boolean, width: number): string | undefined {
  let out = "";
  let endl = "";
  const progress = jm.progressDetail ? progressString(jm.progressDetail, width) : "";
  if (isTerminal && !jm.stream && jm.progressDetail) {
    out += `${ESC}2K\r`;
    endl = "\r";
  } else if (jm.progressDetail && progress !== "") {
    // Progress bars are not shown off a terminal.
    return undefined;
  }
  if (jm.timeNano) out += `${rfc3339NanoFixed(BigInt(jm.timeNano))} `;
  else if (jm.time) out += `${rfc3339NanoFixed(BigInt(jm.time) * 1_000_000_000n)} `;
  if (jm.id) out += `${jm.id}: `;
  if (jm.from) out += `(from ${jm.from}) `;
  if (jm.progressDetail && isTerminal) out += `${jm.status ?? ""} ${progress}${endl}`;
  else if (jm.progress) out += `${jm.status ?? ""} ${jm.progress}${endl}`;
  else if (jm.stream) out += `${jm.stream}${endl}`;
  else out += `${jm.status ?? ""}${endl}\n`;
  return out;
}

/** Options of `displayJsonMessages`. */
export interface DisplayOptions {
  /** Called for `aux` messages (which are not displayed): build image ids, push digests. */
  onAux?: (aux: unknown) => void;
}

/**
 * Displays a JSON message stream on `out`; throws `JsonMessageError` at the first `errorDetail`
 * (after displaying what came before), as docker's DisplayJSONMessagesStream does.
 */
export async function displayJsonMessages(
  messages: AsyncIterable<JsonMessage>,
  out: OutStream,
  options: DisplayOptions = {},
): Promise<void> {
  const isTerminal = out.isTTY;
  const width = out.columns ?? 200;
  let ids = new Map<string, number>();
  for await (const jm of messages) {
    if (jm.aux !== undefined && jm.aux !== null) {
      options.onAux?.(jm.aux);
      continue;
    }
    let diff = 0;
    let text = "";
    if (jm.id && (jm.progressDetail || jm.progress)) {
      let line = ids.get(jm.id);
      if (line === undefined) {
        line = ids.size;
        ids.set(jm.id, line);
        if (isTerminal) text += "\n";
      }
      diff = ids.size - line;
      if (isTerminal && diff > 0) text += `${ESC}${diff}A`;
    } else {
      // Output that is not progress ends the block of lines being updated in place.
      ids = new Map();
    }
    const err = jm.errorDetail ? (jm.errorDetail.message ?? "") : jm.error;
    if (err !== undefined && (jm.errorDetail || jm.error)) {
      await writeTo(out.stream, text);
      throw new JsonMessageError(err, jm.errorDetail?.code);
    }
    const body = renderOne(jm, isTerminal, width);
    if (body !== undefined) text += body;
    if (jm.id && isTerminal && diff > 0) text += `${ESC}${diff}B`;
    await writeTo(out.stream, text);
  }
}
