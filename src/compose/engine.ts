/**
 * Compose operations over the Engine API: the project's resources found by their labels,
 * networks and volumes ensured, images pulled or built, each service's containers converged to
 * the model (created, recreated when their config hash or image changed, scaled), started in
 * dependency order with the `depends_on` conditions, and taken down again.
 */
import { randomBytes } from "node:crypto";
import { isNotFound, messageOf } from "../base/mod.ts";
import {
  ConfigFile,
  type ContainerInspect,
  type ContainerSummary,
  encodeRegistryAuth,
  type EngineClient,
  registryKeyForImage,
} from "../client/mod.ts";
import { PassThrough } from "node:stream";
import { pack } from "tar-stream";
import { createBody, endpointSettings, fileTarget, serviceImage, serviceNetworks } from "./convert.ts";
import {
  COMPOSE_VERSION,
  CONFIG_HASH_LABEL,
  CONTAINER_NUMBER_LABEL,
  IMAGE_DIGEST_LABEL,
  NETWORK_LABEL,
  ONEOFF_LABEL,
  PROJECT_LABEL,
  SERVICE_LABEL,
  serviceHash,
  VOLUME_LABEL,
} from "./labels.ts";
import { implicitDependencies, replicas } from "./loader.ts";
import type { Project, Service } from "./model.ts";

/** A compose failure with a message meant for the user as is. */
export class ComposeError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "ComposeError";
    this.exitCode = exitCode;
  }
}

/** Where operations report progress (` Container x  Started` lines) and how they reach the daemon. */
export interface Session {
  client: EngineClient;
  /** Reports a resource's state change. */
  progress(kind: "Container" | "Network" | "Volume" | "Image" | "Service", name: string, status: string): void;
  /** Writes pull and build output. */
  info(text: string): void;
  /** Environment (for DOCKER_CONFIG and credentials). */
  env: Record<string, string | undefined>;
  signal?: AbortSignal;
}

/** A container of the project as listed by the daemon. */
export type ProjectContainer = ContainerSummary;

/** The name of a listed container without the leading slash. */
export function nameOf(c: ContainerSummary): string {
  return (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, "");
}

/** The replica number of a container. */
export function numberOf(c: ContainerSummary): number {
  return Number(c.Labels?.[CONTAINER_NUMBER_LABEL] ?? "0") || 0;
}

/** The service of a container. */
export function serviceOf(c: ContainerSummary): string {
  return c.Labels?.[SERVICE_LABEL] ?? "";
}

/** Lists the project's containers (`oneoff`: include `compose run` ones). */
export async function projectContainers(
  client: EngineClient,
  projectName: string,
  options: { all?: boolean; services?: string[]; oneoff?: boolean } = {},
): Promise<ContainerSummary[]> {
  const label: Record<string, boolean> = { [`${PROJECT_LABEL}=${projectName}`]: true };
  if (!options.oneoff) label[`${ONEOFF_LABEL}=False`] = true;
  const list = await client.containerList({ all: options.all ?? true, filters: { label } });
  // Filter again: a daemon that ignores some filters must not make us touch other containers.
  return list
    .filter((c) => c.Labels?.[PROJECT_LABEL] === projectName)
    .filter((c) => options.oneoff || c.Labels?.[ONEOFF_LABEL] !== "True")
    .filter((c) => !options.services?.length || options.services.includes(serviceOf(c)))
    .sort((a, b) => serviceOf(a).localeCompare(serviceOf(b)) || numberOf(a) - numberOf(b));
}

/** Registry credentials for an image, from the docker config file. */
async function registryAuth(session: Session, image: string): Promise<string> {
  try {
    const cfg = ConfigFile.load(session.env.DOCKER_CONFIG || undefined);
    const key = registryKeyForImage(image);
    const c = await cfg.get(key);
    if (!c.username && !c.password && !c.identityToken) return encodeRegistryAuth(undefined);
    return encodeRegistryAuth({ ...c, serverAddress: c.serverAddress || key });
  } catch {
    return encodeRegistryAuth(undefined);
  }
}

/** Services in start order: every service after what it depends on. */
export function startOrder(project: Project, services: string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (n: string) => {
    if (seen.has(n)) return;
    seen.add(n);
    const s = project.services[n];
    if (!s) return;
    for (const d of dependencies(s)) if (project.services[d]) visit(d);
    out.push(n);
  };
  for (const n of [...services].sort()) visit(n);
  return out;
}

/**
 * Services grouped by dependency depth: the first group depends on nothing, each later group
 * only on earlier ones. Services of one group can be handled in parallel.
 */
