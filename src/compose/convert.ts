/**
 * From a normalised service to the Engine API's container create body: config, host config,
 * the first network's endpoint (the others are connected before start), mounts, ports, limits,
 * and the Compose labels.
 */
import type { ContainerCreateBody, EndpointSettings, HostConfig, Mount, PortBinding } from "../client/mod.ts";
import {
  COMPOSE_VERSION,
  CONFIG_FILES_LABEL,
  CONFIG_HASH_LABEL,
  CONTAINER_NUMBER_LABEL,
  DEPENDENCIES_LABEL,
  dependsOnLabel,
  ENVIRONMENT_FILE_LABEL,
  IMAGE_DIGEST_LABEL,
  ONEOFF_LABEL,
  PROJECT_LABEL,
  SERVICE_LABEL,
  SLUG_LABEL,
  serviceHash,
  VERSION_LABEL,
  WORKING_DIR_LABEL,
} from "./labels.ts";
import type { Project, Service, ServiceNetwork } from "./model.ts";
import { parseBytes, parseDuration } from "./units.ts";

/** The image a service runs: `image`, else `<project>-<service>` for a built one. */
export function serviceImage(project: Project, name: string, service: Service): string {
  return service.image ?? `${project.name}-${name}`;
}

/** The container name of replica `number` (`<project>-<service>-<n>`, or `container_name`). */
export function containerName(project: Project, name: string, service: Service, number: number): string {
  return service.container_name ?? `${project.name}-${name}-${number}`;
}

/** The networks a service joins, highest priority first (ties by name), with their settings. */
export function serviceNetworks(service: Service): [string, ServiceNetwork | null][] {
  return Object.entries(service.networks ?? {}).sort(([a, x], [b, y]) => {
    const pa = x?.priority ?? 0;
    const pb = y?.priority ?? 0;
    return pa !== pb ? pb - pa : a.localeCompare(b);
  });
}

/** The endpoint settings of a service on one of its networks. */
export function endpointSettings(name: string, cfg: ServiceNetwork | null): EndpointSettings {
  const e: EndpointSettings = { Aliases: [name, ...(cfg?.aliases ?? [])] };
  if (cfg?.ipv4_address || cfg?.ipv6_address) {
    e.IPAMConfig = {};
    if (cfg.ipv4_address) e.IPAMConfig.IPv4Address = cfg.ipv4_address;
    if (cfg.ipv6_address) e.IPAMConfig.IPv6Address = cfg.ipv6_address;
  }
  if (cfg?.mac_address) e.MacAddress = cfg.mac_address;
  if (cfg?.driver_opts) e.DriverOpts = cfg.driver_opts;
  return e;
}

/** What varies between the containers of a service. */
export interface ContainerSpec {
  number: number;
  /** The image's ID (digest), recorded in `com.docker.compose.image`. */
  imageId?: string;
  /** One-off containers of `compose run`. */
  oneoff?: {
    slug: string;
    command?: string[];
    entrypoint?: string[];
    env?: string[];
    tty?: boolean;
    interactive?: boolean;
    user?: string;
    workdir?: string;
    servicePorts?: boolean;
    publish?: string[];
  };
  /** Resolves `service:x` / `volumes_from` / `links` to a container name of service x. */
  containerOf?: (service: string) => string | undefined;
}

function durationNs(d: string | undefined): number | undefined {
  return d === undefined ? undefined : parseDuration(d);
}

