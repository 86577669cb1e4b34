import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { lstat, mkdir, readdir, rename, rm, rmdir, statfs } from "node:fs/promises";
import { join } from "node:path";
import { alreadyExists, type Db, failedPrecondition, type Host, invalidArgument, type Migration, notFound } from "../base/mod.ts";

/** Kinds of snapshot, as containerd names them. */
export type SnapshotKind = "active" | "view" | "committed";

/** Metadata of one snapshot. */
export interface SnapshotInfo {
  key: string;
  kind: SnapshotKind;
  parent: string | undefined;
  /** Directory number under `snapshots/`. */
  id: number;
  createdAt: number;
  labels: Record<string, string>;
}

/** A mount to perform, in mount(8) terms; `cwd` makes relative overlay lowerdirs resolvable. */
export interface Mount {
  type: "overlay" | "bind";
  source: string;
  options: string[];
  cwd?: string;
}

const migrations: Migration[] = [
  {
    version: 1,
    sql: `CREATE TABLE snapshots (
      key TEXT PRIMARY KEY,
      id INTEGER NOT NULL UNIQUE,
      kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
      parent TEXT REFERENCES snapshots(key),
      created_at INTEGER NOT NULL,
      labels TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX snapshots_parent ON snapshots(parent);`,
  },
];

/** statfs(2) f_type of ext2, ext3 and ext4. */
const EXT_MAGIC = 0xef53;
/**
 * How long ext4 without a journal passes over a freed inode before reusing it: 60 s, plus 300 s
 * while its inode table block is not yet written back (`recently_deleted()`, fs/ext4/ialloc.c).
 */
const RECENTLY_FREED_MS = 360_000;
/**
 * Inodes per ext4 flex group with mke2fs's defaults (16 block groups of 8,192 inodes). A
 * directory's files go to the first block group with free inodes in its flex group, so a tree
 * stays within the flex group of its top directory.
 */
const INODES_PER_FLEX_GROUP = 16 * 8192;
/**
 * A mkdir slower than this landed among freshly freed inodes: about 20-180 µs otherwise on the
 * benchmark machine, 0.6-1.1 ms right after a debian tree was removed from the same place.
 */
const SLOW_MKDIR_NS = 300_000n;
/** Directory names tried before one is kept wherever it landed. */
const PLACEMENT_TRIES = 8;
/** Prefix of a new snapshot directory's name until it is renamed to its id. */
const NEW_PREFIX = "new-";

interface Row {
  key: string;
  id: number;
  kind: SnapshotKind;
  parent: string | null;
  created_at: number;
  labels: string;
}

/**
 * The overlay snapshotter, with containerd's semantics. A snapshot is a directory `<n>/fs`.
 * A *committed* snapshot (named, e.g. by a layer's chain ID) is immutable and can be a parent.
 * `prepare(key, parent)` makes an *active* snapshot: a writable upper directory over the
 * parent's chain, which `commit(name, key)` turns into a committed one (how layers are
 * unpacked) or which stays active for a container's lifetime. `view` is a read-only active one.
 *
 * Walkthrough of unpacking an image with layers L1, L2: `prepare("extract-1", undefined)`,
 * apply L1 into its `fs`, `commit(chainId(L1), "extract-1")`; `prepare("extract-2", chainId(L1))`,
 * apply L2 with the parent's directories as lowers, `commit(chainId(L1,L2), "extract-2")`.
 * A container then does `prepare(containerId, chainId(L1,L2))` and mounts `mounts(containerId)`.
 * A parent cannot be removed while it has children.
 */
export class OverlaySnapshotter {
  readonly root: string;
  #db: Db;
  #host: Host;
  /** Ids handed out to creations still under way: concurrent creations must not share one. */
  #reserved = new Set<number>();
  /** Whether the root is on ext2/3/4, where placement matters (see `#spreadNewDirs`). */
  #ext = false;
  /** Flex groups (inode number / INODES_PER_FLEX_GROUP) of snapshot trees removed lately, with when. */
  #freed: { group: number; at: number }[] = [];
  /** New snapshot directories under their temporary names (not orphans). */
  #placing = new Set<string>();
  /** `orphanDirs` calls under way, and every temporary name used while one was. */
  #listings = 0;
  #placedWhileListing = new Set<string>();

