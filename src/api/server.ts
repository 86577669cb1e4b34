import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type ServerOptions as TlsServerOptions } from "node:https";
import type { Duplex } from "node:stream";
import { invalidArgument, type Logger, notFound } from "../base/mod.ts";
import { API_VERSION, type Ctx, ENGINE_VERSION, type Handler, MIN_API_VERSION, type Router, sendError, versionLess } from "./http.ts";

const VERSION_PREFIX = /^\/v(\d+\.\d+)(\/.*)$/;

/** Headers every dockerd response carries. */
function commonHeaders(res: ServerResponse): void {
  res.setHeader("Api-Version", API_VERSION);
  res.setHeader("Docker-Experimental", "false");
  res.setHeader("Ostype", "linux");
  res.setHeader("Server", `Docker/${ENGINE_VERSION} (linux)`);
}

function route(router: Router, req: IncomingMessage): { ctx: Omit<Ctx, "req" | "res">; handler: Handler } {
  const url = new URL(req.url ?? "/", "http://berth");
  let path = url.pathname;
  let version = API_VERSION;
  const m = VERSION_PREFIX.exec(path);
  if (m) {
    version = m[1] ?? API_VERSION;
    path = m[2] ?? "/";
    if (versionLess(API_VERSION, version)) {
      throw invalidArgument(`client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
    }
    if (versionLess(version, MIN_API_VERSION)) {
      throw invalidArgument(
        `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
      );
    }
  }
  const found = router.match(req.method ?? "GET", path);
  if (found === "method" || found === undefined) throw notFound(`page not found`);
  return { ctx: { params: found.params, query: url.searchParams, version }, handler: found.handler };
}

/**
 * The Engine API HTTP server, built apart from listening so that tests can drive it on any
 * socket. Upgrade requests (attach, exec start) are handed to their route with the raw socket.
 */
export function createApiServer(router: Router, log: Logger, tls?: TlsServerOptions): Server {
  const opts = { keepAlive: true, requestTimeout: 0, headersTimeout: 60000 };
  const server: Server = tls ? (createHttpsServer({ ...opts, ...tls }) as unknown as Server) : createServer(opts);
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    commonHeaders(res);
    let r: ReturnType<typeof route>;
    try {
      r = route(router, req);
    } catch (e) {
      sendError(res, e);
      return;
    }
    const ctx: Ctx = { ...r.ctx, req, res };
    const started = Date.now();
    Promise.resolve()
      .then(() => r.handler(ctx))
      .catch((e: unknown) => {
        log.debug("request failed", { method: req.method, url: req.url, error: (e as Error).message });
        sendError(res, e);
      })
      .finally(() => {
        log.debug("request", { method: req.method, url: req.url, status: res.statusCode, ms: Date.now() - started });
      });
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    let r: ReturnType<typeof route>;
    const fake = upgradeResponse(socket);
    try {
      r = route(router, req);
    } catch (e) {
      sendError(fake, e);
      return;
    }
    // An upgrade request's body (exec start's JSON) arrives in `head`, before the raw stream.
    const len = Number(req.headers["content-length"] ?? 0);
    const readBodyThen = async (): Promise<Ctx> => {
      let buf: Buffer = head;
      if (len > 0 && len <= 1024 * 1024) {
        // The body may arrive after the head: read exactly its length before the raw stream starts.
        while (buf.length < len) {
          const chunk = await new Promise<Buffer | undefined>((resolve) => {
            const onData = (c: Buffer) => {
              socket.off("end", onEnd);
              socket.pause();
              resolve(c);
            };
            const onEnd = () => {
              socket.off("data", onData);
              resolve(undefined);
            };
            socket.once("data", onData);
            socket.once("end", onEnd);
            socket.resume();
          });
          if (!chunk) break;
          buf = Buffer.concat([buf, chunk]);
        }
        return { ...r.ctx, req, res: fake, upgradeSocket: socket, upgradeHead: buf.subarray(len), upgradeBody: buf.subarray(0, len) };
      }
      return { ...r.ctx, req, res: fake, upgradeSocket: socket, upgradeHead: buf, upgradeBody: Buffer.alloc(0) };
    };
    readBodyThen()
      .then((ctx) => r.handler(ctx))
      .catch((e: unknown) => {
        if (!fake.headersSent) sendError(fake, e);
        else socket.destroy();
      });
  });
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
  });
  return server;
}

/**
 * A minimal ServerResponse stand-in over an upgraded socket, so that a route can still answer
 * an upgrade request with an ordinary error before it hijacks the connection.
 */
function upgradeResponse(socket: Duplex): ServerResponse {
  let sent = false;
  const headers: Record<string, string | number> = {};
  const fake = {
    get headersSent() {
      return sent;
    },
    statusCode: 200,
    setHeader(k: string, v: string | number) {
      headers[k] = v;
    },
    writeHead(status: number, h?: Record<string, string | number>) {
      fake.statusCode = status;
      Object.assign(headers, h ?? {});
      const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
      socket.write(`HTTP/1.1 ${status} ${status === 101 ? "UPGRADED" : "Error"}\r\n${lines.join("\r\n")}\r\n\r\n`);
      sent = true;
      return fake;
    },
    write(d: string | Buffer) {
      socket.write(d);
      return true;
    },
    end(d?: string | Buffer) {
      if (d) socket.write(d);
      socket.end();
      return fake;
    },
    destroy() {
      socket.destroy();
    },
  };
  return fake as unknown as ServerResponse;
}
