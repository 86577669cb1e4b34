import { readFileSync, statSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import {
  BerthError,
  conflict,
  type Digest,
  failedPrecondition,
  type Host,
  invalidArgument,
  isNotFound,
  type Logger,
  messageOf,
  notFound,
  randomId,
  KeyedLock,
} from "../base/mod.ts";
import { type ContainerConfig, formatPlatform, type Platform, parsePlatform, platformMatches } from "../oci/mod.ts";
import {
  ALL_CAPABILITIES,
  type AttachSession,
  type ContainerRuntime,
  DEFAULT_PATH_ENV,
  type ExitStatus,
  formatTimestampNanos,
  generateSpec,
  type MountInput,
  mergeEnv,
  normalizeCapability,
  parseDockerTime,
  parseSignal,
  readLogs,
  rotateLog,
  type StdStream,
} from "../runtime/mod.ts";
import type { OverlaySnapshotter } from "../snapshot/mod.ts";
import { type ContainerRecord, type ContainerStore, type CreateBody, type HostConfig, ZERO_TIME } from "./model.ts";
import type { ContainerNetSpec, NetworkService } from "../network/mod.ts";
import type { VolumeService } from "../volume/mod.ts";
import { HealthMonitor } from "./health.ts";
import { ensureInitFiles, type MountPoint, planMounts, prepareMounts, releaseMounts } from "./mounts.ts";
import { checkName, randomName } from "./names.ts";

/** What the container service needs from the image side (implemented by the daemon). */
export interface ImageLookup {
  /** Resolves a user's image reference to its ID, config and top chain ID; throws NotFound. */
  resolve(name: string): Promise<{
    id: Digest;
    config: ContainerConfig;
    topChainId: Digest | undefined;
    name: string;
    /** The image config's os/architecture/variant, when known. */
    platform?: Platform;
  }>;
}

/** Events the container service publishes. */
export type Publish = (action: string, c: ContainerRecord, extra?: Record<string, string>) => void;

/** A pending or live attachment of a client to a container's stdio. */
interface Attachment {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  onData: (stream: StdStream, data: Buffer) => void;
  onEnd: () => void;
  session?: AttachSession;
  pendingInput: Buffer[];
  inputEnded: boolean;
}

const now = () => new Date().toISOString();

function fresh(): ContainerRecord["State"] {
  return {
    Status: "created",
    Running: false,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 0,
    ExitCode: 0,
    Error: "",
    StartedAt: ZERO_TIME,
    FinishedAt: ZERO_TIME,
  };
}

/**
 * The container lifecycle: create, start, stop, kill, remove, wait, attach, logs, restart
 * policies, and restore after a daemon restart. Each container's process is run by the
 * runtime under its own monitor (conmon), so containers outlive berthd.
 */
export class ContainerService {
  readonly store: ContainerStore;
  #rt: ContainerRuntime;
  #snap: OverlaySnapshotter;
  #host: Host;
  #images: ImageLookup;
  #publish: Publish;
  #log: Logger;
  #root: string;
  #attachments = new Map<string, Set<Attachment>>();
  #exitWaiters = new Map<string, Set<(code: number) => void>>();
  #removeWaiters = new Map<string, Set<() => void>>();
  #watching = new Set<string>();
  #lock = new KeyedLock();
  #health: HealthMonitor;
  #volumes: VolumeService;
  #net: NetworkService;

  constructor(deps: {
    store: ContainerStore;
    runtime: ContainerRuntime;
    snapshots: OverlaySnapshotter;
    host: Host;
    images: ImageLookup;
    publish: Publish;
    log: Logger;
    root: string;
    volumes: VolumeService;
    network: NetworkService;
  }) {
    this.#volumes = deps.volumes;
    this.#net = deps.network;
    this.networkExists = (n) => this.#net.exists(n);
    this.#net.containers = {
      resolve: (ref) => {
        const c = this.store.resolve(ref);
        return c ? { ...netSpec(c), running: c.State.Running, pid: c.State.Pid } : undefined;
      },
    };
    this.#net.onChange = (id, settings, hosts, resolvConf) => {
      const c = this.store.get(id);
      if (!c) return;
      c.NetworkSettings = settings as unknown as Record<string, unknown>;
      this.store.save(c);
      // Written in place: the files are bind-mounted into the running container.
      void this.#writeHosts(c, hosts).catch(() => {});
      if (resolvConf) void writeFile(c.ResolvConfPath, resolvConf).catch(() => {});
    };
    deps.volumes.users = (name) =>
      this.store
        .list()
        .filter((c) => (c.Mounts as MountPoint[]).some((m) => m.Type === "volume" && m.Name === name))
        .map((c) => c.Id);
    this.store = deps.store;
    this.#rt = deps.runtime;
    this.#snap = deps.snapshots;
    this.#host = deps.host;
    this.#images = deps.images;
    this.#publish = deps.publish;
    this.#log = deps.log;
    this.#root = deps.root;
    this.#health = new HealthMonitor({
      runtime: deps.runtime,
      store: deps.store,
      dir: (id) => this.dir(id),
      publish: (a, c) => this.#publish(a, c),
      log: deps.log,
    });
  }

  dir(id: string): string {
    return join(this.#root, id);
  }

  /** Serialises lifecycle operations on one container. */
  async #locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return await this.#lock.run(id, fn);
  }

  /** POST /containers/create */
  async create(body: CreateBody, name: string | undefined, platform?: string): Promise<{ Id: string; Warnings: string[] }> {
    if (!body || typeof body !== "object") throw invalidArgument("config cannot be empty in order to create a container");
    const imageRef = body.Image;
    if (!imageRef) throw invalidArgument("Config cannot be empty in order to create a container");
    const hc: HostConfig = { ...(body.HostConfig ?? {}) };
    // "default" is what the docker CLI sends without --network: the bridge, as dockerd stores it.
    if (!hc.NetworkMode || hc.NetworkMode === "default") hc.NetworkMode = "bridge";
    validateHostConfig(hc, (n) => this.networkExists(n));
    const warnings = validateNetworkMode(body, hc);
    const finalName = name ? `/${checkName(name)}` : `/${randomName((n) => this.store.byName(n) !== undefined)}`;
    if (name && this.store.byName(finalName)) {
      const other = this.store.byName(finalName);
      throw conflict(
        `Conflict. The container name "${finalName}" is already in use by container "${other?.Id}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
    if (hc.VolumeDriver && hc.VolumeDriver !== "local") throw invalidArgument(`plugin "${hc.VolumeDriver}" not found`);
    if (body.StopSignal) parseSignal(body.StopSignal);
    if (hc.LogConfig && !hc.LogConfig.Type) hc.LogConfig = { ...hc.LogConfig, Type: "json-file" };
    checkLogDriver(hc.LogConfig?.Type ?? "json-file", hc.LogConfig?.Config ?? {});
    // --runtime: one the runtime service knows (containerd's name for runc is runc too).
    if (hc.Runtime === "io.containerd.runc.v2") hc.Runtime = "runc";
    if (hc.Runtime && !this.#rt.runtimes().some((r) => r.name === hc.Runtime))
      throw invalidArgument(`unknown or invalid runtime name: ${hc.Runtime}`);
    hc.Runtime = hc.Runtime || this.#rt.defaultRuntime;
    // As dockerd: a memory limit without a swap limit allows as much swap again.
    if ((hc.Memory ?? 0) > 0 && !hc.MemorySwap) hc.MemorySwap = (hc.Memory ?? 0) * 2;
    for (const cap of [...(hc.CapAdd ?? []), ...(hc.CapDrop ?? [])]) {
      if (cap.toUpperCase() !== "ALL" && !ALL_CAPABILITIES.includes(normalizeCapability(cap)))
        throw invalidArgument(`unknown capability: "${cap}"`);
    }
    const img = await this.#images.resolve(imageRef);
    if (platform && img.platform && !platformMatches(img.platform, parsePlatform(platform))) {
      // A 404, as dockerd: the docker CLI then pulls for that platform and tries once more.
      throw notFound(
        `image with reference ${imageRef} was found but does not match the specified platform: wanted ${formatPlatform(parsePlatform(platform))}, actual: ${formatPlatform(img.platform)}`,
      );
    }
    const ic = img.config;
    const id = randomId();
    const cfg: ContainerConfig = { ...body };
    delete (cfg as Record<string, unknown>).HostConfig;
    delete (cfg as Record<string, unknown>).NetworkingConfig;
    // On the host's network the container takes the host's name, as Docker does.
    cfg.Hostname = body.Hostname || (hc.NetworkMode === "host" ? os.hostname() : id.slice(0, 12));
    cfg.Domainname = body.Domainname ?? "";
    cfg.User = body.User || ic.User || "";
    cfg.Env = mergeEnv(ic.Env ?? [`PATH=${DEFAULT_PATH_ENV}`], body.Env ?? []);
    if (!cfg.Env.some((e) => e.startsWith("PATH="))) cfg.Env.unshift(`PATH=${DEFAULT_PATH_ENV}`);
    const userEntrypoint = body.Entrypoint !== undefined && body.Entrypoint !== null;
    cfg.Entrypoint = userEntrypoint ? (body.Entrypoint as string[]) : (ic.Entrypoint ?? null);
    if (userEntrypoint && cfg.Entrypoint?.length === 1 && cfg.Entrypoint[0] === "") cfg.Entrypoint = null;
    cfg.Cmd = body.Cmd && body.Cmd.length > 0 ? body.Cmd : userEntrypoint ? null : (ic.Cmd ?? null);
    cfg.WorkingDir = body.WorkingDir || ic.WorkingDir || "";
    cfg.Labels = { ...(ic.Labels ?? {}), ...(body.Labels ?? {}) };
    cfg.ExposedPorts = { ...(ic.ExposedPorts ?? {}), ...(body.ExposedPorts ?? {}) };
    if (Object.keys(cfg.ExposedPorts).length === 0) delete cfg.ExposedPorts;
    cfg.Volumes = { ...(ic.Volumes ?? {}), ...(body.Volumes ?? {}) };
    if (Object.keys(cfg.Volumes).length === 0) cfg.Volumes = null;
    if (!body.StopSignal && ic.StopSignal) cfg.StopSignal = ic.StopSignal;
    if (!body.Healthcheck && ic.Healthcheck) cfg.Healthcheck = ic.Healthcheck;
    if (ic.Shell && !cfg.Shell) cfg.Shell = ic.Shell;
    cfg.Image = imageRef;
    const argv = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])];
    if (argv.length === 0) throw invalidArgument("no command specified");
    const dir = this.dir(id);
    const rec: ContainerRecord = {
      Id: id,
      Name: finalName,
      Created: now(),
      Path: argv[0] ?? "",
      Args: argv.slice(1),
      Config: cfg,
      HostConfig: {
        NetworkMode: "bridge",
        RestartPolicy: { Name: "no", MaximumRetryCount: 0 },
        LogConfig: { Type: "json-file", Config: {} },
        ...hc,
      },
      State: fresh(),
      Image: img.id,
      ImageName: imageRef,
      RestartCount: 0,
      Driver: "overlay2",
      Platform: "linux",
      MountLabel: "",
      ProcessLabel: "",
      AppArmorProfile: "",
      ExecIDs: null,
      HostnamePath: join(dir, "hostname"),
      HostsPath: join(dir, "hosts"),
      ResolvConfPath: join(dir, "resolv.conf"),
      LogPath: join(dir, "ctr.log"),
      NetworkSettings: emptyNetworkSettings(),
      Mounts: [],
      berth: { snapshotKey: id, ...(img.topChainId ? { topChainId: img.topChainId } : {}) },
    };
    if (body.NetworkingConfig?.EndpointsConfig) rec.berth.endpointsConfig = body.NetworkingConfig.EndpointsConfig;
    if (body.MacAddress) rec.berth.macAddress = body.MacAddress;
    try {
      this.#net.validate(netSpec(rec));
      // --link stored as dockerd does (HostConfig.Links on the default bridge, else the endpoint's Links).
      if (rec.HostConfig.Links?.length) {
        const links = this.#net.placeLinks(netSpec(rec));
        rec.HostConfig.Links = links.links;
        if (links.endpointsConfig) rec.berth.endpointsConfig = links.endpointsConfig;
      }
    } catch (e) {
      // 400, not 404: a 404 from create makes the docker CLI pull the image and try again.
      if (isNotFound(e)) throw invalidArgument(messageOf(e));
      throw e;
    }
    rec.Mounts = await planMounts(rec.HostConfig, cfg.Volumes, this.#volumes, (r) => this.store.mustResolve(r));
    await mkdir(dir, { recursive: true, mode: 0o710 });
    try {
      await this.#snap.prepare(id, img.topChainId, { "berth.container": id });
      rec.NetworkSettings = this.#net.register(netSpec(rec)) as unknown as Record<string, unknown>;
      await this.#writeEtc(rec);
      this.store.insert(rec);
    } catch (e) {
      await this.#snap.remove(id).catch(() => {});
      await this.#net.unregister(id).catch(() => {});
      await rm(dir, { recursive: true, force: true });
      for (const m of rec.Mounts as MountPoint[]) if (m.anonymous && m.Name) await this.#volumes.remove(m.Name, true).catch(() => {});
      throw e;
    }
    this.#publish("create", rec);
    return { Id: id, Warnings: warnings };
  }

  async #writeEtc(c: ContainerRecord): Promise<void> {
    const hostname = c.Config.Hostname ?? c.Id.slice(0, 12);
    await writeFile(c.HostnamePath, `${hostname}\n`);
    const extra = (c.HostConfig.ExtraHosts ?? []).map((h) => {
      const i = h.indexOf(":");
      const host = h.slice(0, i);
      let ip = h.slice(i + 1);
      if (ip === "host-gateway") ip = "127.0.0.1";
      return `${ip}\t${host}`;
    });
    void extra;
    await this.#writeHosts(c, []);
    let resolv = "";
    const dns = c.HostConfig.Dns ?? [];
    if (dns.length || (c.HostConfig.DnsSearch ?? []).length || (c.HostConfig.DnsOptions ?? []).length) {
      resolv += (c.HostConfig.DnsSearch ?? []).length ? `search ${(c.HostConfig.DnsSearch ?? []).join(" ")}\n` : "";
      resolv += dns.map((d) => `nameserver ${d}\n`).join("");
      resolv += (c.HostConfig.DnsOptions ?? []).length ? `options ${(c.HostConfig.DnsOptions ?? []).join(" ")}\n` : "";
      if (!dns.length) resolv += hostResolv().replace(/^(search|options).*\n/gm, "");
    } else {
      resolv = hostResolv();
    }
    await writeFile(c.ResolvConfPath, resolv);
  }

  /**
   * Runs `fn` with the container's lifecycle lock held, so that no start, restart or remove
   * runs meanwhile: archive, export and commit use it while they mount or read its files.
   */
  async withLock<T>(ref: string, fn: (c: ContainerRecord) => Promise<T>): Promise<T> {
    const c0 = this.store.mustResolve(ref);
    return await this.#locked(c0.Id, async () => await fn(this.store.mustResolve(c0.Id)));
  }

  /** /etc/hosts: the localhost block, the container's own addresses and links, then `--add-host`. */
  async #writeHosts(c: ContainerRecord, own: string[]): Promise<void> {
    const nets = Object.values((c.NetworkSettings.Networks ?? {}) as Record<string, { Gateway?: string }>);
    const gw = (c.NetworkSettings.Gateway as string | undefined) || nets.find((n) => n.Gateway)?.Gateway || "";
    const extra = (c.HostConfig.ExtraHosts ?? []).map((h) => {
      const i = h.indexOf(":");
      let ip = h.slice(i + 1);
      if (ip === "host-gateway") ip = gw || "127.0.0.1";
      return `${ip}\t${h.slice(0, i)}`;
    });
    const hostname = c.Config.Hostname ?? c.Id.slice(0, 12);
    if (c.HostConfig.NetworkMode === "host") {
      // The host's network: the host's own /etc/hosts, then --add-host (as Docker).
      let base = "";
      try {
        base = readFileSync("/etc/hosts", "utf8");
      } catch {
        base = "127.0.0.1\tlocalhost\n";
      }
      await writeFile(c.HostsPath, `${base.replace(/\n?$/, "\n")}${extra.map((l) => `${l}\n`).join("")}`);
      return;
    }
    const lines = [
      "127.0.0.1\tlocalhost",
      "::1\tlocalhost ip6-localhost ip6-loopback",
      "fe00::0\tip6-localnet",
      "ff00::0\tip6-mcastprefix",
      "ff02::1\tip6-allnodes",
      "ff02::2\tip6-allrouters",
      ...extra,
      ...(own.length ? own : c.HostConfig.NetworkMode === "host" ? [] : [`127.0.1.1\t${hostname}`]),
    ];
    await writeFile(c.HostsPath, `${lines.join("\n")}\n`);
  }

  /** Mount of the container's root filesystem. */
  rootfs(c: ContainerRecord): string {
    return join(this.dir(c.Id), "rootfs");
  }

  /** POST /containers/{id}/start */
  async start(ref: string): Promise<void> {
    const c0 = this.store.mustResolve(ref);
    await this.#locked(c0.Id, async () => {
      const c = this.store.mustResolve(c0.Id);
      if (c.State.Paused) throw conflict(`cannot start a paused container, try unpause instead`);
      if (c.State.Running) return; // docker: 304 Not Modified
      await this.#startLocked(c);
    });
  }

  async #startLocked(c: ContainerRecord): Promise<void> {
    try {
      await this.#startInner(c);
    } catch (e) {
      if (!c.State.Running) await this.#startFailed(c, e);
      throw e;
    }
  }

  /** Records a start that failed: exit code as Docker (127/126 from the runtime, else 128), cleans up, auto-removes. */
  async #startFailed(c: ContainerRecord, e: unknown): Promise<void> {
    const code = ((e as BerthError).detail?.exitCode as number | undefined) ?? 128;
    c.State = {
      ...c.State,
      Status: code === 128 && c.State.StartedAt === ZERO_TIME ? "created" : "exited",
      ExitCode: code,
      Error: messageOf(e),
      FinishedAt: now(),
      Running: false,
      Pid: 0,
    };
    this.store.save(c);
    await this.#rt.delete(c.Id, { force: true }).catch(() => {});
    await this.#host.unmount(this.rootfs(c)).catch(() => {});
    await releaseMounts(c.Mounts as MountPoint[], this.#volumes);
    await this.#net.detach(c.Id).catch((e2: unknown) => this.#log.warn("network detach", { error: messageOf(e2) }));
    this.#volumeEvents(c, "unmount");
    this.#endAttachments(c.Id);
    this.#notifyExit(c.Id, code);
    if (c.HostConfig.AutoRemove) {
      setImmediate(() => {
        void this.remove(c.Id, { force: true }).catch(() => {});
      });
    }
  }

  async #startInner(c: ContainerRecord): Promise<void> {
    const dir = this.dir(c.Id);
    const rootfs = this.rootfs(c);
    const hc = c.HostConfig;
    const mounts: MountInput[] = [
      { type: "bind", source: c.HostnamePath, destination: "/etc/hostname" },
      { type: "bind", source: c.HostsPath, destination: "/etc/hosts" },
      { type: "bind", source: c.ResolvConfPath, destination: "/etc/resolv.conf" },
    ];
    for (const [dest, opts] of Object.entries(hc.Tmpfs ?? {})) {
      mounts.push({ type: "tmpfs", destination: dest, options: opts ? opts.split(",").filter(Boolean) : [] } as MountInput);
    }
    const nsOf = (mode: string | undefined, kind: "net" | "pid" | "ipc"): "host" | "private" | { path: string } => {
      if (mode === "host") return "host";
      if (mode?.startsWith("container:")) {
        const other = this.store.mustResolve(mode.slice(10));
        if (!other.State.Running || !other.State.Pid)
          throw conflict(`cannot join ${kind} namespace of a non running container: ${other.Id}`);
        return { path: `/proc/${other.State.Pid}/ns/${kind}` };
      }
      return "private";
    };
    // The root file system and the network are independent: they are set up together (each is
    // process spawns). The network goes on while the runtime creates the container: it only has
    // to be complete before the process starts, and the namespace exists early (onNetns). A
    // failure anywhere is thrown once the network settled (a later detach waits for it anyway).
    type Netns = Awaited<ReturnType<NetworkService["attach"]>>["netns"];
    let early: (ns: Netns | undefined) => void = () => {};
    const netnsKnown = new Promise<Netns | undefined>((resolve) => {
      early = resolve;
    });
    const attachment = this.#net.attach(netSpec(c), { onNetns: (ns) => early(ns) });
    attachment.then(
      (a) => early(a.netns),
      () => early(undefined),
    );
    const [fsDone, netns] = await Promise.all([
      (async () => {
        if (isMountPoint(rootfs)) await this.#host.unmount(rootfs).catch(() => {});
        await this.#snap.mount(c.berth.snapshotKey, rootfs);
        ensureInitFiles(rootfs);
        return await prepareMounts(c.Mounts as MountPoint[], rootfs, this.#volumes, this.#host);
      })().then(
        (v) => ({ ok: true as const, v }),
        (e: unknown) => ({ ok: false as const, e }),
      ),
      netnsKnown,
    ]);
    if (!fsDone.ok) {
      await attachment.catch(() => {});
      throw fsDone.e;
    }
    if (netns === undefined) await attachment; // throws the network's error
    mounts.push(...fsDone.v);
    const network = netns as Netns;
    let seccomp: string | undefined;
    let noNewPrivileges = false;
    let unmaskPaths = false;
    for (const o of hc.SecurityOpt ?? []) {
      const [k, v = ""] = o.includes("=") ? [o.slice(0, o.indexOf("=")), o.slice(o.indexOf("=") + 1)] : o.split(":");
      if (k === "seccomp") seccomp = v;
      else if (k === "systempaths" && v === "unconfined") unmaskPaths = true;
      else if (k === "no-new-privileges") noNewPrivileges = v === "" || v === "true";
      else if (k === "label" || k === "apparmor") continue;
      else throw invalidArgument(`invalid --security-opt 2: "${o}"`);
    }
    // The docker CLI sends --security-opt systempaths=unconfined as empty masked and read-only path lists.
    if (Array.isArray(hc.MaskedPaths) && hc.MaskedPaths.length === 0 && Array.isArray(hc.ReadonlyPaths) && hc.ReadonlyPaths.length === 0) {
      unmaskPaths = true;
    }
    const argv = [c.Path, ...c.Args];
    const input: Parameters<typeof generateSpec>[0] = {
      rootfs,
      args: argv,
      env: mergeEnv(this.#net.linkEnv(c.Id), [...(c.Config.Env ?? []), ...(c.Config.Tty ? ["TERM=xterm"] : [])]),
      cwd: c.Config.WorkingDir || "/",
      user: c.Config.User ?? "",
      groupAdd: hc.GroupAdd ?? [],
      tty: c.Config.Tty === true,
      hostname: c.Config.Hostname ?? c.Id.slice(0, 12),
      readonlyRootfs: hc.ReadonlyRootfs === true,
      network,
      pid: nsOf(hc.PidMode, "pid"),
      ipc: hc.IpcMode === "none" ? "none" : hc.IpcMode === "shareable" ? "shareable" : nsOf(hc.IpcMode, "ipc"),
      uts: hc.UTSMode === "host" ? "host" : "private",
      mounts,
      privileged: hc.Privileged === true,
      capAdd: hc.CapAdd ?? [],
      capDrop: hc.CapDrop ?? [],
      noNewPrivileges,
      devices: (hc.Devices ?? []).map((d) => `${d.PathOnHost}:${d.PathInContainer || d.PathOnHost}:${d.CgroupPermissions || "rwm"}`),
      sysctls: hc.Sysctls ?? {},
      ulimits: (hc.Ulimits ?? []).map((u) => ({ name: u.Name, soft: u.Soft, hard: u.Hard })),
      resources: resourcesOf(hc),
      cgroupsPath: `${typeof hc.CgroupParent === "string" && hc.CgroupParent ? hc.CgroupParent.replace(/\/$/, "") : "/berth"}/${c.Id}`,
      init: hc.Init === true,
    };
    if (typeof hc.OomScoreAdj === "number" && hc.OomScoreAdj !== 0) input.oomScoreAdj = hc.OomScoreAdj;
    if (c.Config.Domainname) input.domainname = c.Config.Domainname;
    if (hc.DeviceCgroupRules?.length) input.deviceCgroupRules = hc.DeviceCgroupRules;
    if (hc.Annotations && typeof hc.Annotations === "object") input.annotations = hc.Annotations as Record<string, string>;
    if (hc.CgroupnsMode === "host" || hc.CgroupnsMode === "private") input.cgroupns = hc.CgroupnsMode;
    if (unmaskPaths) input.unmaskSystemPaths = true;
    if (hc.ShmSize) input.shmSize = hc.ShmSize;
    if (seccomp !== undefined) input.seccomp = seccomp;
    const spec = await generateSpec(input).catch(async (e: unknown) => {
      await attachment.catch(() => {});
      throw e;
    });
    // A TTY starts at the client's size (HostConfig.ConsoleSize, API 1.42+), not 0x0 until a resize.
    const cs = hc.ConsoleSize;
    if (c.Config.Tty && Array.isArray(cs) && Number(cs[0]) > 0 && Number(cs[1]) > 0 && spec.spec.process)
      spec.spec.process.consoleSize = { height: Number(cs[0]), width: Number(cs[1]) };
    c.State.Error = "";
    const creation = this.#rt.create(c.Id, {
      bundleDir: dir,
      spec: spec.spec,
      logPath: c.LogPath,
      noLog: c.HostConfig.LogConfig?.Type === "none",
      ...(c.HostConfig.Runtime ? { runtime: c.HostConfig.Runtime } : {}),
      tty: c.Config.Tty === true,
      stdin: c.Config.OpenStdin === true,
      stdinOnce: c.Config.StdinOnce === true,
      // With rotated files berthd rotates (see #rotateLogs); otherwise conmon truncates at max-size.
      ...(logRotation(c) ? {} : logSizeOption(c.HostConfig.LogConfig?.Config?.["max-size"])),
    });
    const [made, attached] = await Promise.allSettled([creation, attachment]);
    // A network that failed (a published port taken) took its namespace away from a create under
    // way: the network's error is the cause, the runtime's only a consequence.
    if (made.status === "rejected" && attached.status === "rejected") throw attached.reason;
    if (made.status === "rejected") {
      const e = made.reason as BerthError;
      const code = (e.detail?.exitCode as number | undefined) ?? 128;
      this.#publish("die", c, { exitCode: String(code) });
      throw new BerthError(e.kind ?? "Internal", `failed to create task for container: ${messageOf(e)}`, {
        detail: { exitCode: code },
      });
    }
    // A network that failed after the container was created: the start's clean-up deletes it.
    if (attached.status === "rejected") throw attached.reason;
    const created = made.value;
    const att = attached.value;
    // After the network's connect events, as dockerd orders them.
    this.#volumeEvents(c, "mount");
    c.NetworkSettings = att.networkSettings as unknown as Record<string, unknown>;
    this.store.save(c);
    await Promise.all([this.#writeHosts(c, att.hosts), att.resolvConf ? writeFile(c.ResolvConfPath, att.resolvConf) : undefined]);
    // Connect clients that attached before the start, then let the process run.
    for (const a of this.#attachments.get(c.Id) ?? []) await this.#connect(c, a);
    await this.#rt.start(c.Id);
    // create already told the pids: no `runc state` round trip.
    c.State = { ...fresh(), Status: "running", Running: true, Pid: created.pid, StartedAt: now(), FinishedAt: c.State.FinishedAt };
    c.berth.monitorPid = created.monitorPid;
    c.berth.runtimeDeleted = false;
    c.berth.manualStop = false;
    this.store.save(c);
    this.#publish("start", c);
    this.#health.start(c);
    this.#watch(c.Id);
    if (logRotation(c)) this.#rotateLogs();
  }

  #rotator: NodeJS.Timeout | undefined;

  /** Containers whose volumes were announced mounted (so that unmount is announced once). */
  readonly #volumesMounted = new Set<string>();

  /**
   * Volume mount / unmount events, as dockerd sends them at start and at exit. `ran`: an exit,
   * whose mounts were announced at its start (by this berthd or the one before a restart).
   */
  #volumeEvents(c: ContainerRecord, action: "mount" | "unmount", ran = false): void {
    if (action === "mount") this.#volumesMounted.add(c.Id);
    else if (!this.#volumesMounted.delete(c.Id) && !ran) return;
    for (const m of c.Mounts as MountPoint[]) {
      if (m.Type !== "volume" || !m.Name) continue;
      const attrs: Record<string, string> =
        action === "mount"
          ? { container: c.Id, destination: m.Destination, driver: "local", propagation: m.Propagation ?? "", "read/write": String(m.RW) }
          : { container: c.Id, driver: "local" };
      this.#volumes.publish(action, m.Name, attrs);
    }
  }

  /**
   * Rotates the logs of running containers that keep rotated files, as Docker's json-file
   * driver does (conmon has no rotation): each second, a live log at `max-size` or more moves
   * to `ctr.log.1` (the older ones shift up, `max-file` in all). Stops when none is left.
   */
  #rotateLogs(): void {
    if (this.#rotator) return;
    this.#rotator = setInterval(() => {
      const due = this.store.list().filter((c) => c.State.Running && logRotation(c));
      if (!due.length) {
        clearInterval(this.#rotator);
        this.#rotator = undefined;
        return;
      }
      for (const c of due) {
        const r = logRotation(c);
        if (r)
          void rotateLog(c.LogPath, r.maxSize, r.files).catch((e: unknown) =>
            this.#log.warn("log rotation", { id: c.Id, error: messageOf(e) }),
          );
      }
    }, 1000);
    this.#rotator.unref();
  }

  /** Watches for the container's exit and records it. */
  #watch(id: string): void {
    if (this.#watching.has(id)) return;
    this.#watching.add(id);
    this.#rt
      .waitExit(id)
      .then((exit) => this.#onExit(id, exit))
      .catch((e: unknown) => this.#log.warn("waiting for container exit failed", { id, error: messageOf(e) }))
      .finally(() => this.#watching.delete(id));
  }

  async #onExit(id: string, exit: ExitStatus): Promise<void> {
    this.#health.stop(id);
    const c = this.store.get(id);
    if (!c) return;
    c.State = {
      ...c.State,
      Status: "exited",
      Running: false,
      Paused: false,
      Restarting: false,
      Pid: 0,
      ExitCode: exit.exitCode,
      OOMKilled: exit.oomKilled,
      FinishedAt: exit.exitedAt.toISOString(),
    };
    this.store.save(c);
    if (exit.oomKilled) this.#publish("oom", c);
    this.#publish("die", c, { exitCode: String(exit.exitCode) });
    // Attached clients' streams end once conmon has delivered the last output (it closes the
    // attach socket after draining: #endAttachments waits for that), not after a fixed delay.
    this.#endAttachments(id);
    // The container is stopped now: waiters (stop, wait) go on while the clean-ups run under the
    // container's lock, so that a start or rm that follows waits for them.
    this.#notifyExit(id, exit.exitCode);
    await this.#locked(id, async () => {
      // Independent clean-ups run together: they are process spawns.
      await Promise.all([
        this.#host.unmount(this.rootfs(c)).catch(() => {}),
        releaseMounts(c.Mounts as MountPoint[], this.#volumes),
        // Awaited even for --rm: when `run --rm` returns, its namespace is unpinned and its
        // address free, as with dockerd (the kernel removes the veth moments later).
        this.#net.detach(id, { exited: true }).catch((e: unknown) => this.#log.warn("network detach", { error: messageOf(e) })),
        // The process is gone: its runtime state goes now (as containerd deletes the task at exit),
        // so that `rm` and a restart do not pay for it.
        this.#rt.delete(id, { force: true }).then(
          () => {
            c.berth.runtimeDeleted = true;
          },
          () => {},
        ),
      ]);
    });
    // As dockerd: a stopped container keeps its networks and sandbox names, but no address,
    // endpoint or published port any more (inspect, `ps -a`, `port`).
    // After the network's disconnect events, as dockerd orders them.
    this.#volumeEvents(c, "unmount", true);
    const prev = c.NetworkSettings;
    c.NetworkSettings = {
      ...(this.#net.settings(id) as unknown as Record<string, unknown>),
      SandboxID: prev.SandboxID ?? "",
      SandboxKey: prev.SandboxKey ?? "",
    };
    this.store.save(c);
    const policy = c.HostConfig.RestartPolicy?.Name ?? "no";
    const max = c.HostConfig.RestartPolicy?.MaximumRetryCount ?? 0;
    if (c.HostConfig.AutoRemove) {
      await this.remove(id, { force: true }).catch((e: unknown) => this.#log.warn("auto-remove failed", { id, error: messageOf(e) }));
      return;
    }
    const restart =
      !c.berth.manualStop &&
      (policy === "always" ||
        policy === "unless-stopped" ||
        (policy === "on-failure" && exit.exitCode !== 0 && (max === 0 || c.RestartCount < max)));
    if (restart) {
      const delay = Math.min(100 * 2 ** Math.min(c.RestartCount, 10), 60000);
      c.RestartCount++;
      c.State.Restarting = true;
      c.State.Status = "restarting";
      this.store.save(c);
      setTimeout(() => {
        void this.#locked(id, async () => {
          const cur = this.store.get(id);
          if (!cur || cur.berth.manualStop || cur.State.Running) return;
          await this.#startLocked(cur);
          this.#publish("restart", cur);
        }).catch((e: unknown) => this.#log.warn("restart failed", { id, error: messageOf(e) }));
      }, delay);
    }
  }

  /** Calls `fn` with the exit code at the container's next exit. */
  #onNextExit(id: string, fn: (code: number) => void): void {
    const set = this.#exitWaiters.get(id) ?? new Set();
    set.add(fn);
    this.#exitWaiters.set(id, set);
  }

  /** Settles with the exit code at the container's next exit. */
  #nextExit(id: string): Promise<number> {
    return new Promise((resolve) => this.#onNextExit(id, resolve));
  }

  #notifyExit(id: string, code: number): void {
    const ws = this.#exitWaiters.get(id);
    this.#exitWaiters.delete(id);
    for (const w of ws ?? []) w(code);
  }

  /** POST /containers/{id}/wait */
  async wait(ref: string, condition: string, signal?: AbortSignal): Promise<{ StatusCode: number; Error: { Message: string } | null }> {
    const c = this.store.mustResolve(ref);
    const cond = condition || "not-running";
    if (!["not-running", "next-exit", "removed"].includes(cond)) throw invalidArgument(`invalid condition: "${cond}"`);
    if (cond === "not-running" && !c.State.Running && c.State.Status !== "restarting") {
      return { StatusCode: c.State.ExitCode, Error: null };
    }
    const code = await new Promise<number>((resolve, reject) => {
      if (cond === "removed") {
        let last = c.State.ExitCode;
        this.#onNextExit(c.Id, (n) => {
          last = n;
        });
        const set = this.#removeWaiters.get(c.Id) ?? new Set();
        set.add(() => resolve(last));
        this.#removeWaiters.set(c.Id, set);
      } else this.#onNextExit(c.Id, resolve);
      signal?.addEventListener("abort", () => reject(new BerthError("Canceled", "wait canceled")), { once: true });
    });
    return { StatusCode: code, Error: null };
  }

  /** POST /containers/{id}/stop */
  async stop(ref: string, options: { timeout?: number | undefined; signal?: string | undefined } = {}): Promise<boolean> {
    const c = this.store.mustResolve(ref);
    if (!c.State.Running && c.State.Status !== "restarting") return false;
    c.berth.manualStop = true;
    this.store.save(c);
    if (c.State.Status === "restarting") {
      c.State.Restarting = false;
      c.State.Status = "exited";
      this.store.save(c);
      return true;
    }
    if (c.State.Paused) await this.#rt.resume(c.Id).catch(() => {});
    const sig = options.signal || c.Config.StopSignal || "SIGTERM";
    const timeout = options.timeout ?? c.Config.StopTimeout ?? 10;
    const exited = this.#nextExit(c.Id);
    // As dockerd, the event names the signal by its number.
    this.#publish("kill", c, { signal: String(parseSignal(sig)) });
    await this.#rt.kill(c.Id, sig).catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), timeout < 0 ? 2 ** 31 - 1 : timeout * 1000);
      }),
    ]);
    if (timer) clearTimeout(timer);
    if (timedOut) {
      this.#publish("kill", c, { signal: "9" });
      await this.#rt.kill(c.Id, "SIGKILL").catch(() => {});
      await exited;
    }
    await this.#cleanedUp(c.Id);
    this.#publish("stop", c);
    return true;
  }

  /** POST /containers/{id}/kill */
  async kill(ref: string, signal = "SIGKILL"): Promise<void> {
    parseSignal(signal);
    const c = this.store.mustResolve(ref);
    if (!c.State.Running) throw conflict(`Cannot kill container: ${ref}: Container ${c.Id} is not running`);
    const sigkill = signal === "SIGKILL" || signal === "KILL" || signal === "9";
    if (sigkill) {
      c.berth.manualStop = true;
      this.store.save(c);
    }
    // As dockerd: a SIGKILL returns once the exit is recorded (up to 10 s), so that `ps` right
    // after `kill` shows the container exited.
    const exited = sigkill ? this.#nextExit(c.Id) : undefined;
    await this.#rt.kill(c.Id, signal);
    this.#publish("kill", c, { signal: String(parseSignal(signal)) });
    if (exited) {
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 10_000)))]);
      if (timer) clearTimeout(timer);
      if (done) await this.#cleanedUp(c.Id);
    }
  }

  /**
   * Waits for the clean-up after an exit (unmounts, network, published ports), which the exit
   * handler queued under the container's lock right after it woke the exit waiters: `stop` and
   * `kill` return with the ports free, so that `docker stop a && docker run -p <same port>` works.
   */
  async #cleanedUp(id: string): Promise<void> {
    await this.#locked(id, async () => {});
  }

  /** POST /containers/{id}/restart */
  async restart(ref: string, options: { timeout?: number | undefined; signal?: string | undefined } = {}): Promise<void> {
    const c = this.store.mustResolve(ref);
    await this.stop(c.Id, options);
    await this.start(c.Id);
    this.#publish("restart", c);
  }

  /** POST /containers/{id}/pause */
  async pause(ref: string): Promise<void> {
    const c = this.store.mustResolve(ref);
    if (!c.State.Running) throw conflict(`Container ${c.Id} is not running`);
    if (c.State.Paused) throw conflict(`Container ${c.Id} is already paused`);
    await this.#rt.pause(c.Id);
    c.State.Paused = true;
    c.State.Status = "paused";
    this.store.save(c);
    this.#publish("pause", c);
  }

  async unpause(ref: string): Promise<void> {
    const c = this.store.mustResolve(ref);
    if (!c.State.Paused) throw conflict(`Container ${c.Id} is not paused`);
    await this.#rt.resume(c.Id);
    c.State.Paused = false;
    c.State.Status = "running";
    this.store.save(c);
    this.#publish("unpause", c);
  }

  /** DELETE /containers/{id} */
  async remove(ref: string, options: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const c0 = this.store.mustResolve(ref);
    await this.#locked(c0.Id, async () => {
      const c = this.store.get(c0.Id);
      if (!c) return;
      if (c.State.Running || c.State.Status === "restarting") {
        if (!options.force) {
          throw conflict(
            `cannot remove container "${c.Name}": container is ${c.State.Paused ? "paused" : "running"}: stop the container before removing or force remove`,
          );
        }
        c.berth.manualStop = true;
        this.store.save(c);
        if (c.State.Paused) await this.#rt.resume(c.Id).catch(() => {});
        this.#publish("kill", c, { signal: "9" });
        await this.#rt.kill(c.Id, "SIGKILL").catch(() => {});
        await Promise.race([this.#rt.waitExit(c.Id).catch(() => undefined), new Promise((r) => setTimeout(r, 10000))]);
      }
      if (!c.berth.runtimeDeleted || c.State.Running) {
        await this.#rt.delete(c.Id, { force: true }).catch((e: unknown) => this.#log.debug("runtime delete", { error: messageOf(e) }));
      }
      if (isMountPoint(this.rootfs(c))) await this.#host.unmount(this.rootfs(c)).catch(() => {});
      this.store.delete(c.Id);
      // Independent removals run together.
      await Promise.all([
        this.#net.unregister(c.Id).catch((e: unknown) => this.#log.warn("network unregister", { error: messageOf(e) })),
        this.#snap
          .remove(c.berth.snapshotKey)
          .catch((e: unknown) => this.#log.warn("snapshot remove", { error: messageOf(e) }))
          .then(() => rm(this.dir(c.Id), { recursive: true, force: true }).catch(() => {})),
        ...(options.volumes || c.HostConfig.AutoRemove
          ? (c.Mounts as MountPoint[])
              .filter((m) => m.anonymous && m.Name)
              .map((m) =>
                this.#volumes.remove(m.Name ?? "", true).catch((e: unknown) => this.#log.warn("volume remove", { error: messageOf(e) })),
              )
          : []),
      ]);
      this.#endAttachments(c.Id);
      this.#publish("destroy", c);
      const ws = this.#removeWaiters.get(c.Id);
      this.#removeWaiters.delete(c.Id);
      for (const w of ws ?? []) w();
    });
  }

  /** POST /containers/{id}/update: resources of a running container (runc update) and the restart policy. */
  async update(ref: string, body: Record<string, unknown>): Promise<void> {
    const c = this.store.mustResolve(ref);
    const hc = { ...c.HostConfig, ...(body as HostConfig) };
    if (body.RestartPolicy) hc.RestartPolicy = body.RestartPolicy as HostConfig["RestartPolicy"];
    validateHostConfig(hc);
    if (hc.AutoRemove && hc.RestartPolicy?.Name && hc.RestartPolicy.Name !== "no") {
      throw invalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container");
    }
    if (c.State.Running) {
      const { buildResources, readHostInfo } = await import("../runtime/mod.ts");
      await this.#rt.update(c.Id, buildResources(resourcesOf(hc) ?? {}, await readHostInfo()));
    }
    c.HostConfig = hc;
    this.store.save(c);
    this.#publish("update", c);
  }

  /** POST /containers/{id}/rename */
  rename(ref: string, newName: string): void {
    const c = this.store.mustResolve(ref);
    const n = `/${checkName(newName)}`;
    const other = this.store.byName(n);
    if (other && other.Id !== c.Id) {
      throw conflict(
        `Conflict. The container name "${n}" is already in use by container "${other.Id}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
    const old = c.Name;
    c.Name = n;
    this.store.save(c);
    this.#net.rename(c.Id, n);
    this.#publish("rename", c, { oldName: old });
  }

  /**
   * Attaches a client to a container's stdio. Output goes to `onData` until the process exits
   * (`onEnd`). When the container is not running yet, the attachment connects at start.
   */
  async attach(
    ref: string,
    options: { stdin: boolean; stdout: boolean; stderr: boolean; onData: (s: StdStream, d: Buffer) => void; onEnd: () => void },
  ): Promise<{ write(d: Buffer): void; end(): void; detach(): void }> {
    const c = this.store.mustResolve(ref);
    const a: Attachment = { ...options, pendingInput: [], inputEnded: false };
    this.#publish("attach", c);
    const set = this.#attachments.get(c.Id) ?? new Set();
    set.add(a);
    this.#attachments.set(c.Id, set);
    if (c.State.Running) await this.#connect(c, a);
    return {
      write: (d: Buffer) => {
        if (!a.stdin) return;
        if (a.session) void a.session.write(d).catch(() => {});
        else a.pendingInput.push(d);
      },
      end: () => {
        if (!a.stdin) return;
        a.inputEnded = true;
        if (a.session && c.Config.StdinOnce && !c.Config.Tty) a.session.end();
      },
      detach: () => {
        a.session?.close();
        this.#attachments.get(c.Id)?.delete(a);
      },
    };
  }

  async #connect(c: ContainerRecord, a: Attachment): Promise<void> {
    try {
      a.session = await this.#rt.attach(c.Id, {
        onData: (stream, data) => {
          if ((stream === "stdout" && a.stdout) || (stream === "stderr" && a.stderr)) a.onData(stream, data);
        },
      });
      for (const d of a.pendingInput) await a.session.write(d);
      a.pendingInput = [];
      if (a.inputEnded && c.Config.StdinOnce && !c.Config.Tty) a.session.end();
    } catch (e) {
      this.#log.warn("attach failed", { id: c.Id, error: messageOf(e) });
    }
  }

  #endAttachments(id: string): void {
    const set = this.#attachments.get(id);
    this.#attachments.delete(id);
    for (const a of set ?? []) {
      const session = a.session;
      if (!session) {
        a.onEnd();
        continue;
      }
      // Let the monitor deliver the last output first: end when its stream closes (bounded wait).
      void Promise.race([session.done, new Promise((r) => setTimeout(r, 2000))]).finally(() => {
        session.close();
        a.onEnd();
      });
    }
  }

  /** GET /containers/{id}/logs */
  async *logs(
    ref: string,
    options: {
      stdout: boolean;
      stderr: boolean;
      follow: boolean;
      tail?: number | undefined;
      since?: string | undefined;
      until?: string | undefined;
      signal?: AbortSignal;
    },
  ): AsyncGenerator<{ stream: StdStream; data: Buffer; time: string }> {
    const c = this.store.mustResolve(ref);
    const o: Parameters<typeof readLogs>[1] = { stdout: options.stdout, stderr: options.stderr };
    if (options.tail !== undefined && options.tail >= 0) o.tail = options.tail;
    if (options.since && options.since !== "0") o.sinceNanos = parseDockerTime(options.since);
    if (options.until && options.until !== "0") o.untilNanos = parseDockerTime(options.until);
    if (options.signal) o.signal = options.signal;
    if (options.follow && c.State.Running) {
      o.follow = true;
      o.stopWhen = this.#nextExit(c.Id);
    }
    try {
      for await (const e of readLogs(c.LogPath, o)) yield { stream: e.stream, data: e.data, time: e.time };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
  }

  /** Restores containers after a daemon restart: running ones are watched again, the others get their exit recorded. */
  async restore(): Promise<void> {
    for (const c of this.store.list()) {
      if (!c.State.Running && c.State.Status !== "restarting" && c.State.Status !== "paused") continue;
      try {
        const st = await this.#rt.restore(c.Id, this.dir(c.Id));
        if (st.status === "running" || st.status === "paused" || st.status === "created") {
          c.State.Pid = st.pid;
          this.store.save(c);
          if (c.State.Health) this.#health.start(c);
          if (logRotation(c)) this.#rotateLogs();
          this.#watch(c.Id);
        } else {
          await this.#onExit(c.Id, st.exit ?? { exitCode: 255, exitedAt: new Date(), oomKilled: false });
        }
      } catch (e) {
        this.#log.warn("cannot restore container", { id: c.Id, error: messageOf(e) });
        await this.#onExit(c.Id, { exitCode: 255, exitedAt: new Date(), oomKilled: false });
      }
    }
    // Containers with restart policy always start with the daemon.
    for (const c of this.store.list()) {
      const p = c.HostConfig.RestartPolicy?.Name;
      if (!c.State.Running && (p === "always" || (p === "unless-stopped" && !c.berth.manualStop)) && c.State.StartedAt !== ZERO_TIME) {
        await this.start(c.Id).catch((e: unknown) => this.#log.warn("restart at boot failed", { id: c.Id, error: messageOf(e) }));
      }
    }
  }

  /** Whether a user-defined network exists (set by the daemon once networking is wired). */
  networkExists: (name: string) => boolean = () => false;

  /** Exec processes and top read the runtime directly. */
  get runtime(): ContainerRuntime {
    return this.#rt;
  }

  /** GET /containers/{id}/top */
  async top(ref: string, psArgs: string): Promise<{ Titles: string[]; Processes: string[][] }> {
    const c = this.store.mustResolve(ref);
    if (!c.State.Running) throw conflict(`Container ${c.Id} is not running`);
    const pids = new Set<string>();
    const cg = await this.#cgroupPids(c.Id);
    for (const p of cg) pids.add(p);
    if (pids.size === 0 && c.State.Pid) pids.add(String(c.State.Pid));
    const args = (psArgs || "-ef").split(/\s+/).filter(Boolean);
    const r = await this.#host.run("ps", args, { allowFailure: true });
    if (r.code !== 0) throw invalidArgument(`Error running ps: ${r.stderr.trim()}`);
    const lines = r.stdout.split("\n").filter(Boolean);
    const header = lines[0] ?? "";
    const titles = header.trim().split(/\s+/);
    const pidCol = titles.indexOf("PID");
    if (pidCol < 0) throw invalidArgument(`Couldn't find PID field in ps output`);
    const procs: string[][] = [];
    for (const l of lines.slice(1)) {
      const f = l.trim().split(/\s+/);
      if (!pids.has(f[pidCol] ?? "")) continue;
      const row = f.slice(0, titles.length - 1);
      row.push(f.slice(titles.length - 1).join(" "));
      procs.push(row);
    }
    return { Titles: titles, Processes: procs };
  }

  async #cgroupPids(id: string): Promise<string[]> {
    const { readFile } = await import("node:fs/promises");
    for (const p of [
      `/sys/fs/cgroup/pids/berth/${id}/cgroup.procs`,
      `/sys/fs/cgroup/memory/berth/${id}/cgroup.procs`,
      `/sys/fs/cgroup/berth/${id}/cgroup.procs`,
    ]) {
      try {
        return (await readFile(p, "utf8")).split("\n").filter(Boolean);
      } catch {
        // try the next hierarchy
      }
    }
    return [];
  }

  /** Formats a log timestamp for `--timestamps`. */
  static timestamp(ns: bigint): string {
    return formatTimestampNanos(ns);
  }

  /** Ensures a container is running (exec, top, attach checks). */
  mustRun(ref: string): ContainerRecord {
    const c = this.store.mustResolve(ref);
    if (!c.State.Running) throw conflict(`Container ${c.Id} is not running`);
    if (c.State.Paused) throw conflict(`Container ${ref} is paused, unpause the container before exec`);
    return c;
  }

  /** Throws when no container matches (for routes that only check existence). */
  exists(ref: string): ContainerRecord {
    const c = this.store.resolve(ref);
    if (!c) throw notFound(`No such container: ${ref}`);
    return c;
  }

  /** Bytes written to the container's own layer (`SizeRw`). */
  async sizeRw(c: ContainerRecord): Promise<number> {
    try {
      return await this.#snap.usage(c.berth.snapshotKey);
    } catch {
      return 0;
    }
  }

  /** Whether any container references the image (for rmi). */
  imageUsers(imageId: string): { id: string; running: boolean }[] {
    return this.store
      .list()
      .filter((c) => c.Image === imageId)
      .map((c) => ({ id: c.Id, running: c.State.Running }));
  }

  failIfRunning(c: ContainerRecord): void {
    if (c.State.Running) throw failedPrecondition(`Container ${c.Id} is running`);
  }
}

