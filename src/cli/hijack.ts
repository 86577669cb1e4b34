/**
 * Plumbing for hijacked attach/exec connections, as docker's hijackedIOStreamer: stdin copied
 * to the connection (raw terminal and detach keys with a TTY, half-close at its end), output
 * copied raw (TTY) or demultiplexed to stdout/stderr, and terminal resizes forwarded.
 */
import type { Writable } from "node:stream";
import { demuxStream, type HijackedConnection, StdStream } from "../client/mod.ts";
import { type Cli, writeTo } from "./cli.ts";

/** The default detach sequence: ctrl-p, ctrl-q. */
export const DEFAULT_DETACH_KEYS = [0x10, 0x11];

/** docker's term.ToBytes: `ctrl-p,ctrl-q`, `a`, `ctrl-@`... into bytes. */
export function detachKeysToBytes(keys: string): number[] {
  const out: number[] = [];
  for (const raw of keys.split(",")) {
    const k = raw.trim();
    if (k.length > 1 && k.startsWith("ctrl-")) {
      const c = k.slice(5);
      if (c.length !== 1) throw new Error(`Unknown character: '${k}'`);
      const code = c.toLowerCase().charCodeAt(0);
      if (code >= 0x61 && code <= 0x7a) out.push(code - 0x60);
      else if (c === "@") out.push(0);
      else if (c === "[") out.push(27);
      else if (c === "\\") out.push(28);
      else if (c === "]") out.push(29);
      else if (c === "^") out.push(30);
      else if (c === "_") out.push(31);
      else throw new Error(`Unknown character: '${k}'`);
    } else if (k.length === 1) out.push(k.charCodeAt(0));
    else throw new Error(`Unknown character: '${k}'`);
  }
  return out;
}

/**
 * Watches input for the detach sequence. `feed` returns the bytes to forward now (bytes that may
 * start the sequence are held back) and whether the sequence was completed.
 */
