import { createRequire } from "node:module";
import type { DatabaseSync, StatementSync } from "node:sqlite";

// Loaded on first use: the CLI imports base too and must not pay for node:sqlite at start-up.
const require = createRequire(import.meta.url);

/** A migration: a version number and the SQL that brings a store to it. */
export interface Migration {
  version: number;
  sql: string;
}

/**
 * berth's metadata database (SQLite in WAL mode, `node:sqlite`). Each subsystem owns its tables
 * and registers its migrations under its own name; every multi-object change runs in `tx` so
 * that a crash leaves either all or none of it.
 */
export class Db {
  readonly sqlite: DatabaseSync;
  #cache = new Map<string, StatementSync>();
  #depth = 0;

  constructor(path: string) {
    const { DatabaseSync: Sqlite } = require("node:sqlite") as typeof import("node:sqlite");
    this.sqlite = new Sqlite(path);
    this.sqlite.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;");
    this.sqlite.exec("CREATE TABLE IF NOT EXISTS schema_versions (subsystem TEXT PRIMARY KEY, version INTEGER NOT NULL)");
  }

  /** Applies the migrations of one subsystem that have not run yet. */
  migrate(subsystem: string, migrations: readonly Migration[]): void {
    const row = this.get<{ version: number }>("SELECT version FROM schema_versions WHERE subsystem = ?", subsystem);
    let current = row?.version ?? 0;
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (m.version <= current) continue;
      this.tx(() => {
        this.sqlite.exec(m.sql);
        this.run(
          "INSERT INTO schema_versions (subsystem, version) VALUES (?, ?) ON CONFLICT(subsystem) DO UPDATE SET version = excluded.version",
          subsystem,
          m.version,
        );
      });
      current = m.version;
    }
  }

  #stmt(sql: string): StatementSync {
    let s = this.#cache.get(sql);
    if (!s) {
      s = this.sqlite.prepare(sql);
      this.#cache.set(sql, s);
    }
    return s;
  }

  run(sql: string, ...params: SqlValue[]): { changes: number } {
    const r = this.#stmt(sql).run(...params);
    return { changes: Number(r.changes) };
  }

  get<T>(sql: string, ...params: SqlValue[]): T | undefined {
    return this.#stmt(sql).get(...params) as T | undefined;
  }

  all<T>(sql: string, ...params: SqlValue[]): T[] {
    return this.#stmt(sql).all(...params) as T[];
  }

  /** Runs `fn` in a transaction (nested calls join the outer one). `fn` must be synchronous. */
  tx<T>(fn: () => T): T {
    if (this.#depth > 0) return fn();
    this.sqlite.exec("BEGIN IMMEDIATE");
    this.#depth++;
    try {
      const r = fn();
      this.sqlite.exec("COMMIT");
      return r;
    } catch (e) {
      this.sqlite.exec("ROLLBACK");
      throw e;
    } finally {
      this.#depth--;
    }
  }

  close(): void {
    this.#cache.clear();
    this.sqlite.close();
  }
}

export type SqlValue = string | number | bigint | null | Uint8Array;
