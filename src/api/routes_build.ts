import type { IncomingMessage } from "node:http";
import { BerthError, invalidArgument, kindOf, messageOf } from "../base/mod.ts";
import { type BuildRegistryAuth, BuildStepError } from "../build/mod.ts";
import type { ResourceOptions } from "../runtime/mod.ts";
import type { Daemon } from "../daemon/mod.ts";
import { JsonStream, qBool, qFilters, qInt, type Router, sendJson } from "./http.ts";

function jsonParam<T>(q: URLSearchParams, name: string): T | undefined {
  const v = q.get(name);
  if (v === null || v === "") return undefined;
  try {
    return JSON.parse(v) as T;
  } catch {
    throw invalidArgument(`Invalid JSON in query parameter "${name}"`);
  }
}

function stringMap(v: unknown, name: string, nullable: boolean): Record<string, string | null> {
  if (v === undefined) return {};
  if (!v || typeof v !== "object" || Array.isArray(v)) throw invalidArgument(`Query parameter "${name}" must be a JSON object`);
  const out: Record<string, string | null> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x === "string" || (nullable && x === null)) out[k] = x;
    else throw invalidArgument(`Query parameter "${name}": the value of "${k}" must be a string`);
  }
  return out;
}

/** X-Registry-Config: base64url JSON of registry host → credentials. */
function registryConfig(req: IncomingMessage): Map<string, BuildRegistryAuth> {
  const out = new Map<string, BuildRegistryAuth>();
  const h = req.headers["x-registry-config"];
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return out;
  try {
    const j = JSON.parse(Buffer.from(v.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8")) as Record<
      string,
      Record<string, unknown>
    >;
    for (const [host, c] of Object.entries(j ?? {})) {
      if (!c || typeof c !== "object") continue;
      const a: BuildRegistryAuth = {};
      if (typeof c.username === "string" && c.username) a.username = c.username;
      if (typeof c.password === "string" && c.password) a.password = c.password;
      if (typeof c.identitytoken === "string" && c.identitytoken) a.identityToken = c.identitytoken;
      if (typeof c.registrytoken === "string" && c.registrytoken) a.registryToken = c.registrytoken;
      if (typeof c.serveraddress === "string") a.serverAddress = c.serveraddress;
      const key = host.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
      out.set(key === "index.docker.io" ? "docker.io" : key, a);
    }
  } catch {
    // Undecodable credentials: pull anonymously, as dockerd does.
  }
  return out;
}

/**
 * Registers POST /build (the classic builder's API: a tar context in the body, the JSON message
 * stream out) and POST /build/prune.
 *
 * berth-specific: `secrets` is a JSON object of secret id → base64 content, the daemon side of
 * `berth build --secret id=x,src=file` (RUN --mount=type=secret).
 */
export function buildRoutes(router: Router, d: Daemon): void {
  router.add("POST", "/build", async ({ req, res, query }) => {
    if (query.get("remote")) throw new BerthError("NotImplemented", "Building from a remote URL or git repository is not supported");
    if (query.get("version") === "2") {
      throw new BerthError("NotImplemented", "BuildKit is not supported by berthd; use the classic builder (DOCKER_BUILDKIT=0)");
    }
    const buildArgs = stringMap(jsonParam(query, "buildargs"), "buildargs", true);
    const labels = stringMap(jsonParam(query, "labels"), "labels", false) as Record<string, string>;
    const secretsRaw = stringMap(jsonParam(query, "secrets"), "secrets", false);
    const secrets: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(secretsRaw)) secrets[k] = Buffer.from(v ?? "", "base64");
    const auths = registryConfig(req);
    const resources: ResourceOptions = {};
    const num = (k: string) => {
      const v = qInt(query, k);
      return v !== undefined && v !== 0 ? v : undefined;
    };
    const memory = num("memory");
    const memorySwap = num("memswap");
    const cpuShares = num("cpushares");
    const cpuPeriod = num("cpuperiod");
    const cpuQuota = num("cpuquota");
    if (memory !== undefined) resources.memory = memory;
    if (memorySwap !== undefined) resources.memorySwap = memorySwap;
    if (cpuShares !== undefined) resources.cpuShares = cpuShares;
    if (cpuPeriod !== undefined) resources.cpuPeriod = cpuPeriod;
    if (cpuQuota !== undefined) resources.cpuQuota = cpuQuota;
    if (query.get("cpusetcpus")) resources.cpusetCpus = query.get("cpusetcpus") ?? "";
    if (query.get("cpusetmems")) resources.cpusetMems = query.get("cpusetmems") ?? "";
    const ulimits = (jsonParam<{ Name: string; Soft: number; Hard: number }[]>(query, "ulimits") ?? []).map((u) => ({
      name: String(u.Name),
      soft: Number(u.Soft),
      hard: Number(u.Hard),
    }));
    const ac = new AbortController();
    const onClose = () => ac.abort();
    req.socket.on("close", onClose);
    const out = new JsonStream(res);
    const quiet = qBool(query, "q");
    let buffered: Record<string, unknown>[] = [];
    let id = "";
    try {
      await d.builder.build({
        context: req,
        dockerfile: query.get("dockerfile") || undefined,
        tags: query.getAll("t").filter(Boolean),
        buildArgs,
        target: query.get("target") || undefined,
        noCache: qBool(query, "nocache"),
        pull: qBool(query, "pull"),
        quiet,
        labels,
        networkMode: query.get("networkmode") || undefined,
        platform: query.get("platform") || undefined,
        extraHosts: query
          .getAll("extrahosts")
          .flatMap((x) => x.split(","))
          .filter(Boolean),
        secrets,
        resources,
        shmSize: num("shmsize"),
        ulimits,
        auth: (registry) => auths.get(registry),
        progress: (m) => {
          // Quiet: only the result goes out; the rest is shown if the build fails.
          if (quiet) {
            const aux = m.aux as { ID?: string } | undefined;
            if (aux?.ID) id = aux.ID;
            else if (!(id && m.stream === `${id}\n`)) {
              if (buffered.length < 100000) buffered.push(m);
              return;
            }
          }
          out.write(m);
        },
        signal: ac.signal,
      });
    } catch (e) {
      if (!out.started && kindOf(e) !== "Internal" && !(e instanceof BuildStepError)) {
        out.error(e);
      } else {
        for (const m of buffered) out.write(m);
        buffered = [];
        const message = messageOf(e);
        const code = e instanceof BuildStepError ? e.exitCode : 1;
        out.write({ errorDetail: { code, message }, error: message });
      }
      // Drain what the client still sends so that it reads our answer.
      req.resume();
    } finally {
      req.socket.off("close", onClose);
    }
    out.end();
  });

  router.add("POST", "/build/prune", async ({ res, query }) => {
    const filters = qFilters(query);
    const until = filters.get("until")?.[0];
    let untilMs: number | undefined;
    if (until) {
      const m = /^(\d+(?:\.\d+)?)(s|m|h)$/.exec(until);
      untilMs = m ? Date.now() - Number(m[1]) * ({ s: 1000, m: 60000, h: 3600000 }[m[2] as "s"] ?? 1000) : Date.parse(until);
      if (!Number.isFinite(untilMs)) throw invalidArgument(`invalid filter 'until=${until}'`);
    }
    const keep = qInt(query, "keep-storage") ?? qInt(query, "reserved-space");
    const r = d.builder.prune({ all: qBool(query, "all"), until: untilMs, keepStorage: keep });
    const gc = await d.gc();
    sendJson(res, 200, { CachesDeleted: r.CachesDeleted, SpaceReclaimed: r.SpaceReclaimed + gc.bytes });
  });
}