export function dependencyLevels(project: Project, services: string[]): string[][] {
  const depth = new Map<string, number>();
  const visit = (n: string, stack: string[]): number => {
    const known = depth.get(n);
    if (known !== undefined) return known;
    const s = project.services[n];
    let d = 0;
    if (s && !stack.includes(n)) for (const x of dependencies(s)) if (project.services[x]) d = Math.max(d, visit(x, [...stack, n]) + 1);
    depth.set(n, d);
    return d;
  };
  const out: string[][] = [];
  for (const n of [...services].sort()) {
    const d = visit(n, []);
    (out[d] ??= []).push(n);
  }
  return out.filter((g) => g !== undefined && g.length > 0);
}

/** The services a service needs first (depends_on and implicit ones). */
export function dependencies(s: Service): string[] {
  return [...new Set([...Object.keys(s.depends_on ?? {}), ...implicitDependencies(s)])];
}

/** The selected services with everything they depend on (unless `noDeps`). */
export function withDependencies(project: Project, services: string[], noDeps = false): string[] {
  if (services.length === 0) return Object.keys(project.services);
  for (const s of services) if (!project.services[s]) throw new ComposeError(`no such service: ${s}`);
  if (noDeps) return services;
  const out = new Set<string>();
  const visit = (n: string) => {
    if (out.has(n) || !project.services[n]) return;
    out.add(n);
    for (const d of dependencies(project.services[n] as Service)) visit(d);
  };
  services.forEach(visit);
  return [...out];
}

/**
 * Checks what must exist before anything is created: external networks and volumes. Fails with
 * a clear error naming the missing resource.
 */
export async function checkExternals(session: Session, project: Project, services: string[]): Promise<void> {
  const { networks, volumes } = usedResources(project, services);
  for (const key of networks) {
    const n = project.networks[key];
    if (!n?.external) continue;
    try {
      await session.client.networkInspect(n.name);
    } catch (e) {
      if (isNotFound(e)) throw new ComposeError(`network ${n.name} declared as external, but could not be found`);
      throw e;
    }
  }
  for (const key of volumes) {
    const v = project.volumes[key];
    if (!v?.external) continue;
    try {
      await session.client.volumeInspect(v.name);
    } catch (e) {
      if (isNotFound(e)) throw new ComposeError(`external volume "${v.name}" not found`);
      throw e;
    }
  }
}

function usedResources(project: Project, services: string[]): { networks: string[]; volumes: string[] } {
  const networks = new Set<string>();
  const volumes = new Set<string>();
  for (const n of services) {
    const s = project.services[n];
    if (!s) continue;
    for (const k of Object.keys(s.networks ?? {})) networks.add(k);
    for (const v of s.volumes ?? []) if (v.type === "volume" && v.source) volumes.add(v.source);
  }
  // Declared volumes are created even when no service uses them, as Compose does.
  for (const k of Object.keys(project.volumes)) volumes.add(k);
  return { networks: [...networks].sort(), volumes: [...volumes].sort() };
}

