import { closeSync, constants as fsc, existsSync, lstatSync, openSync, readFileSync, realpathSync, symlinkSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { posix } from "node:path";
import { failedPrecondition, type Host, invalidArgument, notFound } from "../base/mod.ts";
import { VOLUME_MODE_KINDS, VOLUME_MODES } from "../oci/mod.ts";
import { type MountInput, resolveInRoot } from "../runtime/mod.ts";
import type { VolumeService } from "../volume/mod.ts";
import type { ContainerRecord, HostConfig } from "./model.ts";

/** A mount of a container as `Mounts` in inspect shows it, plus what berth needs to set it up. */
export interface MountPoint {
  Type: "bind" | "volume" | "tmpfs";
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
  /** berth: volume created for this container (`-v /path`, image VOLUME): removed with `rm -v`. */
  anonymous?: boolean;
  noCopy?: boolean;
  tmpfsOptions?: string[];
}

interface MountSpec {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  BindOptions?: { Propagation?: string; CreateMountpoint?: boolean };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string>; DriverConfig?: { Name?: string; Options?: Record<string, string> } };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

function cleanDest(d: string, what: string): string {
  if (!d?.startsWith("/"))
    throw invalidArgument(`invalid mount config for type "${what}": invalid mount path: '${d}' mount path must be absolute`);
  const c = posix.normalize(d);
  if (c === "/") throw invalidArgument(`invalid specification: destination can't be '/'`);
  return c.replace(/\/$/, "");
}

/**
 * Plans a container's mounts from `-v` (Binds), `--mount` (Mounts), `--volumes-from`, and
 * the image's and `-v /path`'s anonymous volumes, creating named volumes that do not exist yet
 * (as Docker does at create). Later entries for the same destination are refused.
 */
export async function planMounts(
  hc: HostConfig,
  configVolumes: Record<string, object> | null | undefined,
  volumes: VolumeService,
  lookup: (ref: string) => ContainerRecord,
): Promise<MountPoint[]> {
  const out: MountPoint[] = [];
  const taken = new Set<string>();
  const add = (m: MountPoint) => {
    if (taken.has(m.Destination)) throw invalidArgument(`Duplicate mount point: ${m.Destination}`);
    taken.add(m.Destination);
    out.push(m);
  };
  // Volumes this call made: removed again if a later mount is refused (nothing half-made).
  const created: string[] = [];
  const create = async (o: Parameters<VolumeService["create"]>[0]) => {
    const existed = o?.name ? volumes.get(o.name) !== undefined : false;
    const v = await volumes.create(o);
    if (!existed) created.push(v.Name);
    return v;
  };
  try {
    for (const b of hc.Binds ?? []) {
      const parts = b.split(":");
      if (parts.length < 2 || parts.length > 3) throw invalidArgument(`invalid volume specification: '${b}'`);
      const [src = "", dst = "", mode = ""] = parts;
      const opts = mode.split(",").filter(Boolean);
      for (const o of opts) if (!VOLUME_MODES.has(o)) throw invalidArgument(`invalid mode: ${o}`);
      // As dockerd: at most one of each kind of mode (rw/ro, a propagation, a label, a consistency).
      if (VOLUME_MODE_KINDS.some((k) => opts.filter((o) => k.includes(o)).length > 1)) throw invalidArgument(`invalid mode: ${mode}`);
      const rw = !opts.includes("ro");
      const prop = opts.find((o) => /^r?(shared|slave|private)$/.test(o)) ?? "";
      const spec = (e: unknown): never => {
        throw invalidArgument(`invalid volume specification: '${b}': ${(e as Error).message}`);
      };
      let destination = "";
      try {
        destination = cleanDest(dst, src.startsWith("/") ? "bind" : "volume");
      } catch (e) {
        spec(e);
      }
      if (taken.has(destination)) throw invalidArgument(`Duplicate mount point: ${destination}`);
      if (src.startsWith("/")) {
        if (opts.includes("nocopy")) spec(new Error(`invalid mount config for type "bind": field VolumeOptions must not be specified`));
        add({
          Type: "bind",
          Source: posix.normalize(src),
          Destination: destination,
          Mode: mode,
          RW: rw,
          Propagation: prop || "rprivate",
        });
      } else {
        const v = await create({ name: src });
        add({
          Type: "volume",
          Name: v.Name,
          Source: v.Mountpoint,
          Destination: destination,
          Driver: "local",
          Mode: mode || "z",
          RW: rw,
          Propagation: "",
          noCopy: opts.includes("nocopy"),
        });
      }
    }
    for (const raw of (hc.Mounts ?? []) as MountSpec[]) {
      const type = raw.Type ?? "volume";
      const dst = cleanDest(raw.Target ?? "", type);
      if (type === "bind") {
        const src = raw.Source ?? "";
        if (!src) throw invalidArgument(`invalid mount config for type "bind": field Source must not be empty`);
        if (!src.startsWith("/"))
          throw invalidArgument(`invalid mount config for type "bind": invalid mount path: '${src}' mount path must be absolute`);
        if (!existsSync(src)) {
          if (raw.BindOptions?.CreateMountpoint) {
            const { mkdir } = await import("node:fs/promises");
            await mkdir(src, { recursive: true });
          } else throw invalidArgument(`invalid mount config for type "bind": bind source path does not exist: ${src}`);
        }
        add({
          Type: "bind",
          Source: src,
          Destination: dst,
          Mode: "",
          RW: !raw.ReadOnly,
          Propagation: raw.BindOptions?.Propagation || "rprivate",
        });
      } else if (type === "volume") {
        const driver = raw.VolumeOptions?.DriverConfig?.Name;
        if (driver && driver !== "local") throw invalidArgument(`plugin "${driver}" not found`);
        const opts: Parameters<VolumeService["create"]>[0] = { anonymous: !raw.Source };
        if (raw.Source) opts.name = raw.Source;
        if (raw.VolumeOptions?.Labels) opts.labels = raw.VolumeOptions.Labels;
        if (raw.VolumeOptions?.DriverConfig?.Options) opts.driverOpts = raw.VolumeOptions.DriverConfig.Options;
        const v = await create(opts);
        add({
          Type: "volume",
          Name: v.Name,
          Source: v.Mountpoint,
          Destination: dst,
          Driver: "local",
          Mode: "z",
          RW: !raw.ReadOnly,
          Propagation: "",
          anonymous: !raw.Source,
          noCopy: raw.VolumeOptions?.NoCopy === true,
        });
      } else if (type === "tmpfs") {
        if (raw.Source) throw invalidArgument(`invalid mount config for type "tmpfs": field Source must not be specified`);
        const o: string[] = [];
        if (raw.TmpfsOptions?.SizeBytes) o.push(`size=${raw.TmpfsOptions.SizeBytes}`);
        if (raw.TmpfsOptions?.Mode) o.push(`mode=${raw.TmpfsOptions.Mode.toString(8)}`);
        add({ Type: "tmpfs", Source: "", Destination: dst, Mode: "", RW: !raw.ReadOnly, Propagation: "", tmpfsOptions: o });
      } else throw invalidArgument(`invalid mount config for type "${type}": mount type unknown`);
    }
    for (const ref of hc.VolumesFrom ?? []) {
      const [name = "", mode = ""] = ref.split(":");
      const other = lookup(name);
      for (const m of other.Mounts as MountPoint[]) {
        if (taken.has(m.Destination)) continue;
        const rw = mode === "ro" ? false : mode === "rw" ? true : m.RW;
        add({ ...m, RW: rw, anonymous: false });
      }
    }
    for (const dst of Object.keys(configVolumes ?? {})) {
      const d = cleanDest(dst, "volume");
      if (taken.has(d)) continue;
      const v = await create({ anonymous: true });
      add({
        Type: "volume",
        Name: v.Name,
        Source: v.Mountpoint,
        Destination: d,
        Driver: "local",
        Mode: "",
        RW: true,
        Propagation: "",
        anonymous: true,
      });
    }
  } catch (e) {
    for (const n of created.reverse()) await volumes.remove(n, true).catch(() => {});
    throw e;
  }
  return out;
}

/** The mount points as inspect's `Mounts` shows them. */
export function mountsForInspect(mounts: MountPoint[]): Record<string, unknown>[] {
  return mounts.map((m) => {
    const o: Record<string, unknown> = { Type: m.Type };
    if (m.Name) o.Name = m.Name;
    o.Source = m.Source;
    o.Destination = m.Destination;
    if (m.Driver) o.Driver = m.Driver;
    o.Mode = m.Mode;
    o.RW = m.RW;
    o.Propagation = m.Propagation;
    return o;
  });
}

/**
 * Turns mount points into runtime mounts at start: volumes are acquired (mounted when they
 * have options) and a new, empty volume is first filled from the image's content at its
 * destination (unless nocopy), with ownership and modes, as Docker does.
 */
export async function prepareMounts(mounts: MountPoint[], rootfs: string, volumes: VolumeService, host: Host): Promise<MountInput[]> {
  // Before anything is acquired: a propagation the source's mount cannot give fails the start.
  for (const m of mounts) if (m.Type === "bind") checkPropagation(m.Source, m.Propagation);
  const out: MountInput[] = [];
  for (const m of mounts) {
    if (m.Type === "bind") {
      if (!existsSync(m.Source)) {
        const { mkdir } = await import("node:fs/promises");
        await mkdir(m.Source, { recursive: true });
      }
      const b: MountInput = { type: "bind", source: m.Source, destination: m.Destination, readonly: !m.RW };
      if (m.Propagation) (b as { propagation?: string }).propagation = m.Propagation;
      out.push(b);
    } else if (m.Type === "volume") {
      if (!m.Name) throw notFound(`Volume for ${m.Destination} has no name`);
      const src = await volumes.acquire(m.Name);
      if (!m.noCopy && (await isEmpty(src))) {
        const inImage = await resolveInRoot(rootfs, m.Destination);
        if (inImage.startsWith(`${rootfs}/`)) {
          try {
            const s = await stat(inImage);
            if (s.isDirectory()) {
              // Copy the image's content (the host's cp reads the resolved path; symlinks are copied, not followed).
              await host.run("cp", ["-a", "--no-dereference", `${inImage}/.`, `${src}/`]);
              const { chown, chmod } = await import("node:fs/promises");
              await chown(src, s.uid, s.gid);
              await chmod(src, s.mode & 0o7777);
            }
          } catch {
            // nothing at that path in the image: the volume stays empty
          }
        }
      }
      out.push({ type: "bind", source: src, destination: m.Destination, readonly: !m.RW });
    } else {
      out.push({ type: "tmpfs", destination: m.Destination, options: [...(m.tmpfsOptions ?? []), ...(m.RW ? [] : ["ro"])] } as MountInput);
    }
  }
  return out;
}

/** Releases a container's volumes after it stopped. */
export async function releaseMounts(mounts: MountPoint[], volumes: VolumeService): Promise<void> {
  for (const m of mounts) if (m.Type === "volume" && m.Name) await volumes.release(m.Name).catch(() => {});
}

async function isEmpty(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch {
    return true;
  }
}

/** Where berth's /etc/mtab link points (Docker's -init layer has the same). */
export const MTAB_TARGET = "/proc/mounts";

/**
 * What Docker's hidden "-init" layer gives every container whose image lacks it: an empty
 * `/.dockerenv` (what programs look for to tell they run in a container) and `/etc/mtab` linked
 * to `/proc/mounts`. Made in the container's own layer before its first start; `diff` and
 * `commit` leave them out while they are unchanged (archive.ts, PLACEHOLDERS), `export` has them
 * (as Docker's). Nothing is followed: the rootfs is the stopped container's, and `/etc` must be a
 * directory of its own.
 */
export function ensureInitFiles(rootfs: string): void {
  try {
    closeSync(openSync(`${rootfs}/.dockerenv`, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o755));
  } catch {
    // There already (the image's, or an earlier start's), or a read-only layer: leave it.
  }
  try {
    if (lstatSync(`${rootfs}/etc`, { throwIfNoEntry: false })?.isDirectory()) symlinkSync(MTAB_TARGET, `${rootfs}/etc/mtab`);
  } catch {
    // The image has its own /etc/mtab.
  }
}

/**
 * dockerd's check of a bind mount's propagation: `shared`/`rshared` need the source's mount to
 * be shared, `slave`/`rslave` shared or a slave; otherwise the start fails with its words.
 */
function checkPropagation(source: string, propagation: string): void {
  const wantsShared = propagation === "shared" || propagation === "rshared";
  const wantsSlave = propagation === "slave" || propagation === "rslave";
  if (!wantsShared && !wantsSlave) return;
  const m = mountOf(source);
  if (!m) return;
  if (wantsShared && !m.shared) throw failedPrecondition(`path ${source} is mounted on ${m.mountPoint} but it is not a shared mount`);
  if (wantsSlave && !m.shared && !m.slave)
    throw failedPrecondition(`path ${source} is mounted on ${m.mountPoint} but it is not a shared or slave mount`);
}

/** The mount holding `path` (or its nearest existing ancestor), from /proc/self/mountinfo. */
function mountOf(path: string): { mountPoint: string; shared: boolean; slave: boolean } | undefined {
  let p = posix.normalize(path);
  let real: string | undefined;
  for (;;) {
    try {
      real = realpathSync(p);
      break;
    } catch {
      if (p === "/") return undefined;
      p = posix.dirname(p);
    }
  }
  let best: { mountPoint: string; shared: boolean; slave: boolean } | undefined;
  let info: string;
  try {
    info = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return undefined;
  }
  for (const line of info.split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    if (dash < 6) continue;
    // Mount points escape space, tab, newline and backslash as octal.
    const mp = (f[4] ?? "").replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    if (!(real === mp || mp === "/" || real.startsWith(`${mp}/`))) continue;
    // The longest mount point wins; of equal ones, the last (mounted on top).
    if (best && mp.length < best.mountPoint.length) continue;
    const optional = f.slice(6, dash);
    best = { mountPoint: mp, shared: optional.some((o) => o.startsWith("shared:")), slave: optional.some((o) => o.startsWith("master:")) };
  }
  return best;
}
