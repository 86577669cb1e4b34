/**
 * Running a RUN instruction: a container on the step's active snapshot with the isolation,
 * security defaults and monitor (conmon + runc) of `docker run`, its output streamed live.
 *
 * Mount points the runtime needs (`/etc/hosts`, `/etc/resolv.conf`, `/proc`, the targets of
 * `--mount`) must not end up in the step's layer when the image lacks them. Like Docker's
 * "init" layer, the ones missing are created in a small extra lower directory placed above
 * the image's layers for the duration of the run; existing parent directories are mirrored
 * there with their owner, mode and times so that nothing changes in what RUN sees.
 */
import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { chmod, lchown, lstat, mkdir, rm, utimes, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { BerthError, type Host, internal, type Logger, messageOf } from "../base/mod.ts";
import {
  type ContainerRuntime,
  generateSpec,
  type MountInput,
  type NamespaceMode,
  type ResourceOptions,
  resolveInRoot,
  type Ulimit,
} from "../runtime/mod.ts";
import type { NetworkService } from "../network/mod.ts";
import type { OverlaySnapshotter } from "../snapshot/mod.ts";

/** Networking of one RUN container. */
export interface NetworkAttachment {
  namespace: NamespaceMode;
  /** Contents of /etc/hosts and /etc/resolv.conf for the container. */
  hosts: string;
  resolvConf: string;
  release(): Promise<void>;
}

/**
 * The hook through which the builder gets networking for RUN (`--network`, the build's
 * `networkmode`): "default", "host", "none", or a network name. The daemon may replace the
 * default host-namespace implementation with its bridge.
 */
export interface BuildNetwork {
  attach(containerId: string, mode: string): Promise<NetworkAttachment>;
}

function hostFile(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
}

const LOCALHOST = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/**
 * RUN networking until the bridge exists: the host's network namespace (its /etc/hosts and
 * resolv.conf) for "default" and "host", a private namespace with loopback only for "none".
 */
export function hostNetwork(): BuildNetwork {
  return {
    attach: async (_id, mode) => {
      if (mode === "none") return { namespace: "private", hosts: LOCALHOST, resolvConf: "", release: async () => {} };
      if (mode !== "default" && mode !== "host" && mode !== "bridge" && mode !== "") {
        throw new BerthError("NotImplemented", `Network mode "${mode}" is not supported for RUN yet`);
      }
      const hosts = `${hostFile("/etc/hosts", LOCALHOST).trimEnd()}\n`;
      return { namespace: "host", hosts, resolvConf: hostFile("/etc/resolv.conf", ""), release: async () => {} };
    },
  };
}

/**
 * RUN networking through the daemon's network service, as `docker run` gets it: "default"
 * is the predefined bridge (NAT to the outside, the host's resolvers), "host" the host's
 * namespace, "none" loopback only, another name a user-defined network. The step's container
 * is registered for the duration of the RUN and unregistered after.
 */
export function serviceNetwork(net: NetworkService): BuildNetwork {
  const host = hostNetwork();
  return {
    attach: async (id, mode) => {
      if (mode === "host") return await host.attach(id, mode);
      const networkMode = mode === "" || mode === "default" ? "bridge" : mode;
      const short = id.slice(0, 12);
      let r: Awaited<ReturnType<NetworkService["attach"]>>;
      try {
        r = await net.attach({ id, name: `/build-${short}`, hostname: short, networkMode });
      } catch (e) {
        await net.unregister(id).catch(() => {});
        throw e;
      }
      return {
        namespace: r.netns,
        hosts: `${LOCALHOST}${r.hosts.map((l) => `${l}\n`).join("")}`,
        resolvConf: r.resolvConf,
        // The endpoints and the namespace go in the background, as after `run --rm`: the
        // network service makes whatever depends on them wait (the same id's next attach,
        // network removal, prune, shutdown), and the step can commit meanwhile.
        release: async () => {
          await net.detach(id, { background: true }).catch(() => {});
          await net.unregister(id, { background: true }).catch(() => {});
        },
      };
    },
  };
}

/** A mount of a RUN container: where, and whether its mount point is a file or a directory. */
export interface RunMountSpec {
  input: MountInput;
  kind: "file" | "dir";
}

/** What to run. */
export interface RunSpec {
  snapshotKey: string;
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  mounts: RunMountSpec[];
  network: string;
  extraHosts: string[];
  onStart(containerId: string): void;
  onOutput(text: string): void;
  signal?: AbortSignal | undefined;
  resources?: ResourceOptions | undefined;
  shmSize?: number | undefined;
  ulimits?: Ulimit[] | undefined;
}

/** Runs RUN containers. */
export class StepRunner {
  #host: Host;
  #runtime: ContainerRuntime;
  #snapshots: OverlaySnapshotter;
  #root: string;
  #log: Logger;
  network: BuildNetwork;

  constructor(deps: {
    host: Host;
    runtime: ContainerRuntime;
    snapshots: OverlaySnapshotter;
    root: string;
    log: Logger;
    network: BuildNetwork;
  }) {
    this.#host = deps.host;
    this.#runtime = deps.runtime;
    this.#snapshots = deps.snapshots;
    this.#root = deps.root;
    this.#log = deps.log;
    this.network = deps.network;
  }

  /** Directory holding the bundles of running steps (cleaned at start). */
  get root(): string {
    return this.#root;
  }

  /** Runs the command to completion; returns its exit code. */
  async run(spec: RunSpec): Promise<number> {
    const id = randomBytes(32).toString("hex");
    const dir = join(this.#root, id.slice(0, 12));
    const rootfs = join(dir, "rootfs");
    const init = join(dir, "init");
    await mkdir(rootfs, { recursive: true, mode: 0o700 });
    let net: NetworkAttachment | undefined;
    let created = false;
    try {
      net = await this.network.attach(id, spec.network);
      const files = join(dir, "files");
      await mkdir(files, { mode: 0o700 });
      await writeFile(join(files, "hostname"), `${id.slice(0, 12)}\n`);
      await writeFile(join(files, "hosts"), `${net.hosts}${spec.extraHosts.map((h) => `${h}\n`).join("")}`);
      await writeFile(join(files, "resolv.conf"), net.resolvConf);
      const mounts: RunMountSpec[] = [
        { input: { type: "bind", source: join(files, "hostname"), destination: "/etc/hostname" }, kind: "file" },
        { input: { type: "bind", source: join(files, "hosts"), destination: "/etc/hosts" }, kind: "file" },
        { input: { type: "bind", source: join(files, "resolv.conf"), destination: "/etc/resolv.conf" }, kind: "file" },
        ...spec.mounts,
      ];
      const points: { path: string; kind: "file" | "dir" }[] = [
        { path: "/proc", kind: "dir" },
        { path: "/sys", kind: "dir" },
        { path: "/dev", kind: "dir" },
        ...mounts.map((m) => ({ path: m.input.destination, kind: m.kind })),
      ];
      await this.#mountWithInit(spec.snapshotKey, rootfs, init, points);
      const input: Parameters<typeof generateSpec>[0] = {
        rootfs,
        args: spec.args,
        env: spec.env,
        cwd: spec.cwd || "/",
        user: spec.user,
        hostname: id.slice(0, 12),
        network: net.namespace,
        mounts: mounts.map((m) => m.input),
        cgroupsPath: `/berth/${id}`,
      };
      if (spec.resources) input.resources = spec.resources;
      if (spec.shmSize) input.shmSize = spec.shmSize;
      if (spec.ulimits?.length) input.ulimits = spec.ulimits;
      const generated = await generateSpec(input);
      if (spec.signal?.aborted) throw new BerthError("Canceled", "The build was canceled");
      spec.onStart(id);
      await this.#runtime.create(id, { bundleDir: dir, spec: generated.spec, logPath: join(dir, "ctr.log") });
      created = true;
      const decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
      const session = await this.#runtime.attach(id, {
        onData: (stream, data) => {
          const text = decoders[stream].write(data);
          if (text) spec.onOutput(text);
        },
      });
      const onAbort = () => void this.#runtime.kill(id, "KILL").catch(() => {});
      spec.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await this.#runtime.start(id);
        const exit = await this.#runtime.waitExit(id);
        await Promise.race([session.done, new Promise((r) => setTimeout(r, 2000))]);
        for (const d of Object.values(decoders)) {
          const rest = d.end();
          if (rest) spec.onOutput(rest);
        }
        if (spec.signal?.aborted) throw new BerthError("Canceled", "The build was canceled");
        return exit.exitCode;
      } finally {
        spec.signal?.removeEventListener("abort", onAbort);
        session.close();
      }
    } finally {
      if (created)
        await this.#runtime
          .delete(id, { force: true })
          .catch((e: unknown) => this.#log.warn("cannot delete build container", { id, error: messageOf(e) }));
      await this.#host.unmount(rootfs).catch(() => this.#host.unmount(rootfs, { lazy: true }).catch(() => {}));
      await net?.release().catch(() => {});
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  /**
   * Mounts the active snapshot at `rootfs`, with an extra lower `init` holding the mount
   * points the image lacks (so the runtime does not create them in the step's layer).
   */
  async #mountWithInit(key: string, rootfs: string, init: string, points: { path: string; kind: "file" | "dir" }[]): Promise<void> {
    // Find what is missing by looking at the merged view once.
    await this.#snapshots.mount(key, rootfs);
    const create: { rel: string; kind: "file" | "dir"; like?: Stats }[] = [];
    try {
      const seen = new Set<string>();
      for (const p of points) {
        const host = await resolveInRoot(rootfs, p.path);
        const rel = posix.relative(rootfs, host);
        if (rel === "" || rel.startsWith("..")) continue;
        if (await lstat(host).catch(() => undefined)) continue;
        const parts = rel.split("/");
        for (let i = 0; i < parts.length; i++) {
          const sub = parts.slice(0, i + 1).join("/");
          if (seen.has(sub)) continue;
          seen.add(sub);
          const st = await lstat(join(rootfs, sub)).catch(() => undefined);
          if (st && !st.isDirectory()) break;
          const last = i === parts.length - 1;
          create.push({ rel: sub, kind: last ? p.kind : "dir", ...(st ? { like: st } : {}) });
        }
      }
    } finally {
      await this.#host.unmount(rootfs);
    }
    if (create.length === 0) {
      await this.#snapshots.mount(key, rootfs);
      return;
    }
    await mkdir(init, { mode: 0o755 });
    for (const c of create) {
      const path = join(init, c.rel);
      if (c.kind === "dir") await mkdir(path, { mode: 0o755 });
      else await writeFile(path, "", { mode: 0o644 });
    }
    // Mirror the metadata of existing directories, deepest first (utimes after children).
    for (const c of [...create].reverse()) {
      if (!c.like) continue;
      const path = join(init, c.rel);
      await lchown(path, c.like.uid, c.like.gid);
      await chmod(path, c.like.mode & 0o7777);
      await utimes(path, c.like.atime, c.like.mtime);
    }
    const m = this.#snapshots.mounts(key)[0];
    if (!m) throw internal(`Snapshot "${key}" has no mounts`);
    let options: string[];
    if (m.type === "overlay") {
      options = m.options.map((o) => (o.startsWith("lowerdir=") ? `lowerdir=${init}:${o.slice(9)}` : o));
    } else {
      const upper = this.#snapshots.dir(key);
      options = [`lowerdir=${init}`, `upperdir=${upper}`, `workdir=${join(dirname(upper), "work")}`, "index=off"];
    }
    await this.#host.mount("overlay", rootfs, "overlay", options, m.cwd ?? this.#snapshots.root);
  }
}