/** Whether `dir` is a mount point (its device differs from its parent's): saves a umount spawn. */
function isMountPoint(dir: string): boolean {
  try {
    return statSync(dir).dev !== statSync(join(dir, "..")).dev;
  } catch {
    return false;
  }
}

/** What the network service needs of a container. */
function netSpec(c: ContainerRecord): ContainerNetSpec {
  const spec: ContainerNetSpec = {
    id: c.Id,
    name: c.Name,
    hostname: c.Config.Hostname ?? c.Id.slice(0, 12),
    domainname: c.Config.Domainname ?? "",
    networkMode: c.HostConfig.NetworkMode ?? "bridge",
    portBindings: (c.HostConfig.PortBindings ?? null) as ContainerNetSpec["portBindings"],
    publishAllPorts: c.HostConfig.PublishAllPorts === true,
    exposedPorts: c.Config.ExposedPorts ?? null,
    links: c.HostConfig.Links ?? null,
    env: c.Config.Env ?? null,
    dns: c.HostConfig.Dns ?? null,
    dnsSearch: c.HostConfig.DnsSearch ?? null,
    dnsOptions: c.HostConfig.DnsOptions ?? null,
  };
  if (c.berth.endpointsConfig) {
    // The docker CLI names the network mode's endpoint "default" when no --network is given.
    const eps = { ...(c.berth.endpointsConfig as Record<string, unknown>) };
    if ("default" in eps) {
      eps.bridge = eps.default;
      delete eps.default;
    }
    spec.endpointsConfig = eps as ContainerNetSpec["endpointsConfig"];
  }
  if (typeof c.berth.macAddress === "string") spec.macAddress = c.berth.macAddress;
  return spec;
}

