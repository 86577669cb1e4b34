import { mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { conflict, type Db, type Host, invalidArgument, type Logger, type Migration, notFound, randomId } from "../base/mod.ts";

/** A volume as `GET /volumes/{name}` shows it. */
export interface Volume {
  Name: string;
  Driver: "local";
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: "local";
  Options: Record<string, string>;
  /** berth: created implicitly for `-v /path` or an image VOLUME. */
  anonymous: boolean;
}

interface Row {
  name: string;
  created_at: string;
  labels: string;
  options: string;
  anonymous: number;
}

const migrations: Migration[] = [
  {
    version: 1,
    sql: `CREATE TABLE volumes (
      name TEXT PRIMARY KEY,
      created_at TEXT NOT NULL,
      labels TEXT NOT NULL DEFAULT '{}',
      options TEXT NOT NULL DEFAULT '{}',
      anonymous INTEGER NOT NULL DEFAULT 0
    );`,
  },
];

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/**
 * The `local` volume driver, as Docker's: a volume is a directory `volumes/<name>/_data`, or —
 * with `-o type=… -o device=… -o o=…` — a mount made when a container uses it and removed when
 * the last user stops. Volumes in use cannot be removed; anonymous ones go with `rm -v`,
 * `--rm` and `volume prune`.
 */
export class VolumeService {
  readonly root: string;
  #db: Db;
  #host: Host;
  #log: Logger;
  #mounted = new Map<string, number>();
  /** Which containers use a volume (set by the container service). */
  users: (name: string) => string[] = () => [];
  /**
   * Receives the volume events (set by the daemon): create, destroy here; mount and unmount
   * from the container service, which knows the container and destination.
   */
  publish: (action: "create" | "destroy" | "mount" | "unmount", name: string, attributes: Record<string, string>) => void = () => {};

  constructor(root: string, db: Db, host: Host, log: Logger) {
    this.root = root;
    this.#db = db;
    this.#host = host;
    this.#log = log;
    db.migrate("volumes", migrations);
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o701 });
  }

  #toVolume(r: Row): Volume {
    return {
      Name: r.name,
      Driver: "local",
      Mountpoint: join(this.root, r.name, "_data"),
      CreatedAt: r.created_at,
      Labels: JSON.parse(r.labels) as Record<string, string>,
      Scope: "local",
      Options: JSON.parse(r.options) as Record<string, string>,
      anonymous: r.anonymous === 1,
    };
  }

  get(name: string): Volume | undefined {
    const r = this.#db.get<Row>("SELECT * FROM volumes WHERE name = ?", name);
    return r ? this.#toVolume(r) : undefined;
  }

  mustGet(name: string): Volume {
    const v = this.get(name);
    if (!v) throw notFound(`get ${name}: no such volume`);
    return v;
  }

  list(): Volume[] {
    return this.#db.all<Row>("SELECT * FROM volumes ORDER BY name").map((r) => this.#toVolume(r));
  }

  /** POST /volumes/create; creating an existing name returns it (as Docker does). */
  async create(
    options: {
      name?: string;
      driver?: string;
      labels?: Record<string, string>;
      driverOpts?: Record<string, string>;
      anonymous?: boolean;
    } = {},
  ): Promise<Volume> {
    const driver = options.driver || "local";
    const name = options.name || randomId();
    if (driver !== "local") throw notFound(`create ${name}: error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    if (name.length === 1 && /^[a-zA-Z0-9]$/.test(name)) {
      throw invalidArgument(`create ${name}: volume name is too short, names should be at least two alphanumeric characters`);
    }
    if (!NAME_RE.test(name)) {
      throw invalidArgument(
        `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
      );
    }
    const existing = this.get(name);
    if (existing) return existing;
    const opts = options.driverOpts ?? {};
    for (const k of Object.keys(opts)) {
      if (!["type", "device", "o", "size"].includes(k)) throw invalidArgument(`invalid option key: "${k}"`);
    }
    if ((opts.type || opts.device) && !(opts.type && opts.device)) {
      throw invalidArgument(`missing required option: "${opts.type ? "device" : "type"}"`);
    }
    const dir = join(this.root, name, "_data");
    await mkdir(dir, { recursive: true, mode: 0o755 });
    try {
      this.#db.run(
        "INSERT INTO volumes (name, created_at, labels, options, anonymous) VALUES (?, ?, ?, ?, ?)",
        name,
        new Date().toISOString(),
        JSON.stringify(options.labels ?? {}),
        JSON.stringify(opts),
        options.anonymous ? 1 : 0,
      );
    } catch (e) {
      await rm(join(this.root, name), { recursive: true, force: true });
      throw e;
    }
    this.publish("create", name, { driver: "local" });
    return this.mustGet(name);
  }

  /** DELETE /volumes/{name} */
  async remove(name: string, force = false): Promise<void> {
    const v = this.get(name);
    if (!v) {
      if (force) return;
      throw notFound(`get ${name}: no such volume`);
    }
    const users = this.users(name);
    if (users.length) throw conflict(`remove ${name}: volume is in use - [${users.join(", ")}]`);
    await this.#unmountIfMounted(v, true);
    this.#db.run("DELETE FROM volumes WHERE name = ?", name);
    await rm(join(this.root, name), { recursive: true, force: true });
    this.publish("destroy", name, { driver: "local" });
  }

  /** POST /volumes/prune: anonymous unused volumes, or all unused with `all=true`. */
  async prune(filters: Map<string, string[]>): Promise<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }> {
    const all = ["true", "1"].includes(filters.get("all")?.[0] ?? "");
    const deleted: string[] = [];
    let space = 0;
    for (const v of this.list()) {
      if (!all && !v.anonymous) continue;
      if (this.users(v.Name).length) continue;
      if (!matchLabels(v.Labels, filters.get("label") ?? [], filters.get("label!") ?? [])) continue;
      space += await du(v.Mountpoint);
      await this.remove(v.Name).catch((e: unknown) => this.#log.warn("volume prune", { name: v.Name, error: String(e) }));
      deleted.push(v.Name);
    }
    return { VolumesDeleted: deleted.length ? deleted : null, SpaceReclaimed: space };
  }

  /** Makes a volume ready for a container: mounts `-o type=…` volumes on first use. */
  async acquire(name: string): Promise<string> {
    const v = this.mustGet(name);
    const n = this.#mounted.get(name) ?? 0;
    if (v.Options.type && n === 0) {
      const o = [v.Options.o, v.Options.size ? `size=${v.Options.size}` : ""].filter(Boolean).join(",");
      await this.#host.mount(v.Options.device ?? "none", v.Mountpoint, v.Options.type, o ? o.split(",") : []);
    }
    this.#mounted.set(name, n + 1);
    return v.Mountpoint;
  }

  /** Releases a use; the last release unmounts `-o type=…` volumes. */
  async release(name: string): Promise<void> {
    const n = (this.#mounted.get(name) ?? 1) - 1;
    if (n > 0) {
      this.#mounted.set(name, n);
      return;
    }
    this.#mounted.delete(name);
    const v = this.get(name);
    if (v) await this.#unmountIfMounted(v, false);
  }

  async #unmountIfMounted(v: Volume, forget: boolean): Promise<void> {
    if (v.Options.type) await this.#host.unmount(v.Mountpoint).catch(() => {});
    if (forget) this.#mounted.delete(v.Name);
  }

  /** Disk usage of a volume, for `system df` and prune. */
  async usage(name: string): Promise<number> {
    return await du(this.mustGet(name).Mountpoint);
  }
}

/** Label filter helper: all of `want` present, none of `not`. */
export function matchLabels(labels: Record<string, string>, want: string[], not: string[]): boolean {
  const has = (f: string) => {
    const i = f.indexOf("=");
    return i < 0 ? f in labels : labels[f.slice(0, i)] === f.slice(i + 1);
  };
  return want.every(has) && !not.some(has);
}

async function du(dir: string): Promise<number> {
  const { readdir, lstat } = await import("node:fs/promises");
  let total = 0;
  const walk = async (d: string) => {
    let names: string[] = [];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const s = await lstat(p);
      if (s.isDirectory()) await walk(p);
      else total += s.size;
    }
  };
  try {
    await stat(dir);
  } catch {
    return 0;
  }
  await walk(dir);
  return total;
}