/** Creates the project's networks that do not exist yet. */
export async function ensureNetworks(session: Session, project: Project, services: string[]): Promise<void> {
  for (const key of usedResources(project, services).networks) {
    const n = project.networks[key];
    if (!n || n.external) continue;
    try {
      const existing = await session.client.networkInspect(n.name);
      const owner = existing.Labels?.[PROJECT_LABEL];
      if (owner !== undefined && owner !== project.name) {
        session.info(`WARN[0000] a network with name ${n.name} exists but was not created for project "${project.name}".\n`);
      }
      continue;
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    session.progress("Network", n.name, "Creating");
    const ipam = n.ipam
      ? {
          Driver: n.ipam.driver ?? "default",
          Config: (n.ipam.config ?? []).map((c) => {
            const o: { Subnet?: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> } = {};
            if (c.subnet) o.Subnet = c.subnet;
            if (c.ip_range) o.IPRange = c.ip_range;
            if (c.gateway) o.Gateway = c.gateway;
            if (c.aux_addresses) o.AuxiliaryAddresses = c.aux_addresses;
            return o;
          }),
          Options: n.ipam.options ?? {},
        }
      : undefined;
    await session.client.networkCreate({
      Name: n.name,
      Driver: n.driver ?? "bridge",
      ...(n.driver_opts ? { Options: n.driver_opts } : {}),
      ...(ipam ? { IPAM: ipam } : {}),
      ...(n.internal ? { Internal: true } : {}),
      ...(n.attachable ? { Attachable: true } : {}),
      ...(n.enable_ipv6 !== undefined ? { EnableIPv6: n.enable_ipv6 } : {}),
      Labels: { ...(n.labels ?? {}), [PROJECT_LABEL]: project.name, [NETWORK_LABEL]: key, [VERSION_LABEL_KEY]: COMPOSE_VERSION },
    });
    session.progress("Network", n.name, "Created");
  }
}

const VERSION_LABEL_KEY = "com.docker.compose.version";

/** Creates the project's volumes that do not exist yet. */
export async function ensureVolumes(session: Session, project: Project, services: string[]): Promise<void> {
  for (const key of usedResources(project, services).volumes) {
    const v = project.volumes[key];
    if (!v || v.external) continue;
    try {
      await session.client.volumeInspect(v.name);
      continue;
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    session.progress("Volume", `"${v.name}"`, "Creating");
    await session.client.volumeCreate({
      Name: v.name,
      Driver: v.driver ?? "local",
      ...(v.driver_opts ? { DriverOpts: v.driver_opts } : {}),
      Labels: { ...(v.labels ?? {}), [PROJECT_LABEL]: project.name, [VOLUME_LABEL]: key, [VERSION_LABEL_KEY]: COMPOSE_VERSION },
    });
    session.progress("Volume", `"${v.name}"`, "Created");
  }
}

/** The ID of a local image, or undefined when it is not present. */
export async function imageId(client: EngineClient, image: string): Promise<string | undefined> {
  try {
    return (await client.imageInspect(image)).Id;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** Pulls an image, reporting progress; throws with the daemon's message on failure. */
export async function pullImage(session: Session, service: string, image: string): Promise<void> {
  session.progress("Image", image, "Pulling");
  const opts: { registryAuth: string; signal?: AbortSignal } = { registryAuth: await registryAuth(session, image) };
  if (session.signal) opts.signal = session.signal;
  const stream = await session.client.imagePull(image, opts);
  for await (const m of stream) {
    if (m.error || m.errorDetail) throw new ComposeError(`${service} Error ${m.errorDetail?.message ?? m.error}`);
  }
  session.progress("Image", image, "Pulled");
}

/** A function that builds a service's image (see build.ts); returns the image ID. */
export type Builder = (service: string) => Promise<string | undefined>;

/**
 * Makes sure each service's image exists: pulled by the pull policy, or built (always with
 * `build`, when missing otherwise). Returns the image ID per service.
 */
export async function ensureImages(
  session: Session,
  project: Project,
  services: string[],
  options: { build?: boolean; noBuild?: boolean; pull?: string; builder?: Builder; quietPull?: boolean },
): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  const pulled = new Map<string, Promise<void>>();
  await Promise.all(
    services.map(async (name) => {
      const s = project.services[name] as Service;
      const image = serviceImage(project, name, s);
      const policy = options.pull ?? s.pull_policy ?? "missing";
      let id = await imageId(session.client, image);
      const build = s.build !== undefined && !options.noBuild && (options.build || policy === "build" || id === undefined);
      // Services that can be built are pulled only when asked to always pull.
      const pull =
        !build && (policy === "always" || (id === undefined && policy !== "never" && (s.build === undefined || options.noBuild)));
      if (build) {
        if (!options.builder) throw new ComposeError(`service "${name}" needs its image built, and building is not available`);
        id = (await options.builder(name)) ?? (await imageId(session.client, image));
      } else if (pull) {
        let p = pulled.get(image);
        if (!p) {
          p = pullImage(session, name, image);
          pulled.set(image, p);
        }
        try {
          await p;
        } catch (e) {
          throw e instanceof ComposeError ? e : new ComposeError(`${name} Error: ${messageOf(e)}`);
        }
        id = await imageId(session.client, image);
      } else if (policy === "never" && id === undefined) {
        throw new ComposeError(`service "${name}": image ${image} is not present and the pull policy is "never"`);
      }
      if (id === undefined) {
        if (s.build && options.noBuild) throw new ComposeError(`service "${name}" has no image and --no-build was given: build it first`);
        throw new ComposeError(`service "${name}": no such image: ${image}`);
      }
      ids.set(name, id);
    }),
  );
  return ids;
}

/** Options of converge (`up`/`create`). */
export interface ConvergeOptions {
  forceRecreate?: boolean;
  noRecreate?: boolean;
  /** Replicas per service from `--scale`. */
  scale?: Record<string, number>;
  /** Image IDs from ensureImages. */
  images: Map<string, string>;
  /** Seconds to wait when stopping containers that are replaced. */
  timeout?: number;
}

/** The outcome of converging a service: its containers, and which ones were (re)created. */
export interface ServiceContainers {
  service: string;
  containers: { id: string; name: string; created: boolean }[];
}

/**
 * Creates, recreates or removes the containers of the given services so they match the model;
 * does not start them. Services are handled in dependency order.
 */
export async function converge(
  session: Session,
  project: Project,
  services: string[],
  options: ConvergeOptions,
): Promise<Map<string, ServiceContainers>> {
  const existingAll = await projectContainers(session.client, project.name, { all: true });
  const result = new Map<string, ServiceContainers>();
  const containerOf = (svc: string): string | undefined => {
    const r = result.get(svc)?.containers[0];
    if (r) return r.name;
    const c = existingAll.find((x) => serviceOf(x) === svc);
    return c ? nameOf(c) : undefined;
  };
  const convergeOne = async (name: string) => {
    const s = project.services[name] as Service;
    const want = options.scale?.[name] ?? replicas(s);
    const hash = serviceHash(s);
    const imageId = options.images.get(name);
    const existing = existingAll.filter((c) => serviceOf(c) === name).sort((a, b) => numberOf(a) - numberOf(b));
    const out: ServiceContainers = { service: name, containers: [] };
    result.set(name, out);
    // Scale down: the highest numbers go first.
    const keep = existing.slice(0, want);
    for (const c of existing.slice(want).reverse()) {
      await removeContainer(session, c, { timeout: options.timeout });
    }
    const used = new Set(keep.map(numberOf));
    for (const c of keep) {
      const diverged =
        c.Labels?.[CONFIG_HASH_LABEL] !== hash ||
        (imageId !== undefined && c.Labels?.[IMAGE_DIGEST_LABEL] !== undefined && c.Labels[IMAGE_DIGEST_LABEL] !== imageId);
      if (options.forceRecreate || (diverged && !options.noRecreate)) {
        const n = numberOf(c);
        session.progress("Container", nameOf(c), "Recreate");
        const inherited = await anonymousVolumes(session, project, c.Id);
        await removeContainer(session, c, { timeout: options.timeout, quiet: true });
        const id = await createContainer(session, project, name, s, n, imageId, containerOf, inherited);
        out.containers.push({ id, name: containerNameFor(project, name, s, n), created: true });
        session.progress("Container", containerNameFor(project, name, s, n), "Recreated");
      } else {
        out.containers.push({ id: c.Id, name: nameOf(c), created: false });
      }
    }
    let next = 1;
    while (out.containers.length < want) {
      while (used.has(next)) next++;
      used.add(next);
      const cname = containerNameFor(project, name, s, next);
      session.progress("Container", cname, "Creating");
      const id = await createContainer(session, project, name, s, next, imageId, containerOf);
      out.containers.push({ id, name: cname, created: true });
      session.progress("Container", cname, "Created");
    }
  };
  for (const level of dependencyLevels(project, services)) await Promise.all(level.map(convergeOne));
  return result;
}

/** The unnamed volumes mounted in a container (named ones of the model are mounted anyway). */
async function anonymousVolumes(session: Session, project: Project, id: string): Promise<{ name: string; target: string }[]> {
  const named = new Set(Object.values(project.volumes).map((v) => v.name));
  try {
    const info = await session.client.containerInspect(id);
    return (info.Mounts ?? [])
      .filter((m) => m.Type === "volume" && m.Name !== undefined && !named.has(m.Name) && /^[0-9a-f]{64}$/.test(m.Name))
      .map((m) => ({ name: m.Name as string, target: m.Destination }));
  } catch (e) {
    if (isNotFound(e)) return [];
    throw e;
  }
}

function containerNameFor(project: Project, name: string, s: Service, n: number): string {
  return s.container_name ?? `${project.name}-${name}-${n}`;
}

async function createContainer(
  session: Session,
  project: Project,
  name: string,
  s: Service,
  number: number,
  imageId: string | undefined,
  containerOf: (svc: string) => string | undefined,
  inherited: { name: string; target: string }[] = [],
): Promise<string> {
  const spec: Parameters<typeof createBody>[3] = { number, containerOf };
  if (imageId) spec.imageId = imageId;
  const body = createBody(project, name, s, spec);
  // Anonymous volumes of the replaced container keep their data, as Compose does.
  const taken = new Set([
    ...(body.HostConfig?.Mounts ?? []).map((m) => m.Target),
    ...(body.HostConfig?.Binds ?? []).map((b) => b.split(":")[1]),
  ]);
  for (const v of inherited) {
    if (taken.has(v.target)) continue;
    body.HostConfig = {
      ...body.HostConfig,
      Mounts: [...(body.HostConfig?.Mounts ?? []), { Type: "volume", Source: v.name, Target: v.target }],
    };
    if (body.Volumes) delete body.Volumes[v.target];
  }
  const cname = containerNameFor(project, name, s, number);
  const opts: { name: string; platform?: string } = { name: cname };
  if (s.platform) opts.platform = s.platform;
  const res = await session.client.containerCreate(body, opts);
  await connectExtraNetworks(session, project, name, s, res.Id);
  await injectFileObjects(session, project, s, res.Id);
  return res.Id;
}

/**
 * Secrets and configs whose content comes from the environment or from `content:` are copied
 * into the created container (file-based ones are bind-mounted by the create body).
 */
export async function injectFileObjects(session: Session, project: Project, s: Service, id: string): Promise<void> {
  const files: { path: string; content: string; mode: number; uid: number; gid: number }[] = [];
  for (const kind of ["secrets", "configs"] as const) {
    for (const ref of s[kind] ?? []) {
      const obj = project[kind][ref.source];
      if (!obj || obj.file !== undefined || obj.external) continue;
      const content = obj.content ?? (obj.environment !== undefined ? project.environment[obj.environment] : undefined);
      if (content === undefined) continue;
      files.push({
        path: fileTarget(kind, ref.source, ref.target),
        content,
        mode: ref.mode ?? 0o444,
        uid: Number(ref.uid ?? 0) || 0,
        gid: Number(ref.gid ?? 0) || 0,
      });
    }
  }
  if (files.length === 0) return;
  const tar = pack();
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.replace(/^\/+/, "").split("/");
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (!dirs.has(d)) {
        dirs.add(d);
        tar.entry({ name: d, type: "directory", mode: 0o755 });
      }
    }
    tar.entry({ name: parts.join("/"), mode: f.mode, uid: f.uid, gid: f.gid }, f.content);
  }
  tar.finalize();
  const stream = new PassThrough();
  tar.pipe(stream);
  await session.client.containerPutArchive(id, "/", stream, { noOverwriteDirNonDir: false, copyUIDGID: true });
}

/** Connects a new container to the service's networks beyond the first. */
export async function connectExtraNetworks(session: Session, project: Project, name: string, s: Service, id: string): Promise<void> {
  if (s.network_mode !== undefined) return;
  for (const [key, cfg] of serviceNetworks(s).slice(1)) {
    const netName = project.networks[key]?.name ?? key;
    await session.client.networkConnect(netName, id, endpointSettings(name, cfg));
  }
}

/** Stops (unless stopped) and removes a container, with anonymous volumes when asked. */
export async function removeContainer(
  session: Session,
  c: ContainerSummary,
  options: { timeout?: number | undefined; volumes?: boolean; quiet?: boolean } = {},
): Promise<void> {
  await stopContainer(session, c, options);
  await removeStopped(session, c, options);
}

/** Stops a container of the project (no-op when it is not running). */
export async function stopContainer(
  session: Session,
  c: ContainerSummary,
  options: { timeout?: number | undefined; quiet?: boolean } = {},
): Promise<void> {
  const name = nameOf(c);
  if (c.State === "running" || c.State === "restarting" || c.State === "paused") {
    if (!options.quiet) session.progress("Container", name, "Stopping");
    try {
      await session.client.containerStop(c.Id, options.timeout !== undefined ? { timeout: options.timeout } : {});
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    if (!options.quiet) session.progress("Container", name, "Stopped");
  }
}

/** Removes a stopped container of the project. */
export async function removeStopped(
  session: Session,
  c: ContainerSummary,
  options: { volumes?: boolean; quiet?: boolean } = {},
): Promise<void> {
  const name = nameOf(c);
  if (!options.quiet) session.progress("Container", name, "Removing");
  try {
    await session.client.containerRemove(c.Id, { force: true, volumes: options.volumes ?? false });
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  if (!options.quiet) session.progress("Container", name, "Removed");
}

/** Waits for a dependency's condition; throws a ComposeError naming the service when it fails. */
export async function waitCondition(
  session: Session,
  service: string,
  condition: string,
  containers: string[],
  options: { dependent?: string; timeoutMs?: number } = {},
): Promise<void> {
  const deadline = options.timeoutMs !== undefined ? Date.now() + options.timeoutMs : undefined;
  for (const id of containers) {
    for (;;) {
      if (session.signal?.aborted) throw new ComposeError("canceled", 130);
      let info: ContainerInspect;
      try {
        info = await session.client.containerInspect(id);
      } catch (e) {
        if (isNotFound(e)) throw new ComposeError(`dependency failed to start: container for service "${service}" was removed`);
        throw e;
      }
      const name = info.Name.replace(/^\//, "");
      const st = info.State;
      if (condition === "service_started") break;
      if (condition === "service_healthy") {
        const h = st.Health?.Status;
        if (h === undefined) {
          throw new ComposeError(`dependency failed to start: container ${name} has no healthcheck configured`);
        }
        if (h === "healthy") {
          session.progress("Container", name, "Healthy");
          break;
        }
        if (h === "unhealthy") throw new ComposeError(`dependency failed to start: container ${name} is unhealthy`);
        if (!st.Running && !st.Restarting) throw new ComposeError(`dependency failed to start: container ${name} exited (${st.ExitCode})`);
      } else if (condition === "service_completed_successfully") {
        if (!st.Running && !st.Restarting && st.Status !== "created") {
          if (st.ExitCode !== 0) {
            throw new ComposeError(`service "${service}" didn't complete successfully: exit ${st.ExitCode}`);
          }
          session.progress("Container", name, "Exited");
          break;
        }
      } else if (condition === "running") {
        if (st.Running) {
          if (st.Health === undefined || st.Health.Status === "healthy") {
            session.progress("Container", name, st.Health ? "Healthy" : "Running");
            break;
          }
          if (st.Health.Status === "unhealthy") throw new ComposeError(`container ${name} is unhealthy`);
        } else if (st.Status === "exited" || st.Status === "dead") {
          throw new ComposeError(`container ${name} exited (${st.ExitCode})`);
        }
      }
      if (deadline !== undefined && Date.now() > deadline) {
        throw new ComposeError(`timeout waiting for ${service}${options.dependent ? ` (needed by ${options.dependent})` : ""}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * Starts the given services' containers in dependency order; each service waits for the
 * conditions of its dependencies first. Services without their own dependencies start in
 * parallel. `onStarted` runs after each container started (attached output hooks in there).
 */
export async function startServices(
  session: Session,
  project: Project,
  services: string[],
  containersOf: (service: string) => Promise<string[]>,
  options: { onStarted?: (id: string, service: string) => void } = {},
): Promise<void> {
  const started = new Map<string, Promise<void>>();
  const start = (name: string): Promise<void> => {
    let p = started.get(name);
    if (p) return p;
    p = (async () => {
      const s = project.services[name] as Service;
      await Promise.all(
        Object.entries(s.depends_on ?? {}).map(async ([dep, d]) => {
          if (!project.services[dep]) return;
          if (services.includes(dep)) await start(dep);
          const ids = await containersOf(dep);
          if (ids.length === 0) {
            if (d.required) throw new ComposeError(`service "${name}" depends on "${dep}", which has no container`);
            return;
          }
          if (d.condition !== "service_started") {
            for (const id of ids) session.progress("Container", await containerDisplayName(session, id), "Waiting");
          }
          await waitCondition(session, dep, d.condition, ids, { dependent: name });
        }),
      );
      for (const dep of implicitDependencies(s)) if (services.includes(dep)) await start(dep);
      for (const id of await containersOf(name)) {
        const info = await session.client.containerInspect(id);
        const cname = info.Name.replace(/^\//, "");
        if (info.State.Running) {
          session.progress("Container", cname, "Running");
          continue;
        }
        session.progress("Container", cname, "Starting");
        try {
          await session.client.containerStart(id);
        } catch (e) {
          throw new ComposeError(`Error response from daemon: ${messageOf(e)}`);
        }
        session.progress("Container", cname, "Started");
        options.onStarted?.(id, name);
      }
    })();
    started.set(name, p);
    return p;
  };
  await Promise.all(
    startOrder(project, services)
      .filter((n) => services.includes(n))
      .map(start),
  );
}

async function containerDisplayName(session: Session, id: string): Promise<string> {
  try {
    return (await session.client.containerInspect(id)).Name.replace(/^\//, "");
  } catch {
    return id.slice(0, 12);
  }
}

/** A random slug for one-off container names (`<project>-<service>-run-<slug>`). */
export function newSlug(): string {
  return randomBytes(6).toString("hex");
}