/** `--log-opt max-size=10m` → conmon's log size cap (it truncates; `max-file` is not supported). */
/** Log drivers berth has: json-file (and local, stored alike) and none; Docker's others are refused clearly. */
/** The log options json-file and local take (dockerd refuses others at create). */
const LOG_OPTS = ["max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag", "mode", "max-buffer-size"];

function checkLogDriver(driver: string, opts: Record<string, string>): void {
  if (driver === "json-file" || driver === "local") {
    for (const k of Object.keys(opts)) if (!LOG_OPTS.includes(k)) throw invalidArgument(`unknown log opt '${k}' for ${driver} log driver`);
    logSizeOption(opts["max-size"]);
    const files = opts["max-file"];
    if (files !== undefined) {
      if (!/^-?\d+$/.test(files)) throw invalidArgument(`failed to initialize logging driver: invalid max-file "${files}"`);
      if (Number(files) < 1) throw invalidArgument("failed to initialize logging driver: max-file cannot be less than 1");
    }
    return;
  }
  if (driver === "none") return;
  const dockers = ["syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs", "gcplogs", "logentries"];
  if (dockers.includes(driver)) throw invalidArgument(`logging driver "${driver}" is not supported by berth (json-file, local, none)`);
  // Not a 404: the docker CLI takes a 404 from create for a missing image and pulls.
  throw invalidArgument(`error looking up logging plugin ${driver}: plugin "${driver}" not found`);
}

