import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import type { Daemon, EngineEvent } from "../daemon/mod.ts";
import { parseTimeFilter } from "../daemon/mod.ts";
import { API_VERSION, BERTH_VERSION, ENGINE_VERSION, MIN_API_VERSION, qFilters, type Router, readJson, sendJson } from "./http.ts";

function kernel(): string {
  return os.release();
}

function osName(): string {
  try {
    const t = readFileSync("/etc/os-release", "utf8");
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(t)?.[1] ?? "Linux";
  } catch {
    return "Linux";
  }
}

function osVersion(): string {
  try {
    return /^VERSION_ID="?([^"\n]*)"?/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "";
  } catch {
    return "";
  }
}

/** "2" when the unified hierarchy has controllers (pure v2), else "1" (v1 or hybrid). */
export function cgroupVersion(): "1" | "2" {
  try {
    const c = readFileSync("/sys/fs/cgroup/cgroup.controllers", "utf8").trim();
    return c.length > 0 ? "2" : "1";
  } catch {
    return "1";
  }
}

/** Registers /_ping, /version, /info, /system/df, /events and /auth. */
export function systemRoutes(
  router: Router,
  d: Daemon,
  extra: { counts: () => { running: number; paused: number; stopped: number } },
): void {
  const ping = (ctx: Parameters<Parameters<Router["add"]>[2]>[0]) => {
    const { res, req } = ctx;
    res.setHeader("Cache-Control", "no-cache, no-store, must-revalidate");
    res.setHeader("Pragma", "no-cache");
    res.setHeader("Builder-Version", "1");
    res.setHeader("Swarm", "inactive");
    res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": 2 });
    res.end(req.method === "HEAD" ? undefined : "OK");
  };
  router.add("GET", "/_ping", ping);
  router.add("HEAD", "/_ping", ping);

  router.add("GET", "/version", ({ res }) => {
    const details = {
      ApiVersion: API_VERSION,
      Arch: "amd64",
      BuildTime: "2026-11-23T00:00:00.000000000+00:00",
      Experimental: "false",
      GitCommit: "berth",
      GoVersion: `node${process.versions.node}`,
      KernelVersion: kernel(),
      MinAPIVersion: MIN_API_VERSION,
      Os: "linux",
    };
    sendJson(res, 200, {
      Platform: { Name: `berth ${BERTH_VERSION}` },
      Components: [
        { Name: "Engine", Version: ENGINE_VERSION, Details: details },
        { Name: "berth", Version: BERTH_VERSION, Details: { GitCommit: "berth" } },
        { Name: "runc", Version: "1.1", Details: { GitCommit: "" } },
      ],
      Version: ENGINE_VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: "berth",
      GoVersion: details.GoVersion,
      Os: "linux",
      Arch: "amd64",
      KernelVersion: kernel(),
      BuildTime: details.BuildTime,
    });
  });

  router.add("GET", "/info", ({ res }) => {
    const c = extra.counts();
    const cfg = d.config;
    const mirrors = cfg.registryMirrors.map((m) => (m.endsWith("/") ? m : `${m}/`));
    const cidrs = ["127.0.0.0/8", "::1/128", ...cfg.insecureRegistries.filter((r) => r.includes("/"))];
    const indexConfigs: Record<string, unknown> = {
      "docker.io": { Name: "docker.io", Mirrors: mirrors, Secure: true, Official: true },
    };
    for (const r of cfg.insecureRegistries.filter((x) => !x.includes("/")))
      indexConfigs[r] = { Name: r, Mirrors: [], Secure: false, Official: false };
    sendJson(res, 200, {
      ID: "berth",
      Containers: c.running + c.paused + c.stopped,
      ContainersRunning: c.running,
      ContainersPaused: c.paused,
      ContainersStopped: c.stopped,
      Images: d.images.store.list().length,
      Driver: "overlay2",
      DriverStatus: [
        ["Backing Filesystem", "extfs"],
        ["Supports d_type", "true"],
        ["Using metacopy", "false"],
        ["Native Overlay Diff", "true"],
      ],
      Plugins: {
        Volume: ["local"],
        Network: ["bridge", "host", "none", "null"],
        Authorization: null,
        Log: ["k8s-file", "json-file", "local"],
      },
      MemoryLimit: true,
      SwapLimit: existsSync("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      IPv4Forwarding: readFileSafe("/proc/sys/net/ipv4/ip_forward") === "1",
      BridgeNfIptables: true,
      BridgeNfIp6tables: true,
      Debug: cfg.debug,
      NFd: 0,
      OomKillDisable: cgroupVersion() === "1",
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: "json-file",
      CgroupDriver: "cgroupfs",
      CgroupVersion: cgroupVersion(),
      NEventsListener: 0,
      KernelVersion: kernel(),
      OperatingSystem: osName(),
      OSVersion: osVersion(),
      OSType: "linux",
      Architecture: os.arch() === "x64" ? "x86_64" : os.arch(),
      IndexServerAddress: "https://index.docker.io/v1/",
      RegistryConfig: {
        AllowNondistributableArtifactsCIDRs: null,
        AllowNondistributableArtifactsHostnames: null,
        InsecureRegistryCIDRs: cidrs,
        IndexConfigs: indexConfigs,
        Mirrors: mirrors,
      },
      NCPU: os.cpus().length,
      MemTotal: os.totalmem(),
      GenericResources: null,
      DockerRootDir: cfg.dataRoot,
      HttpProxy: process.env.HTTP_PROXY ?? "",
      HttpsProxy: process.env.HTTPS_PROXY ?? "",
      NoProxy: process.env.NO_PROXY ?? "",
      Name: os.hostname(),
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: ENGINE_VERSION,
      Runtimes: Object.fromEntries(d.containers.runtime.runtimes().map((r) => [r.name, { path: r.path }])),
      DefaultRuntime: d.containers.runtime.defaultRuntime,
      Swarm: { NodeID: "", NodeAddr: "", LocalNodeState: "inactive", ControlAvailable: false, Error: "", RemoteManagers: null },
      LiveRestoreEnabled: cfg.liveRestore,
      Isolation: "",
      InitBinary: "docker-init",
      ContainerdCommit: { ID: "" },
      RuncCommit: { ID: "" },
      InitCommit: { ID: "" },
      SecurityOptions: ["name=seccomp,profile=builtin", ...(cgroupVersion() === "2" ? ["name=cgroupns"] : [])],
      ProductLicense: "berth",
      Warnings: null,
    });
  });

  router.add("GET", "/system/df", async ({ res, query }) => {
    const types = query.getAll("type");
    const want = (t: string) => types.length === 0 || types.includes(t);
    const images = want("image") ? await d.images.list({ all: true }) : [];
    const layersSize = images.reduce((n, i) => n + i.Size, 0);
    const all = d.containers.store.list();
    const containers = [];
    if (want("container")) {
      for (const c of all) {
        const rw = await d.containers.sizeRw(c);
        containers.push({
          Id: c.Id,
          Names: [c.Name],
          Image: c.ImageName,
          ImageID: c.Image,
          Command: [c.Path, ...c.Args].join(" "),
          Created: Math.floor(Date.parse(c.Created) / 1000),
          State: c.State.Status,
          Status: c.State.Status,
          SizeRw: rw,
          SizeRootFs: rw + (d.images.store.get(c.Image as never)?.size ?? 0),
          Labels: c.Config.Labels ?? {},
          Mounts: [],
        });
      }
    }
    const volumes = [];
    if (want("volume")) {
      for (const v of d.volumes.list()) {
        const { anonymous: _a, ...rest } = v;
        volumes.push({
          ...rest,
          UsageData: { Size: await d.volumes.usage(v.Name).catch(() => -1), RefCount: d.volumes.users(v.Name).length },
        });
      }
    }
    sendJson(res, 200, {
      LayersSize: layersSize,
      Images: images.map((i) => ({ ...i, SharedSize: 0, Containers: all.filter((c) => c.Image === i.Id).length })),
      Containers: containers,
      Volumes: volumes,
      BuildCache: want("build-cache") ? d.builder.usage() : [],
    });
  });

  router.add("GET", "/events", ({ res, query, req }) => {
    const filters = qFilters(query);
    const since = query.get("since");
    const until = query.get("until");
    const sinceNs = since ? BigInt(Math.floor(parseTimeFilter(since) * 1e6)) : undefined;
    // The docker CLI sends whole seconds (`--until 0s` is "now" cut to the second): a whole
    // second means up to its end, as dockerd answers, or the last second's events would be lost.
    const untilMs = until ? parseTimeFilter(until) + (/^\d+$/.test(until) ? 999.999 : 0) : undefined;
    const match = (e: EngineEvent): boolean => {
      for (const [k, vs] of filters) {
        const ok = vs.some((v) => {
          switch (k) {
            case "type":
              return e.Type === v;
            case "event":
            case "action":
              return e.Action === v || e.Action.startsWith(`${v}:`);
            case "image":
              return e.Actor.Attributes.image === v || e.Actor.ID === v || e.Actor.Attributes.name === v || e.Actor.ID.startsWith(v);
            case "container":
              return e.Type === "container" && (e.Actor.ID.startsWith(v) || e.Actor.Attributes.name === v);
            case "network":
              return e.Type === "network" && (e.Actor.ID.startsWith(v) || e.Actor.Attributes.name === v);
            case "volume":
              return e.Type === "volume" && e.Actor.ID === v;
            case "label": {
              const i = v.indexOf("=");
              return i < 0 ? v in e.Actor.Attributes : e.Actor.Attributes[v.slice(0, i)] === v.slice(i + 1);
            }
            case "scope":
              return v === "local";
            case "daemon":
              return e.Type === "daemon";
            default:
              return false;
          }
        });
        if (!ok) return false;
      }
      return true;
    };
    res.writeHead(200, { "Content-Type": "application/json" });
    res.flushHeaders();
    const write = (e: EngineEvent) => {
      if (match(e)) res.write(`${JSON.stringify(e)}\n`);
    };
    if (sinceNs !== undefined) {
      for (const e of d.events.replay(sinceNs, untilMs !== undefined ? BigInt(Math.floor(untilMs * 1e6)) : undefined)) write(e);
    }
    if (untilMs !== undefined && untilMs <= Date.now()) {
      res.end();
      return;
    }
    const unsub = d.events.subscribe(write);
    let timer: NodeJS.Timeout | undefined;
    if (untilMs !== undefined) timer = setTimeout(() => res.end(), untilMs - Date.now());
    const done = () => {
      unsub();
      if (timer) clearTimeout(timer);
    };
    req.on("close", done);
    res.on("close", done);
  });

  router.add("POST", "/auth", async ({ req, res }) => {
    const body = (await readJson<{ username?: string; password?: string; serveraddress?: string; identitytoken?: string }>(req)) ?? {};
    const r = await d.registryLogin(body);
    sendJson(res, 200, { Status: "Login Succeeded", IdentityToken: r.identityToken ?? "" });
  });
}

function readFileSafe(p: string): string {
  try {
    return readFileSync(p, "utf8").trim();
  } catch {
    return "";
  }
}
