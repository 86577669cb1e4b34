/**
 * Interactive streams of `compose exec` and `compose run`: standard input copied to a hijacked
 * connection (raw mode on a terminal), output copied back (demultiplexed unless there is a TTY),
 * until the daemon ends the stream.
 */
import type { Readable, Writable } from "node:stream";
import { demuxStream, type HijackedConnection } from "../client/mod.ts";

/** The terminal side of an interactive session. */
export interface Terminal {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable;
  stderr: Writable;
}

/**
 * Copies between the terminal and a hijacked connection until the output ends. `sendStdin`
 * copies standard input and half-closes at its end.
 */
export async function pumpStreams(conn: HijackedConnection, term: Terminal, options: { tty: boolean; sendStdin: boolean }): Promise<void> {
  const raw = options.tty && options.sendStdin && term.stdin.isTTY === true && typeof term.stdin.setRawMode === "function";
  if (raw) term.stdin.setRawMode?.(true);
  let onData: ((c: Buffer) => void) | undefined;
  let onEnd: (() => void) | undefined;
  try {
    if (options.sendStdin) {
      onData = (c: Buffer) => {
        conn.socket.write(c);
      };
      onEnd = () => conn.closeWrite();
      term.stdin.on("data", onData);
      term.stdin.once("end", onEnd);
      term.stdin.resume();
    }
    const output = (async () => {
      if (options.tty) {
        for await (const chunk of conn.socket) {
          if (!term.stdout.write(chunk as Buffer)) await new Promise((r) => term.stdout.once("drain", r));
        }
      } else {
        for await (const f of demuxStream(conn.socket as AsyncIterable<Buffer>)) {
          const target = f.stream === 2 ? term.stderr : term.stdout;
          if (!target.write(f.data)) await new Promise((r) => target.once("drain", r));
        }
      }
    })();
    await output.catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ECONNRESET" && e.code !== "EPIPE") throw e;
    });
  } finally {
    if (onData) term.stdin.off("data", onData);
    if (onEnd) term.stdin.off("end", onEnd);
    if (options.sendStdin) term.stdin.pause();
    if (raw) term.stdin.setRawMode?.(false);
    conn.close();
  }
}