/** Size and file count when the log keeps rotated files (`max-size` with `max-file` >= 2). */
function logRotation(c: ContainerRecord): { maxSize: number; files: number } | undefined {
  const cfg = c.HostConfig.LogConfig?.Config ?? {};
  const maxSize = logSizeOption(cfg["max-size"]).logSizeMax;
  const files = Number(cfg["max-file"] ?? 1);
  return maxSize && files >= 2 ? { maxSize, files } : undefined;
}

function logSizeOption(v: string | undefined): { logSizeMax?: number } {
  if (!v) return {};
  const m = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(v.trim());
  if (!m) throw invalidArgument(`invalid value for log-opt max-size: "${v}"`);
  const mult = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? "").toLowerCase() as "k"] ?? 1;
  return { logSizeMax: Math.floor(Number(m[1]) * mult) };
}

function hostResolv(): string {
  try {
    // The host's resolv.conf without loopback resolvers a container cannot reach.
    const t = readFileSync("/etc/resolv.conf", "utf8");
    const lines = t.split("\n").filter((l) => !/^nameserver\s+127\./.test(l));
    if (!lines.some((l) => l.startsWith("nameserver"))) lines.push("nameserver 8.8.8.8", "nameserver 8.8.4.4");
    return `${lines.filter(Boolean).join("\n")}\n`;
  } catch {
    return "nameserver 8.8.8.8\n";
  }
}

