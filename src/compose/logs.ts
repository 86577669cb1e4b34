/**
 * Output of several containers at once, as Compose prints it: each line prefixed with the
 * container's name padded to the longest one and ` | `, coloured per container on a terminal.
 */
import type { Writable } from "node:stream";
import { demuxStream, type EngineClient } from "../client/mod.ts";

const COLORS = ["36", "33", "32", "35", "34", "1;36", "1;33", "1;32", "1;35", "1;34"];

/** Writes prefixed lines for several containers. */
export class LogPrinter {
  readonly #out: Writable;
  readonly #color: boolean;
  readonly #prefix: boolean;
  #width = 0;
  readonly #colors = new Map<string, string>();
  readonly #partial = new Map<string, string>();

  constructor(out: Writable, options: { color: boolean; prefix?: boolean }) {
    this.#out = out;
    this.#color = options.color;
    this.#prefix = options.prefix ?? true;
  }

  /** Makes a container known so its prefix width and colour are set before output arrives. */
  register(name: string): void {
    if (!this.#colors.has(name)) this.#colors.set(name, COLORS[this.#colors.size % COLORS.length] as string);
    this.#width = Math.max(this.#width, name.length);
  }

  #prefixOf(name: string): string {
    if (!this.#prefix) return "";
    this.register(name);
    const p = `${name.padEnd(this.#width)} | `;
    return this.#color ? `\x1b[${this.#colors.get(name)}m${p}\x1b[0m` : p;
  }

  /** Adds output of a container (any chunking); complete lines are written at once. */
  write(name: string, stream: number, data: string): void {
    const key = `${name}\0${stream}`;
    const text = (this.#partial.get(key) ?? "") + data;
    const lines = text.split("\n");
    this.#partial.set(key, lines.pop() ?? "");
    for (const l of lines) this.#out.write(`${this.#prefixOf(name)}${l.replace(/\r$/, "")}\n`);
  }

  /** Writes what is left of a container's last line. */
  flush(name: string): void {
    for (const [key, rest] of this.#partial) {
      if (key.startsWith(`${name}\0`) && rest !== "") {
        this.#out.write(`${this.#prefixOf(name)}${rest}\n`);
        this.#partial.set(key, "");
      }
    }
  }

  /** A line about a container that is not its output (`x exited with code 0`). */
  event(name: string, text: string): void {
    this.flush(name);
    this.#out.write(this.#color ? `\x1b[${this.#colors.get(name) ?? "0"}m${text}\x1b[0m\n` : `${text}\n`);
  }
}

/** Streams one container's logs into the printer until they end (or the signal aborts). */
export async function pipeLogs(
  client: EngineClient,
  container: { id: string; name: string; tty: boolean },
  printer: LogPrinter,
  options: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string; until?: string; signal?: AbortSignal },
): Promise<void> {
  const o: Parameters<EngineClient["containerLogs"]>[1] = {
    stdout: true,
    stderr: true,
    follow: options.follow ?? false,
    timestamps: options.timestamps ?? false,
  };
  if (options.tail !== undefined) o.tail = options.tail;
  if (options.since !== undefined) o.since = options.since;
  if (options.until !== undefined) o.until = options.until;
  if (options.signal) o.signal = options.signal;
  try {
    const body = await client.containerLogs(container.id, o);
    const decoder = new TextDecoder();
    if (container.tty) {
      for await (const chunk of body) printer.write(container.name, 1, decoder.decode(chunk as Buffer, { stream: true }));
    } else {
      const decoders = new Map<number, InstanceType<typeof TextDecoder>>();
      for await (const f of demuxStream(body as AsyncIterable<Buffer>)) {
        let d = decoders.get(f.stream);
        if (!d) decoders.set(f.stream, (d = new TextDecoder()));
        printer.write(container.name, f.stream, d.decode(f.data, { stream: true }));
      }
    }
  } catch (e) {
    if (!options.signal?.aborted) throw e;
  } finally {
    printer.flush(container.name);
  }
}