/** Builds the create body of one container of a service. */
export function createBody(project: Project, name: string, service: Service, spec: ContainerSpec): ContainerCreateBody {
  const labels: Record<string, string> = { ...(service.labels ?? {}) };
  labels[PROJECT_LABEL] = project.name;
  labels[SERVICE_LABEL] = name;
  labels[CONTAINER_NUMBER_LABEL] = String(spec.number);
  labels[ONEOFF_LABEL] = spec.oneoff ? "True" : "False";
  labels[CONFIG_HASH_LABEL] = serviceHash(service);
  labels[VERSION_LABEL] = COMPOSE_VERSION;
  labels[WORKING_DIR_LABEL] = project.workingDir;
  labels[CONFIG_FILES_LABEL] = project.configFiles.join(",");
  if (project.envFiles.length) labels[ENVIRONMENT_FILE_LABEL] = project.envFiles.join(",");
  labels[DEPENDENCIES_LABEL] = dependsOnLabel(service);
  if (spec.imageId) labels[IMAGE_DIGEST_LABEL] = spec.imageId;
  if (spec.oneoff) labels[SLUG_LABEL] = spec.oneoff.slug;

  const env = Object.entries(service.environment ?? {})
    .filter((e): e is [string, string] => e[1] !== null)
    .map(([k, v]) => `${k}=${v}`);
  if (spec.oneoff?.env) env.push(...spec.oneoff.env);

  const body: ContainerCreateBody = {
    Image: serviceImage(project, name, service),
    Labels: labels,
    Env: env,
    AttachStdout: true,
    AttachStderr: true,
  };
  if (service.hostname !== undefined) body.Hostname = service.hostname;
  if (service.domainname !== undefined) body.Domainname = service.domainname;
  const user = spec.oneoff?.user ?? service.user;
  if (user !== undefined) body.User = user;
  const wd = spec.oneoff?.workdir ?? service.working_dir;
  if (wd !== undefined) body.WorkingDir = wd;
  const tty = spec.oneoff?.tty ?? service.tty;
  if (tty !== undefined) body.Tty = tty;
  const interactive = spec.oneoff?.interactive ?? service.stdin_open;
  if (interactive) {
    body.OpenStdin = true;
    if (spec.oneoff) {
      body.AttachStdin = true;
      body.StdinOnce = true;
    }
  }
  const cmd = spec.oneoff?.command ?? service.command;
  if (cmd !== undefined && cmd !== null) body.Cmd = cmd;
  const ep = spec.oneoff?.entrypoint ?? service.entrypoint;
  if (ep !== undefined && ep !== null) body.Entrypoint = ep.length === 0 ? [""] : ep;
  if (service.stop_signal !== undefined) body.StopSignal = service.stop_signal;
  if (service.stop_grace_period !== undefined) body.StopTimeout = Math.round(parseDuration(service.stop_grace_period) / 1e9);
  if (service.mac_address !== undefined) body.MacAddress = service.mac_address;
  const hc = service.healthcheck;
  if (hc) {
    if (hc.disable) body.Healthcheck = { Test: ["NONE"] };
    else {
      const h: NonNullable<ContainerCreateBody["Healthcheck"]> = {};
      if (hc.test) h.Test = hc.test;
      const iv = durationNs(hc.interval);
      if (iv !== undefined) h.Interval = iv;
      const to = durationNs(hc.timeout);
      if (to !== undefined) h.Timeout = to;
      const sp = durationNs(hc.start_period);
      if (sp !== undefined) h.StartPeriod = sp;
      const si = durationNs(hc.start_interval);
      if (si !== undefined) h.StartInterval = si;
      if (hc.retries !== undefined) h.Retries = hc.retries;
      body.Healthcheck = h;
    }
  }

  const hostConfig: HostConfig = {};
  // Ports: exposed for every target and `expose`; bound when published (or with --service-ports).
  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, PortBinding[]> = {};
  const publish = !spec.oneoff || spec.oneoff.servicePorts === true;
  for (const p of service.ports ?? []) {
    const key = `${p.target}/${p.protocol}`;
    exposed[key] = {};
    if (!publish) continue;
    const b: PortBinding = { HostIp: p.host_ip ?? "", HostPort: p.published ?? "" };
    bindings[key] = [...(bindings[key] ?? []), b];
  }
  for (const p of spec.oneoff?.publish ?? []) {
    const m = /^(?:(.*):)?(\d*):(\d+)(?:\/(\w+))?$/.exec(p);
    if (!m) continue;
    const key = `${m[3]}/${m[4] ?? "tcp"}`;
    exposed[key] = {};
    bindings[key] = [...(bindings[key] ?? []), { HostIp: m[1] ?? "", HostPort: m[2] ?? "" }];
  }
  for (const e of service.expose ?? []) {
    const [port, proto] = e.split("/");
    exposed[`${port}/${proto ?? "tcp"}`] = {};
  }
  if (Object.keys(exposed).length) body.ExposedPorts = exposed;
  if (Object.keys(bindings).length) hostConfig.PortBindings = bindings;

  // Mounts.
  const binds: string[] = [];
  const mounts: Mount[] = [];
  const anonymous: Record<string, Record<string, never>> = {};
  for (const v of service.volumes ?? []) {
    if (v.type === "bind" && v.bind?.create_host_path && !v.bind.recursive && v.source) {
      const opts = [v.read_only ? "ro" : "rw"];
      if (v.bind.selinux) opts.push(v.bind.selinux);
      if (v.bind.propagation) opts.push(v.bind.propagation);
      binds.push(`${v.source}:${v.target}:${opts.join(",")}`);
    } else if (v.type === "volume" && v.source === undefined) {
      anonymous[v.target] = {};
    } else {
      const m: Mount = { Type: v.type === "npipe" ? "npipe" : v.type, Target: v.target };
      if (v.read_only) m.ReadOnly = true;
      if (v.type === "volume") {
        m.Source = project.volumes[v.source as string]?.name ?? v.source;
        const vo: NonNullable<Mount["VolumeOptions"]> = {};
        if (v.volume?.nocopy) vo.NoCopy = true;
        if (v.volume?.subpath) vo.Subpath = v.volume.subpath;
        if (Object.keys(vo).length) m.VolumeOptions = vo;
      } else if (v.type === "bind") {
        if (v.source !== undefined) m.Source = v.source;
        const bo: NonNullable<Mount["BindOptions"]> = {};
        if (v.bind?.propagation) bo.Propagation = v.bind.propagation;
        if (v.bind?.create_host_path) bo.CreateMountpoint = true;
        if (v.bind?.recursive === "disabled") bo.NonRecursive = true;
        if (v.bind?.recursive === "readonly") bo.ReadOnlyForceRecursive = true;
        if (Object.keys(bo).length) m.BindOptions = bo;
      } else if (v.type === "tmpfs") {
        const to: NonNullable<Mount["TmpfsOptions"]> = {};
        if (v.tmpfs?.size !== undefined) to.SizeBytes = v.tmpfs.size;
        if (v.tmpfs?.mode !== undefined) to.Mode = v.tmpfs.mode;
        if (Object.keys(to).length) m.TmpfsOptions = to;
      } else if (v.source !== undefined) m.Source = v.source;
      mounts.push(m);
    }
  }
  for (const kind of ["secrets", "configs"] as const) {
    for (const ref of service[kind] ?? []) {
      const obj = project[kind][ref.source];
      if (!obj?.file) continue;
      const target = fileTarget(kind, ref.source, ref.target);
      mounts.push({ Type: "bind", Source: obj.file, Target: target, ReadOnly: true });
    }
  }
  if (binds.length) hostConfig.Binds = binds;
  if (mounts.length) hostConfig.Mounts = mounts;
  if (Object.keys(anonymous).length) body.Volumes = anonymous;
  if (service.tmpfs?.length) {
    hostConfig.Tmpfs = {};
    for (const t of service.tmpfs) {
      const i = t.indexOf(":");
      if (i < 0) hostConfig.Tmpfs[t] = "";
      else hostConfig.Tmpfs[t.slice(0, i)] = t.slice(i + 1);
    }
  }

  // Networking.
  const nets = serviceNetworks(service);
  if (service.network_mode !== undefined) {
    const mode = service.network_mode;
    if (mode.startsWith("service:")) {
      const other = spec.containerOf?.(mode.slice(8));
      hostConfig.NetworkMode = `container:${other ?? mode.slice(8)}`;
    } else hostConfig.NetworkMode = mode;
  } else if (nets.length > 0) {
    const [key, cfg] = nets[0] as [string, ServiceNetwork | null];
    const netName = project.networks[key]?.name ?? key;
    hostConfig.NetworkMode = netName;
    body.NetworkingConfig = { EndpointsConfig: { [netName]: endpointSettings(name, cfg) } };
  }

  // Restart policy.
  if (service.restart !== undefined && !spec.oneoff) {
    const [policy, count] = service.restart.split(":");
    hostConfig.RestartPolicy = { Name: (policy ?? "no") as "no" };
    if (count !== undefined) hostConfig.RestartPolicy.MaximumRetryCount = Number(count);
  }
  const limits = (service.deploy?.resources as { limits?: { cpus?: unknown; memory?: unknown; pids?: unknown } } | undefined)?.limits;
  const memory = service.mem_limit ?? (limits?.memory !== undefined ? parseBytes(String(limits.memory)) : undefined);
  if (memory !== undefined) hostConfig.Memory = memory;
  const cpus = service.cpus ?? (limits?.cpus !== undefined ? Number(limits.cpus) : undefined);
  if (cpus !== undefined && cpus > 0) hostConfig.NanoCpus = Math.round(cpus * 1e9);
  const pids = service.pids_limit ?? (limits?.pids !== undefined ? Number(limits.pids) : undefined);
  if (pids !== undefined) hostConfig.PidsLimit = pids;
  if (service.mem_reservation !== undefined) hostConfig.MemoryReservation = service.mem_reservation;
  if (service.memswap_limit !== undefined) hostConfig.MemorySwap = service.memswap_limit;
  if (service.mem_swappiness !== undefined) hostConfig.MemorySwappiness = service.mem_swappiness;
  if (service.cpu_shares !== undefined) hostConfig.CpuShares = service.cpu_shares;
  if (service.cpu_quota !== undefined) hostConfig.CpuQuota = service.cpu_quota;
  if (service.cpu_period !== undefined) hostConfig.CpuPeriod = service.cpu_period;
  if (service.cpuset !== undefined) hostConfig.CpusetCpus = service.cpuset;
  if (service.oom_kill_disable !== undefined) hostConfig.OomKillDisable = service.oom_kill_disable;
  if (service.oom_score_adj !== undefined) hostConfig.OomScoreAdj = service.oom_score_adj;
  if (service.init !== undefined) hostConfig.Init = service.init;
  if (service.read_only !== undefined) hostConfig.ReadonlyRootfs = service.read_only;
  if (service.privileged !== undefined) hostConfig.Privileged = service.privileged;
  if (service.cap_add?.length) hostConfig.CapAdd = service.cap_add;
  if (service.cap_drop?.length) hostConfig.CapDrop = service.cap_drop;
  if (service.security_opt?.length) hostConfig.SecurityOpt = service.security_opt;
  if (service.ulimits) {
    hostConfig.Ulimits = Object.entries(service.ulimits).map(([n, l]) => ({
      Name: n,
      Soft: l.single ?? l.soft ?? 0,
      Hard: l.single ?? l.hard ?? 0,
    }));
  }
  if (service.extra_hosts?.length) hostConfig.ExtraHosts = service.extra_hosts;
  if (service.dns?.length) hostConfig.Dns = service.dns;
  if (service.dns_search?.length) hostConfig.DnsSearch = service.dns_search;
  if (service.dns_opt?.length) hostConfig.DnsOptions = service.dns_opt;
  if (service.logging?.driver || service.logging?.options) {
    hostConfig.LogConfig = { Type: service.logging.driver ?? "", Config: service.logging.options ?? {} };
  }
  if (service.shm_size !== undefined) hostConfig.ShmSize = service.shm_size;
  if (service.sysctls) hostConfig.Sysctls = service.sysctls;
  if (service.storage_opt) hostConfig.StorageOpt = service.storage_opt;
  if (service.annotations) hostConfig.Annotations = service.annotations;
  if (service.ipc !== undefined) hostConfig.IpcMode = resolveMode(service.ipc, spec);
  if (service.pid !== undefined) hostConfig.PidMode = resolveMode(service.pid, spec);
  if (service.uts !== undefined) hostConfig.UTSMode = service.uts;
  if (service.userns_mode !== undefined) hostConfig.UsernsMode = service.userns_mode;
  if (service.cgroup !== undefined) hostConfig.CgroupnsMode = service.cgroup;
  if (service.cgroup_parent !== undefined) hostConfig.CgroupParent = service.cgroup_parent;
  if (service.runtime !== undefined) hostConfig.Runtime = service.runtime;
  if (service.group_add?.length) hostConfig.GroupAdd = service.group_add;
  if (service.device_cgroup_rules?.length) hostConfig.DeviceCgroupRules = service.device_cgroup_rules;
  if (service.devices?.length) {
    hostConfig.Devices = service.devices.map((d) => ({
      PathOnHost: d.source,
      PathInContainer: d.target,
      CgroupPermissions: d.permissions ?? "rwm",
    }));
  }
  if (service.links?.length) {
    hostConfig.Links = service.links.map((l) => {
      const [svc, alias] = l.split(":");
      const c = spec.containerOf?.(svc as string) ?? (svc as string);
      return `${c}:${alias ?? svc}`;
    });
  }
  if (service.external_links?.length) {
    hostConfig.Links = [...(hostConfig.Links ?? []), ...service.external_links.map((l) => (l.includes(":") ? l : `${l}:${l}`))];
  }
  if (service.volumes_from?.length) {
    hostConfig.VolumesFrom = service.volumes_from.map((v) => {
      if (v.startsWith("container:")) return v.slice(10);
      const [svc, mode] = v.split(":");
      const c = spec.containerOf?.(svc as string) ?? (svc as string);
      return mode ? `${c}:${mode}` : c;
    });
  }
  body.HostConfig = hostConfig;
  return body;
}

function resolveMode(mode: string, spec: ContainerSpec): string {
  if (mode.startsWith("service:")) return `container:${spec.containerOf?.(mode.slice(8)) ?? mode.slice(8)}`;
  return mode;
}

/** Where a secret or config lands in the container. */
export function fileTarget(kind: "secrets" | "configs", source: string, target: string | undefined): string {
  if (kind === "secrets") {
    if (target === undefined) return `/run/secrets/${source}`;
    return target.startsWith("/") ? target : `/run/secrets/${target}`;
  }
  if (target === undefined) return `/${source}`;
  return target;
}
