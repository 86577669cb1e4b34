import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { invalidArgument, notImplemented } from "../base/mod.ts";
import type { Daemon, RegistryAuth } from "../daemon/mod.ts";
import { JsonStream, qBool, qFilters, type Router, sendJson, versionLess } from "./http.ts";

/** Decodes the docker CLI's `X-Registry-Auth` header (base64url JSON); garbage is no auth. */
export function decodeRegistryAuth(req: IncomingMessage): RegistryAuth | undefined {
  const h = req.headers["x-registry-auth"];
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return undefined;
  try {
    const j = JSON.parse(Buffer.from(v.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8")) as Record<string, unknown>;
    const a: RegistryAuth = {};
    if (typeof j.username === "string" && j.username) a.username = j.username;
    if (typeof j.password === "string" && j.password) a.password = j.password;
    if (typeof j.identitytoken === "string" && j.identitytoken) a.identityToken = j.identitytoken;
    if (typeof j.registrytoken === "string" && j.registrytoken) a.registryToken = j.registrytoken;
    if (typeof j.serveraddress === "string") a.serverAddress = j.serveraddress;
    return Object.keys(a).length ? a : undefined;
  } catch {
    return undefined;
  }
}

/** Aborts when the client goes away before the response is complete (not when the body is consumed). */
function abortOnClose(res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}

/** Registers the `/images/*` routes. */
export function imageRoutes(router: Router, d: Daemon): void {
  router.add("GET", "/images/json", async ({ res, query, version }) => {
    const filters = qFilters(query);
    const legacy = query.get("filter");
    if (legacy) filters.set("reference", [legacy]);
    const list = await d.images.list({
      all: qBool(query, "all"),
      filters,
      digests: qBool(query, "digests"),
      withVirtualSize: versionLess(version, "1.44"),
    });
    sendJson(res, 200, list);
  });

  router.add("POST", "/images/create", async ({ req, res, query }) => {
    const out = new JsonStream(res);
    const fromImage = query.get("fromImage");
    const fromSrc = query.get("fromSrc");
    const signal = abortOnClose(res);
    try {
      if (fromImage) {
        const tag = query.get("tag") ?? "";
        let name = fromImage;
        if (tag) name = tag.startsWith("sha256:") ? `${fromImage}@${tag}` : `${fromImage}:${tag}`;
        const platform = query.get("platform") || undefined;
        await d.images.pull(name, {
          platform,
          auth: decodeRegistryAuth(req),
          // The docker CLI always sends a tag unless `--all-tags`.
          allTags: !tag && !/[:@][^/]*$/.test(fromImage),
          progress: (m) => out.write(m),
          signal,
        });
      } else if (fromSrc) {
        const src = fromSrc === "-" ? req : fromSrc;
        const id = await d.images.importImage(src, {
          repo: query.get("repo") ?? "",
          tag: query.get("tag") ?? "",
          changes: query.getAll("changes"),
          message: query.get("message") ?? "",
          platform: query.get("platform") ?? "",
          signal,
        });
        out.write({ status: id });
      } else {
        throw invalidArgument("fromImage or fromSrc is required");
      }
    } catch (e) {
      out.error(e);
    }
    out.end();
  });

  router.add("POST", "/images/load", async ({ req, res, query }) => {
    const out = new JsonStream(res);
    const quiet = qBool(query, "quiet");
    try {
      await d.images.load(req, { quiet, progress: (m) => out.write(m) });
    } catch (e) {
      out.error(e);
    }
    out.end();
  });

  router.add("GET", "/images/get", async ({ res, query }) => {
    const names = query
      .getAll("names")
      .flatMap((n) => n.split(","))
      .filter(Boolean);
    const tar = await d.images.save(names);
    res.writeHead(200, { "Content-Type": "application/x-tar" });
    await pipeline(tar, res);
  });

  router.add("POST", "/images/prune", async ({ res, query }) => {
    const r = await d.images.prune(qFilters(query));
    await d.gc();
    sendJson(res, 200, r);
  });

  router.add("GET", "/images/search", () => {
    throw notImplemented("Search is not available: berth has no index service configured");
  });

  router.add("GET", "/images/{name*}/get", async ({ res, params }) => {
    const tar = await d.images.save([params.name ?? ""]);
    res.writeHead(200, { "Content-Type": "application/x-tar" });
    await pipeline(tar, res);
  });

  router.add("GET", "/images/{name*}/json", async ({ res, params, version }) => {
    sendJson(res, 200, await d.images.inspect(params.name ?? "", version));
  });

  router.add("GET", "/images/{name*}/history", async ({ res, params }) => {
    sendJson(res, 200, await d.images.history(params.name ?? ""));
  });

  router.add("POST", "/images/{name*}/tag", ({ res, params, query }) => {
    const repo = query.get("repo");
    if (!repo) throw invalidArgument("repository name is required");
    d.images.tag(params.name ?? "", repo, query.get("tag") ?? undefined);
    res.writeHead(201, { "Content-Length": 0 });
    res.end();
  });

  router.add("POST", "/images/{name*}/push", async ({ req, res, params, query }) => {
    const out = new JsonStream(res);
    try {
      await d.images.push(params.name ?? "", {
        tag: query.get("tag") ?? undefined,
        auth: decodeRegistryAuth(req),
        progress: (m) => out.write(m),
        signal: abortOnClose(res),
      });
    } catch (e) {
      out.error(e);
    }
    out.end();
  });

  router.add("DELETE", "/images/{name*}", async ({ res, params, query }) => {
    const r = await d.images.remove(params.name ?? "", { force: qBool(query, "force"), noprune: qBool(query, "noprune") });
    if (!qBool(query, "noprune")) await d.gc();
    sendJson(res, 200, r);
  });
}