  constructor(root: string, db: Db, host: Host) {
    this.root = root;
    this.#db = db;
    this.#host = host;
    db.migrate("snapshots", migrations);
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    await this.#spreadNewDirs();
    this.#ext = (await statfs(this.root).catch(() => undefined))?.type === EXT_MAGIC;
  }

  /**
   * Marks the snapshots directory as the top of a directory hierarchy (`chattr +T`,
   * FS_TOPDIR_FL), so that ext4 places each new snapshot directory, and with it the layer's
   * whole tree, in a block group of its own choosing instead of next to the previous snapshot.
   * Without a journal, ext4 skips every inode freed in the last seconds, one inode table lookup
   * each, before it reuses one: a pull right after `rmi` otherwise creates each of its thousands
   * of files after stepping over the thousands just deleted (docs/storage.md, "Placement").
   * ext4 picks the group from a hash of the new directory's name, so a name that lands where a
   * snapshot was just removed is given up for the next id (`#create`). File systems without
   * the flag, and a missing `chattr`, are fine: this is only a hint.
   */
  async #spreadNewDirs(): Promise<void> {
    try {
      await this.#host.run("chattr", ["+T", this.root], { allowFailure: true });
    } catch {}
  }

  #row(key: string): Row | undefined {
    return this.#db.get<Row>("SELECT * FROM snapshots WHERE key = ?", key);
  }

  #info(r: Row): SnapshotInfo {
    return {
      key: r.key,
      kind: r.kind,
      parent: r.parent ?? undefined,
      id: r.id,
      createdAt: r.created_at,
      labels: JSON.parse(r.labels) as Record<string, string>,
    };
  }

  stat(key: string): SnapshotInfo | undefined {
    const r = this.#row(key);
    return r ? this.#info(r) : undefined;
  }

  list(): SnapshotInfo[] {
    return this.#db.all<Row>("SELECT * FROM snapshots ORDER BY id").map((r) => this.#info(r));
  }

  /** The upper (own) directory of a snapshot. */
  dir(key: string): string {
    const r = this.#row(key);
    if (!r) throw notFound(`Snapshot "${key}" not found`);
    return join(this.root, String(r.id), "fs");
  }

  /** Own directories of the committed chain starting at `key`, topmost first. */
  chainDirs(key: string | undefined): string[] {
    const out: string[] = [];
    let k = key;
    let guard = 0;
    while (k !== undefined) {
      const r = this.#row(k);
      if (!r) throw notFound(`Snapshot "${k}" not found`);
      out.push(join(this.root, String(r.id), "fs"));
      k = r.parent ?? undefined;
      if (++guard > 1000) throw failedPrecondition(`Snapshot chain of "${key}" is too long or cyclic`);
    }
    return out;
  }

  async #create(kind: SnapshotKind, key: string, parent: string | undefined, labels: Record<string, string>): Promise<SnapshotInfo> {
    if (!key || key.length > 512) throw invalidArgument(`Invalid snapshot key "${key}"`);
    if (parent !== undefined) {
      const p = this.#row(parent);
      if (!p) throw notFound(`Parent snapshot "${parent}" not found`);
      if (p.kind !== "committed") throw failedPrecondition(`Parent snapshot "${parent}" is not committed`);
    }
    if (this.#row(key)) throw alreadyExists(`Snapshot "${key}" already exists`);
    // The id is taken synchronously and held until the row exists, so that concurrent
    // creations (docker compose creating several containers at once) get distinct directories.
    const id = Math.max(this.#db.get<{ m: number | null }>("SELECT MAX(id) AS m FROM snapshots")?.m ?? 0, ...this.#reserved) + 1;
    this.#reserved.add(id);
    try {
      const dir = join(this.root, String(id));
      await rm(dir, { recursive: true, force: true });
      await this.#placeDir(dir);
      return await this.#createWithId(id, dir, kind, key, parent, labels);
    } finally {
      this.#reserved.delete(id);
    }
  }

  /**
   * Creates the directory of a new snapshot where ext4 will not make its files slow to create.
   * Under the `+T` root ext4 chooses the directory's flex group from a hash of its name, so
   * it is made under a random name and renamed into place (the name of a directory numbered
   * like every other berthd's would land where theirs did); a name that lands in the flex group
   * of a tree removed lately, or whose mkdir was slow, is given up for another. Elsewhere, it is
   * a plain mkdir.
   */
  async #placeDir(dir: string): Promise<void> {
    if (!this.#ext) {
      await mkdir(dir, { mode: 0o755 });
      return;
    }
    for (let tries = 1; ; tries++) {
      const tmp = join(this.root, `${NEW_PREFIX}${randomBytes(8).toString("hex")}`);
      this.#placing.add(tmp);
      if (this.#listings) this.#placedWhileListing.add(tmp);
      try {
        // Timed, and so synchronous: ext4 allocates the directory's inode where its files will
        // go, so a mkdir that had to step over many freshly freed inodes (someone else's rm -r)
        // says the place is bad as surely as our own list does.
        const t0 = process.hrtime.bigint();
        mkdirSync(tmp, 0o755);
        const slow = process.hrtime.bigint() - t0 > SLOW_MKDIR_NS;
        if (tries < PLACEMENT_TRIES && (slow || (await this.#nearFreed(tmp)))) {
          await rmdir(tmp);
          continue;
        }
        await rename(tmp, dir);
        return;
      } catch (e) {
        await rm(tmp, { recursive: true, force: true }).catch(() => {});
        throw e;
      } finally {
        this.#placing.delete(tmp);
      }
    }
  }

  /** Whether directory `dir` is in the flex group of a snapshot tree removed lately. */
  async #nearFreed(dir: string): Promise<boolean> {
    const now = Date.now();
    this.#freed = this.#freed.filter((f) => now - f.at < RECENTLY_FREED_MS);
    if (!this.#freed.length) return false;
    const st = await lstat(dir);
    const group = Math.floor(st.ino / INODES_PER_FLEX_GROUP);
    return this.#freed.some((f) => f.group === group);
  }

  /** Notes where a snapshot tree about to be removed lies, for `#nearFreed`. */
  async #noteFreed(dir: string): Promise<void> {
    if (!this.#ext) return;
    const st = await lstat(dir).catch(() => undefined);
    if (!st) return;
    this.#freed.push({ group: Math.floor(st.ino / INODES_PER_FLEX_GROUP), at: Date.now() });
    if (this.#freed.length > 64) this.#freed.shift();
  }

  async #createWithId(
    id: number,
    dir: string,
    kind: SnapshotKind,
    key: string,
    parent: string | undefined,
    labels: Record<string, string>,
  ): Promise<SnapshotInfo> {
    await mkdir(join(dir, "fs"), { mode: 0o755 });
    if (kind === "active") await mkdir(join(dir, "work"), { recursive: true, mode: 0o700 });
    try {
      this.#db.run(
        "INSERT INTO snapshots (key, id, kind, parent, created_at, labels) VALUES (?, ?, ?, ?, ?, ?)",
        key,
        id,
        kind,
        parent ?? null,
        Date.now(),
        JSON.stringify(labels),
      );
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    const r = this.#row(key);
    if (!r) throw notFound(`Snapshot "${key}" vanished`);
    return this.#info(r);
  }

  /** Creates an active (writable) snapshot over `parent`. */
  async prepare(key: string, parent: string | undefined, labels: Record<string, string> = {}): Promise<Mount[]> {
    await this.#create("active", key, parent, labels);
    return this.mounts(key);
  }

  /** Creates a read-only view of `parent`. */
  async view(key: string, parent: string | undefined, labels: Record<string, string> = {}): Promise<Mount[]> {
    await this.#create("view", key, parent, labels);
    return this.mounts(key);
  }

  /** The mounts that present snapshot `key`. */
  mounts(key: string): Mount[] {
    const r = this.#row(key);
    if (!r) throw notFound(`Snapshot "${key}" not found`);
    const own = `${r.id}/fs`;
    const lowers = this.chainDirs(r.parent ?? undefined).map((d) => d.slice(this.root.length + 1));
    if (r.kind === "active") {
      if (lowers.length === 0) return [{ type: "bind", source: join(this.root, own), options: ["rbind", "rw"] }];
      return [
        {
          type: "overlay",
          source: "overlay",
          options: [`lowerdir=${lowers.join(":")}`, `upperdir=${own}`, `workdir=${r.id}/work`, "index=off"],
          cwd: this.root,
        },
      ];
    }
    if (r.kind === "view") {
      if (lowers.length === 0) return [{ type: "bind", source: join(this.root, own), options: ["rbind", "ro"] }];
      if (lowers.length === 1) return [{ type: "bind", source: join(this.root, lowers[0] ?? ""), options: ["rbind", "ro"] }];
      return [{ type: "overlay", source: "overlay", options: [`lowerdir=${lowers.join(":")}`], cwd: this.root }];
    }
    throw failedPrecondition(`Snapshot "${key}" is committed and cannot be mounted directly; use view`);
  }

  /** Mounts snapshot `key` at `target`. */
  async mount(key: string, target: string): Promise<void> {
    await mkdir(target, { recursive: true });
    for (const m of this.mounts(key)) {
      if (m.type === "bind") await this.#host.mount(m.source, target, "none", ["bind", ...(m.options.includes("ro") ? ["ro"] : [])]);
      else await this.#host.mount(m.source, target, m.type, m.options, m.cwd);
    }
  }

  /** Turns active snapshot `key` into committed snapshot `name`. */
  async commit(name: string, key: string, labels?: Record<string, string>): Promise<SnapshotInfo> {
    const r = this.#row(key);
    if (!r) throw notFound(`Snapshot "${key}" not found`);
    if (r.kind !== "active") throw failedPrecondition(`Snapshot "${key}" is not active`);
    if (this.#row(name)) throw alreadyExists(`Snapshot "${name}" already exists`);
    await rm(join(this.root, String(r.id), "work"), { recursive: true, force: true });
    this.#db.run(
      "UPDATE snapshots SET key = ?, kind = 'committed', labels = ? WHERE key = ?",
      name,
      labels ? JSON.stringify(labels) : r.labels,
      key,
    );
    const n = this.#row(name);
    if (!n) throw notFound(`Snapshot "${name}" vanished`);
    return this.#info(n);
  }

  /** Removes a snapshot that has no children; its directory is deleted after the row. */
  async remove(key: string): Promise<void> {
    const r = this.#row(key);
    if (!r) throw notFound(`Snapshot "${key}" not found`);
    const child = this.#db.get<{ key: string }>("SELECT key FROM snapshots WHERE parent = ? LIMIT 1", key);
    if (child) throw failedPrecondition(`Cannot remove snapshot "${key}": it has child "${child.key}"`);
    this.#db.run("DELETE FROM snapshots WHERE key = ?", key);
    const dir = join(this.root, String(r.id));
    await this.#noteFreed(dir);
    await rm(dir, { recursive: true, force: true });
  }

  /** Directories under the root with no snapshot row (left by a crash); for the checker and GC. */
  async orphanDirs(): Promise<string[]> {
    // A temporary name listed here may be renamed into place before the check below: every
    // name under way at any moment of the listing counts as under way.
    if (this.#listings++ === 0) this.#placedWhileListing = new Set(this.#placing);
    else for (const p of this.#placing) this.#placedWhileListing.add(p);
    try {
      return await this.#orphanDirs();
    } finally {
      if (--this.#listings === 0) this.#placedWhileListing.clear();
    }
  }

  async #orphanDirs(): Promise<string[]> {
    const names = await readdir(this.root);
    // Rows are read after the listing: a directory listed has its row by now, or belongs to a
    // creation still under way (no row yet, not an orphan), or is an orphan.
    const ids = new Set(this.#db.all<{ id: number }>("SELECT id FROM snapshots").map((r) => String(r.id)));
    for (const id of this.#reserved) ids.add(String(id));
    const out: string[] = [];
    for (const name of names) {
      const p = join(this.root, name);
      if (!ids.has(name) && !this.#placing.has(p) && !this.#placedWhileListing.has(p)) out.push(p);
    }
    return out;
  }

  /** Disk usage of a snapshot's own directory, in bytes. */
  async usage(key: string): Promise<number> {
    return await duBytes(this.dir(key));
  }
}

/** Sums apparent sizes of regular files (hard links counted once), like `du --apparent-size`. */
export async function duBytes(dir: string): Promise<number> {
  let total = 0;
  const seen = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const s = await lstat(p);
      if (s.isDirectory()) await walk(p);
      else if (s.isFile()) {
        if (s.nlink > 1) {
          const k = `${s.dev}:${s.ino}`;
          if (seen.has(k)) continue;
          seen.add(k);
        }
        total += s.size;
      } else if (s.isSymbolicLink()) total += s.size;
    }
  };
  await walk(dir);
  return total;
}
