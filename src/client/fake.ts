import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A request the fake engine received (path without the version prefix). */
export interface FakeRequest {
  method: string;
  path: string;
  version: string | undefined;
  query: URLSearchParams;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

/** A route handler: answer with `res`, or return a value to send as JSON (status 200). */
export type FakeHandler = (req: FakeRequest, res: ServerResponse) => unknown | Promise<unknown>;
/** An upgrade handler: the socket is the raw hijacked connection after the 101 answer was sent. */
export type FakeUpgradeHandler = (req: FakeRequest, socket: Duplex) => void | Promise<void>;

/**
 * An in-process Engine API server on a temporary unix socket, for tests of the client and the
 * CLI: routes are registered per method and path pattern, requests are recorded, hijacked
 * (Upgrade: tcp) endpoints get the raw socket. Unknown routes answer 404 `page not found`.
 */
export class FakeEngine {
  readonly requests: FakeRequest[] = [];
  apiVersion = "1.47";
  #routes: { method: string; re: RegExp; handler: FakeHandler }[] = [];
  #upgrades: { method: string; re: RegExp; handler: FakeUpgradeHandler }[] = [];
  #server: Server;
  #dir: string;
  readonly socketPath: string;

  constructor() {
    this.#dir = mkdtempSync(join(tmpdir(), "berth-fake-engine-"));
    this.socketPath = join(this.#dir, "engine.sock");
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.#upgrade(req, socket, head));
  }

  /** `unix://…` address of the socket. */
  get host(): string {
    return `unix://${this.socketPath}`;
  }

  /** Registers a route; `path` is a string (exact) or a RegExp matched against the unversioned path. */
  on(method: string, path: string | RegExp, handler: FakeHandler): this {
    const re = typeof path === "string" ? new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) : path;
    this.#routes.unshift({ method, re, handler });
    return this;
  }

  /** Registers a hijacked endpoint. */
  onUpgrade(method: string, path: RegExp, handler: FakeUpgradeHandler): this {
    this.#upgrades.unshift({ method, re: path, handler });
    return this;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(this.socketPath, resolve));
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #read(req: IncomingMessage): Promise<FakeRequest> {
    const chunks: Buffer[] = [];
    const upgrade = req.headers.upgrade !== undefined;
    if (!upgrade) for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? "/", "http://fake");
    const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(url.pathname);
    const r: FakeRequest = {
      method: req.method ?? "GET",
      path: decodeURIComponent(m ? (m[2] as string) : url.pathname),
      version: m ? m[1] : undefined,
      query: url.searchParams,
      headers: req.headers,
      body: Buffer.concat(chunks),
    };
    this.requests.push(r);
    return r;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const r = await this.#read(req);
    if (r.path === "/_ping" && !this.#routes.some((x) => x.re.test("/_ping"))) {
      res.writeHead(200, { "Api-Version": this.apiVersion, "Content-Type": "text/plain", OSType: "linux" });
      res.end("OK");
      return;
    }
    const route = this.#routes.find((x) => x.method === r.method && x.re.test(r.path));
    if (!route) {
      res.writeHead(404, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ message: "page not found" }));
      return;
    }
    try {
      const out = await route.handler(r, res);
      if (!res.headersSent && !res.writableEnded) {
        if (out === undefined) {
          res.writeHead(204);
          res.end();
        } else {
          res.writeHead(200, { "Content-Type": "application/json" });
          res.end(JSON.stringify(out));
        }
      }
    } catch (e) {
      if (!res.headersSent) {
        const status = (e as { status?: number }).status ?? 500;
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ message: (e as Error).message }));
      }
    }
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const r = await this.#read(req);
    // A JSON body sent along with the upgrade request arrives in `head`.
    if (head.length > 0) r.body = head;
    const u = this.#upgrades.find((x) => x.method === r.method && x.re.test(r.path));
    if (!u) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n{"message":"page not found"}\n');
      return;
    }
    socket.write("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
    await u.handler(r, socket);
  }
}

/** An error for fake handlers that answers with the given status and `{"message": …}`. */
export function fakeError(status: number, message: string): Error & { status: number } {
  return Object.assign(new Error(message), { status });
}
