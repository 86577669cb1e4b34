/**
 * The build cache: step key → resulting build state, in SQLite so that it survives restarts.
 *
 * A step's key is a digest of its parent state's ID and the step's definition (for COPY and
 * ADD, the content, modes and ownership of the files it copies; for RUN, the command, the
 * build arguments it sees and its mounts). The result is a complete build state: the image
 * config bytes and the layer descriptors. What an entry needs (layer blobs, the top layer
 * snapshot) is kept from garbage collection through `refs`, and `prune` drops entries and
 * releases them.
 */
import type { Db, Digest, Migration } from "../base/mod.ts";
import type { Descriptor } from "../oci/mod.ts";

/** A build state: an image config (exact bytes) plus its layers. */
export interface BuildState {
  /** The image config JSON; its digest is the state's (and the image's) ID. */
  config: string;
  layers: Descriptor[];
}

/** A cache entry as stored. */
export interface CacheEntry {
  key: string;
  state: BuildState;
  /** Blob digests and snapshot keys the entry needs. */
  refs: string[];
  createdAt: number;
  lastUsed: number;
  size: number;
  description: string;
}

const migrations: Migration[] = [
  {
    version: 1,
    sql: `CREATE TABLE build_cache (
      key TEXT PRIMARY KEY,
      state TEXT NOT NULL,
      refs TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      last_used INTEGER NOT NULL,
      size INTEGER NOT NULL DEFAULT 0,
      description TEXT NOT NULL DEFAULT ''
    );`,
  },
];

interface Row {
  key: string;
  state: string;
  refs: string;
  created_at: number;
  last_used: number;
  size: number;
  description: string;
}

function entryOf(r: Row): CacheEntry {
  return {
    key: r.key,
    state: JSON.parse(r.state) as BuildState,
    refs: JSON.parse(r.refs) as string[],
    createdAt: r.created_at,
    lastUsed: r.last_used,
    size: r.size,
    description: r.description,
  };
}

/** The persistent step cache. */
export class BuildCache {
  #db: Db;

  constructor(db: Db) {
    this.#db = db;
    db.migrate("build", migrations);
  }

  get(key: string): CacheEntry | undefined {
    const r = this.#db.get<Row>("SELECT * FROM build_cache WHERE key = ?", key);
    return r ? entryOf(r) : undefined;
  }

  /** Marks an entry used now (for `builder prune --filter until=`). */
  touch(key: string): void {
    this.#db.run("UPDATE build_cache SET last_used = ? WHERE key = ?", Date.now(), key);
  }

  put(key: string, state: BuildState, refs: string[], options: { size?: number; description?: string } = {}): void {
    const now = Date.now();
    this.#db.run(
      `INSERT INTO build_cache (key, state, refs, created_at, last_used, size, description) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET state = excluded.state, refs = excluded.refs, last_used = excluded.last_used,
       size = excluded.size, description = excluded.description`,
      key,
      JSON.stringify(state),
      JSON.stringify(refs),
      now,
      now,
      options.size ?? 0,
      options.description ?? "",
    );
  }

  delete(key: string): void {
    this.#db.run("DELETE FROM build_cache WHERE key = ?", key);
  }

  list(): CacheEntry[] {
    return this.#db.all<Row>("SELECT * FROM build_cache ORDER BY created_at").map(entryOf);
  }

  /** Every blob digest and snapshot key some entry needs. */
  refs(): Set<string> {
    const out = new Set<string>();
    for (const r of this.#db.all<{ refs: string }>("SELECT refs FROM build_cache")) {
      for (const x of JSON.parse(r.refs) as string[]) out.add(x);
    }
    return out;
  }
}

/** The ID of a state: the digest of its config bytes. */
export type StateId = Digest;