export class EscapeProxy {
  readonly #keys: number[];
  #held: number[] = [];
  constructor(keys: number[]) {
    this.#keys = keys;
  }
  feed(chunk: Uint8Array): { forward: Buffer; detached: boolean } {
    const out: number[] = [];
    for (const b of chunk) {
      if (this.#keys.length > 0 && b === this.#keys[this.#held.length]) {
        this.#held.push(b);
        if (this.#held.length === this.#keys.length) return { forward: Buffer.from(out), detached: true };
        continue;
      }
      if (this.#held.length > 0) {
        out.push(...this.#held);
        this.#held = [];
        if (b === this.#keys[0]) {
          this.#held.push(b);
          continue;
        }
      }
      out.push(b);
    }
    return { forward: Buffer.from(out), detached: false };
  }
}

/** Options of `streamHijacked`. */
export interface HijackStreams {
  conn: HijackedConnection;
  tty: boolean;
  /** Copy stdin to the connection. */
  stdin: boolean;
  stdout?: Writable | undefined;
  stderr?: Writable | undefined;
  detachKeys?: string | undefined;
}

/** How a hijacked session ended. */
export interface HijackResult {
  /** The user typed the detach sequence. */
  detached: boolean;
}

/**
 * Runs the streams of a hijacked connection until the output ends (or, without output, until
 * the input ends), or until the detach sequence.
 */
export async function streamHijacked(cli: Cli, o: HijackStreams): Promise<HijackResult> {
  const socket = o.conn.socket;
  const stdinTty = cli.in.stream as NodeJS.ReadStream;
  const raw = o.stdin && o.tty && cli.in.isTTY && typeof stdinTty.setRawMode === "function";
  let restored = false;
  const restore = () => {
    if (raw && !restored) {
      restored = true;
      stdinTty.setRawMode(false);
    }
  };
  if (raw) {
    stdinTty.setRawMode(true);
    await clearOutputProcessing(cli, stdinTty);
  }

  let resolveDetach: (r: HijackResult) => void = () => {};
  const detached = new Promise<HijackResult>((resolve) => (resolveDetach = resolve));

  // Output.
  const hasOutput = o.stdout !== undefined || o.stderr !== undefined;
  const outputDone = (async () => {
    if (!hasOutput) return;
    try {
      if (o.tty) {
        for await (const chunk of socket) {
          if (o.stdout) await writeTo(o.stdout, chunk as Buffer);
        }
        restore();
      } else {
        for await (const f of demuxStream(socket as AsyncIterable<Buffer>)) {
          const target = f.stream === StdStream.stderr ? o.stderr : o.stdout;
          if (target) await writeTo(target, f.data);
        }
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ECONNRESET" && code !== "ERR_STREAM_PREMATURE_CLOSE") throw e;
    }
  })();

  // Input.
  const inputDone = (async () => {
    if (!o.stdin) {
      o.conn.closeWrite();
      return;
    }
    let proxy: EscapeProxy | undefined;
    if (o.tty) {
      let keys = DEFAULT_DETACH_KEYS;
      if (o.detachKeys) {
        try {
          keys = detachKeysToBytes(o.detachKeys);
        } catch (e) {
          await cli.eprintln(`WARNING: invalid detach escape keys, using default: ${(e as Error).message}`);
        }
      }
      proxy = new EscapeProxy(keys);
    }
    const input = cli.in.stream;
    await new Promise<void>((resolve) => {
      const onData = (chunk: Buffer) => {
        let data = chunk;
        if (proxy) {
          const r = proxy.feed(chunk);
          data = r.forward;
          if (r.detached) {
            cleanup();
            if (data.length) socket.write(data);
            restore();
            resolveDetach({ detached: true });
            resolve();
            return;
          }
        }
        if (data.length && !socket.write(data)) {
          input.pause();
          socket.once("drain", () => input.resume());
        }
      };
      const onEnd = () => {
        cleanup();
        restore();
        o.conn.closeWrite();
        resolve();
      };
      const cleanup = () => {
        input.off("data", onData);
        input.off("end", onEnd);
        input.off("error", onEnd);
        socket.off("close", onClose);
        input.pause();
      };
      const onClose = () => {
        cleanup();
        resolve();
      };
      input.on("data", onData);
      input.on("end", onEnd);
      input.on("error", onEnd);
      socket.on("close", onClose);
      input.resume();
    });
  })();

  try {
    if (hasOutput) {
      const r = await Promise.race([outputDone.then(() => ({ detached: false })), detached]);
      return r;
    }
    const r = await Promise.race([inputDone.then(() => ({ detached: false })), detached]);
    return r;
  } finally {
    restore();
    cli.in.stream.pause();
  }
}

/**
 * libuv's raw mode keeps output post-processing (ONLCR) on, so a container's "\r\n" would reach
 * the screen as "\r\r\n"; docker's raw mode (cfmakeraw) turns it off. `stty -opost` on the same
 * terminal does that; leaving raw mode restores the saved settings.
 */
async function clearOutputProcessing(cli: Cli, tty: NodeJS.ReadStream): Promise<void> {
  const fd = (tty as unknown as { fd?: number }).fd;
  if (typeof fd !== "number") return;
  try {
    const child = cli.host.spawn("stty", ["-opost"], { stdio: [fd, "ignore", "ignore"] });
    await new Promise<void>((resolve) => {
      child.on("error", () => resolve());
      child.on("exit", () => resolve());
    });
  } catch {
    // No stty: the output keeps its extra carriage returns, nothing else changes.
  }
}

/** Sends the terminal size now and on every SIGWINCH; returns a function that stops watching. */
export function monitorTtySize(cli: Cli, resize: (height: number, width: number) => Promise<void>): () => void {
  const out = cli.out.stream as NodeJS.WriteStream;
  const send = async () => {
    const w = out.columns ?? cli.out.columns ?? 0;
    const h = out.rows ?? cli.out.rows ?? 0;
    if (w === 0 && h === 0) return;
    try {
      await resize(h, w);
    } catch {
      // docker retries a few times and then gives up quietly; the default size stays.
    }
  };
  void send();
  const onWinch = () => void send();
  process.on("SIGWINCH", onWinch);
  return () => process.off("SIGWINCH", onWinch);
}

/** Forwards the signals a user sends to the CLI to the container (`--sig-proxy`). */
export function proxySignals(kill: (signal: string) => Promise<void>): () => void {
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM"];
  const handlers = signals.map((s) => {
    const h = () => void kill(s.slice(3)).catch(() => {});
    process.on(s, h);
    return [s, h] as const;
  });
  return () => {
    for (const [s, h] of handlers) process.off(s, h);
  };
}