/**
 * dockerd's checks of what a shared network namespace cannot have (its words), and its warning
 * for ports published on the host's network. Returns the create's warnings.
 */
function validateNetworkMode(body: CreateBody, hc: HostConfig): string[] {
  const mode = hc.NetworkMode ?? "";
  const shared = mode.startsWith("container:");
  const eps = Object.values(body.NetworkingConfig?.EndpointsConfig ?? {}) as ({ MacAddress?: string } | null)[];
  const mac = body.MacAddress || eps.find((e) => e?.MacAddress)?.MacAddress;
  const ports = Object.keys(hc.PortBindings ?? {}).length > 0 || hc.PublishAllPorts === true;
  if (shared) {
    if (body.Hostname) throw invalidArgument("conflicting options: hostname and the network mode");
    if (hc.Links?.length)
      throw invalidArgument(
        "conflicting options: container type network can't be used with links. This would result in undefined behavior",
      );
    if (hc.Dns?.length) throw invalidArgument("conflicting options: dns and the network mode");
    if (hc.ExtraHosts?.length) throw invalidArgument("conflicting options: custom host-to-IP mapping and the network mode");
  }
  if ((shared || mode === "host") && mac) throw invalidArgument("conflicting options: mac-address and the network mode");
  if (shared && ports) throw invalidArgument("conflicting options: port publishing and the container type network mode");
  if (shared && Object.keys(body.ExposedPorts ?? {}).length)
    throw invalidArgument("conflicting options: port exposing and the container type network mode");
  return mode === "host" && ports ? ["Published ports are discarded when using host network mode"] : [];
}

