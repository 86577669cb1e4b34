import type { Readable, Writable } from "node:stream";
import { type Host, RealHost } from "../base/mod.ts";
import { type ClientOptions, ConfigFile, DaemonError, defaultConfigDir, EngineClient, type TlsSettings } from "../client/mod.ts";

/** The program name used in messages (`berth`, or `docker` when invoked under that name). */
export const PROGRAM = "berth";

/** An output stream with what the CLI needs to know about it. */
export interface OutStream {
  stream: Writable;
  isTTY: boolean;
  /** Terminal width, when a terminal. */
  columns?: number;
  rows?: number;
}

/** The input stream. */
export interface InStream {
  stream: Readable;
  isTTY: boolean;
}

/** Global options (docker's global flags). */
export interface GlobalOptions {
  host?: string;
  configDir?: string;
  debug?: boolean;
  logLevel?: string;
  tls?: TlsSettings;
}

/**
 * An error that ends the command with a given exit status (docker's cli.StatusError).
 * `message` (may be empty) is printed to stderr as is.
 */
export class StatusError extends Error {
  readonly code: number;
  constructor(code: number, message = "") {
    super(message);
    this.name = "StatusError";
    this.code = code;
  }
}

/** Wrong number of positional arguments: docker prints the usage and exits 1. */
export class ArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ArgsError";
  }
}

/**
 * Everything a command needs: the streams, the config file, the Engine API client (created on
 * first use), and the Host seam for credential helpers. Tests build one over in-memory streams
 * and a fake daemon socket.
 */
export class Cli {
  readonly out: OutStream;
  readonly err: OutStream;
  readonly in: InStream;
  readonly options: GlobalOptions;
  readonly host: Host;
  readonly env: NodeJS.ProcessEnv;
  #client: EngineClient | undefined;
  #config: ConfigFile | undefined;

  constructor(init: { out: OutStream; err: OutStream; in: InStream; options?: GlobalOptions; host?: Host; env?: NodeJS.ProcessEnv }) {
    this.out = init.out;
    this.err = init.err;
    this.in = init.in;
    this.options = init.options ?? {};
    this.host = init.host ?? new RealHost();
    this.env = init.env ?? process.env;
  }

  /** The Engine API client for `-H`/BERTH_HOST/DOCKER_HOST. */
  get client(): EngineClient {
    if (!this.#client) {
      const o: ClientOptions = {};
      const host = this.options.host ?? this.env.BERTH_HOST ?? this.env.DOCKER_HOST;
      if (host) o.host = host;
      if (this.options.tls) o.tls = this.options.tls;
      if (this.env.DOCKER_API_VERSION) o.version = this.env.DOCKER_API_VERSION;
      const headers = this.configFile().data.HttpHeaders;
      if (headers && typeof headers === "object") o.headers = headers;
      this.#client = new EngineClient(o);
    }
    return this.#client;
  }

  /** The docker config file (~/.docker/config.json or --config). */
  configFile(): ConfigFile {
    this.#config ??= ConfigFile.load(this.options.configDir ?? defaultConfigDir(this.env), this.host);
    return this.#config;
  }

  /** Releases the client's connections. */
  close(): void {
    this.#client?.close();
  }

  /** Writes to stdout, waiting when the stream is full. */
  async write(text: string | Uint8Array): Promise<void> {
    await writeTo(this.out.stream, text);
  }

  /** Writes a line to stdout. */
  async println(text = ""): Promise<void> {
    await writeTo(this.out.stream, `${text}\n`);
  }

  /** Writes a line to stderr. */
  async eprintln(text = ""): Promise<void> {
    await writeTo(this.err.stream, `${text}\n`);
  }
}

/** Writes to a stream and waits for drain when needed. */
export async function writeTo(stream: Writable, data: string | Uint8Array): Promise<void> {
  if (data.length === 0) return;
  if (!stream.write(data)) {
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        stream.off("drain", done);
        stream.off("error", fail);
        stream.off("close", done);
        resolve();
      };
      const fail = (e: Error) => {
        stream.off("drain", done);
        stream.off("close", done);
        reject(e);
      };
      stream.once("drain", done);
      stream.once("error", fail);
      stream.once("close", done);
    });
  }
}

/** The text docker prints for an error: daemon answers get `Error response from daemon: `. */
export function describeError(err: unknown): string {
  if (err instanceof DaemonError) return `Error response from daemon: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
