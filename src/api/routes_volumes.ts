import type { Daemon } from "../daemon/mod.ts";
import { matchLabels } from "../volume/mod.ts";
import { checkFilterKeys, qBool, qFilters, type Router, readJson, sendJson, versionLess } from "./http.ts";

function out(v: ReturnType<Daemon["volumes"]["mustGet"]>, usage?: { Size: number; RefCount: number }): Record<string, unknown> {
  const { anonymous: _a, ...rest } = v;
  return usage ? { ...rest, UsageData: usage } : rest;
}

/** Registers the `/volumes/*` routes. */
export function volumeRoutes(router: Router, d: Daemon): void {
  const vs = d.volumes;
  router.add("GET", "/volumes", ({ res, query }) => {
    const f = qFilters(query);
    checkFilterKeys(f, ["dangling", "name", "label", "label!", "driver"]);
    const list = vs.list().filter((v) => {
      const dangling = f.get("dangling")?.[0];
      if (dangling !== undefined && (dangling === "true" || dangling === "1") !== (vs.users(v.Name).length === 0)) return false;
      const names = f.get("name");
      if (names && !names.some((n) => v.Name.includes(n))) return false;
      const drivers = f.get("driver");
      if (drivers && !drivers.includes(v.Driver)) return false;
      return matchLabels(v.Labels, f.get("label") ?? [], f.get("label!") ?? []);
    });
    sendJson(res, 200, { Volumes: list.map((v) => out(v)), Warnings: [] });
  });
  router.add("POST", "/volumes/create", async ({ req, res }) => {
    const body =
      (await readJson<{ Name?: string; Driver?: string; DriverOpts?: Record<string, string>; Labels?: Record<string, string> }>(req)) ?? {};
    const opts: Parameters<typeof vs.create>[0] = {};
    if (body.Name) opts.name = body.Name;
    if (body.Driver) opts.driver = body.Driver;
    if (body.DriverOpts) opts.driverOpts = body.DriverOpts;
    if (body.Labels) opts.labels = body.Labels;
    const v = await vs.create(opts);
    sendJson(res, 201, out(v));
  });
  router.add("POST", "/volumes/prune", async ({ res, query, version }) => {
    const filters = qFilters(query);
    // Before API 1.42 prune removed every unused volume, named ones too (dockerd 20.10 still does).
    if (versionLess(version, "1.42") && !filters.has("all")) filters.set("all", ["true"]);
    sendJson(res, 200, await vs.prune(filters));
  });
  router.add("GET", "/volumes/{name}", ({ res, params }) => {
    sendJson(res, 200, out(vs.mustGet(params.name ?? "")));
  });
  router.add("DELETE", "/volumes/{name}", async ({ res, params, query }) => {
    const name = params.name ?? "";
    await vs.remove(name, qBool(query, "force"));
    res.writeHead(204);
    res.end();
  });
}
