import { invalidArgument, notFound } from "../base/mod.ts";
import type { EndpointConfigInput, NetworkCreateRequest, NetworkService } from "../network/mod.ts";
import { qFilters, type Router, readJson, sendJson } from "./http.ts";

/**
 * Registers the `/networks/*` routes (list, inspect, create, remove, connect, disconnect,
 * prune) over the daemon's `NetworkService`; shapes and wording follow dockerd.
 */
export function networkRoutes(router: Router, d: { networks: NetworkService }): void {
  const net = () => d.networks;

  router.add("GET", "/networks", ({ res, query }) => {
    // Since API 1.28 the list does not carry the containers of each network (inspect does).
    const list = net()
      .list(qFilters(query))
      .map((n) => ({ ...n, Containers: {} }));
    sendJson(res, 200, list);
  });

  router.add("GET", "/networks/{id}", ({ res, params, query }) => {
    const scope = query.get("scope");
    const n = net().inspect(params.id ?? "");
    if (scope && scope !== "local") throw notFound(`network ${params.id} not found`);
    sendJson(res, 200, n);
  });

  router.add("POST", "/networks/create", async ({ req, res }) => {
    const body = await readJson<NetworkCreateRequest>(req);
    if (!body || typeof body !== "object" || Array.isArray(body)) throw invalidArgument("network create: body must be a JSON object");
    sendJson(res, 201, await net().create(body));
  });

  router.add("DELETE", "/networks/{id}", async ({ res, params }) => {
    await net().remove(params.id ?? "");
    res.writeHead(204);
    res.end();
  });

  router.add("POST", "/networks/{id}/connect", async ({ req, res, params }) => {
    const body = (await readJson<{ Container?: string; EndpointConfig?: EndpointConfigInput | null }>(req)) ?? {};
    if (!body.Container || typeof body.Container !== "string") throw invalidArgument("no container specified");
    await net().connect(params.id ?? "", body.Container, body.EndpointConfig ?? null);
    res.writeHead(200);
    res.end();
  });

  router.add("POST", "/networks/{id}/disconnect", async ({ req, res, params }) => {
    const body = (await readJson<{ Container?: string; Force?: boolean }>(req)) ?? {};
    if (!body.Container || typeof body.Container !== "string") throw invalidArgument("no container specified");
    await net().disconnect(params.id ?? "", body.Container, body.Force === true);
    res.writeHead(200);
    res.end();
  });

  router.add("POST", "/networks/prune", async ({ res, query }) => {
    sendJson(res, 200, await net().prune(qFilters(query)));
  });
}
