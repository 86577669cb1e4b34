/**
 * Client side of conmon's attach socket: an AF_UNIX SOCK_SEQPACKET socket at `<bundle>/attach`.
 * Each packet from conmon is one read of the container's output prefixed by a byte naming the
 * stream (2 stdout, 3 stderr); packets to conmon are raw stdin bytes. Half-closing our side
 * (shutdown SHUT_WR) is stdin EOF. conmon closes the socket after the container exits and its
 * output is drained. Node's `net` cannot open SEQPACKET sockets, so this uses the prebuilt
 * `node-unix-socket` addon.
 */
import { closeSync, constants, openSync } from "node:fs";
import { SeqpacketSocket } from "node-unix-socket";
import { failedPrecondition, unavailable } from "../base/mod.ts";

/** Which output stream a chunk came from. */
export type StdStream = "stdout" | "stderr";

/** Options of `attachSocket`. */
export interface AttachSocketOptions {
  /** Receives live output; in TTY mode everything is stdout. */
  onData?: (stream: StdStream, data: Buffer) => void;
  signal?: AbortSignal;
}

/** A live connection to a container's (or exec session's) stdio. */
export interface AttachSession {
  /** Writes to the process's stdin; resolves when handed to the kernel. */
  write(data: Uint8Array): Promise<void>;
  /** Closes stdin (EOF for the process), keeps receiving output. */
  end(): void;
  /** Detaches: closes the connection, the process keeps running. */
  close(): void;
  /** Settles when the monitor closes the stream (the process exited) or on `close()`. */
  readonly done: Promise<void>;
}

/** conmon reads stdin packets into a 32 KiB buffer; stay well below it so nothing is truncated. */
const MAX_PACKET = 16 * 1024;
/** sun_path is 108 bytes on Linux. */
const MAX_SOCKET_PATH = 107;

/** Connects to an attach socket. */
export async function attachSocket(path: string, options: AttachSocketOptions = {}): Promise<AttachSession> {
  let dirFd: number | undefined;
  let connectPath = path;
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    // Long data roots: reach the socket through a descriptor of its directory.
    const slash = path.lastIndexOf("/");
    dirFd = openSync(path.slice(0, slash) || "/", constants.O_RDONLY | constants.O_DIRECTORY);
    connectPath = `/proc/self/fd/${dirFd}/${path.slice(slash + 1)}`;
  }
  const sock = new SeqpacketSocket();
  let closed = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  const finish = () => {
    if (closed) return;
    closed = true;
    try {
      sock.destroy();
    } catch {
      // Already destroyed.
    }
    options.signal?.removeEventListener("abort", finish);
    resolveDone();
  };
  sock.on("data", (buf: Buffer) => {
    if (buf.length < 1) return;
    const id = buf[0];
    const stream: StdStream | undefined = id === 2 ? "stdout" : id === 3 ? "stderr" : undefined;
    if (stream) options.onData?.(stream, buf.subarray(1));
  });
  sock.on("end", finish);
  sock.on("close", finish);
  sock.on("error", finish);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      try {
        sock.connect(connectPath, () => {
          sock.off("error", reject);
          resolve();
        });
      } catch (e) {
        reject(e);
      }
    });
  } catch (e) {
    finish();
    throw unavailable(`Cannot attach to "${path}": ${(e as Error).message}`, { cause: e });
  } finally {
    if (dirFd !== undefined) closeSync(dirFd);
  }
  if (options.signal?.aborted) finish();
  options.signal?.addEventListener("abort", finish, { once: true });
  let ended = false;
  return {
    async write(data: Uint8Array): Promise<void> {
      if (closed || ended) throw failedPrecondition("Cannot write to stdin: the stream is closed");
      const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      for (let off = 0; off < buf.length; off += MAX_PACKET) {
        const chunk = buf.subarray(off, Math.min(buf.length, off + MAX_PACKET));
        await Promise.race([new Promise<void>((resolve) => sock.write(chunk, 0, chunk.length, () => resolve())), done]);
        if (closed) throw failedPrecondition("Cannot write to stdin: the stream is closed");
      }
    },
    end(): void {
      if (closed || ended) return;
      ended = true;
      sock.end();
    },
    close: finish,
    done,
  };
}