function validateHostConfig(hc: HostConfig, networkExists: (name: string) => boolean = () => false): void {
  const nonNeg = (k: keyof HostConfig) => {
    const v = hc[k];
    if (v !== undefined && v !== null && (typeof v !== "number" || v < 0 || !Number.isFinite(v))) {
      throw invalidArgument(`Invalid ${String(k)}: must be a non-negative number`);
    }
  };
  for (const k of ["Memory", "MemoryReservation", "NanoCpus", "CpuShares", "CpuPeriod", "CpuQuota", "ShmSize", "BlkioWeight"] as const)
    nonNeg(k);
  if (hc.Memory && hc.Memory > 0 && hc.Memory < 6 * 1024 * 1024) throw invalidArgument("Minimum memory limit allowed is 6MB");
  if (hc.NanoCpus && hc.NanoCpus > os.cpus().length * 1e9) {
    throw invalidArgument(`Range of CPUs is from 0.01 to ${os.cpus().length}.00, as there are only ${os.cpus().length} CPUs available`);
  }
  if (hc.CpusetCpus && !/^[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?)*$/.test(hc.CpusetCpus)) {
    throw invalidArgument(`Invalid value ${hc.CpusetCpus} for cpuset cpus`);
  }
  const rp = hc.RestartPolicy?.Name ?? "";
  if (!["", "no", "always", "unless-stopped", "on-failure"].includes(rp)) throw invalidArgument(`invalid restart policy '${rp}'`);
  if (hc.AutoRemove && rp !== "" && rp !== "no") throw invalidArgument("can't create 'AutoRemove' container with restart policy");
  const nm = hc.NetworkMode ?? "";
  if (nm && !["default", "bridge", "host", "none"].includes(nm) && !nm.startsWith("container:") && !networkExists(nm)) {
    // 400, not 404: a 404 would make the docker CLI try to pull the image.
    throw invalidArgument(`network ${nm} not found`);
  }
}

function resourcesOf(hc: HostConfig): Parameters<typeof generateSpec>[0]["resources"] {
  const r: NonNullable<Parameters<typeof generateSpec>[0]["resources"]> = {};
  if (hc.Memory) r.memory = hc.Memory;
  if (hc.MemoryReservation) r.memoryReservation = hc.MemoryReservation;
  if (hc.MemorySwap) r.memorySwap = hc.MemorySwap;
  if (hc.MemorySwappiness !== undefined && hc.MemorySwappiness !== null && hc.MemorySwappiness >= 0)
    r.memorySwappiness = hc.MemorySwappiness;
  if (hc.OomKillDisable) r.oomKillDisable = true;
  if (hc.CpuShares) r.cpuShares = hc.CpuShares;
  if (hc.NanoCpus) r.nanoCpus = hc.NanoCpus;
  if (hc.CpuPeriod) r.cpuPeriod = hc.CpuPeriod;
  if (hc.CpuQuota) r.cpuQuota = hc.CpuQuota;
  if (hc.CpusetCpus) r.cpusetCpus = hc.CpusetCpus;
  if (hc.CpusetMems) r.cpusetMems = hc.CpusetMems;
  if (hc.PidsLimit && hc.PidsLimit > 0) r.pidsLimit = hc.PidsLimit;
  if (hc.BlkioWeight) r.blkioWeight = hc.BlkioWeight;
  return r;
}

function emptyNetworkSettings(): Record<string, unknown> {
  return {
    Bridge: "",
    SandboxID: "",
    SandboxKey: "",
    HairpinMode: false,
    LinkLocalIPv6Address: "",
    LinkLocalIPv6PrefixLen: 0,
    Ports: {},
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: "",
    Gateway: "",
    GlobalIPv6Address: "",
    GlobalIPv6PrefixLen: 0,
    IPAddress: "",
    IPPrefixLen: 0,
    IPv6Gateway: "",
    MacAddress: "",
    Networks: {},
  };
}
