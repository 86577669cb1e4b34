import { conflict, type Db, type Migration, notFound } from "../base/mod.ts";
import type { ContainerConfig } from "../oci/mod.ts";

/** The `HostConfig` of the Engine API, as far as berth reads it. Unknown fields are kept verbatim. */
export interface HostConfig {
  Binds?: string[] | null;
  NetworkMode?: string;
  PortBindings?: Record<string, { HostIp?: string; HostPort?: string }[] | null> | null;
  RestartPolicy?: { Name?: string; MaximumRetryCount?: number };
  AutoRemove?: boolean;
  VolumeDriver?: string;
  VolumesFrom?: string[] | null;
  Mounts?: unknown[] | null;
  CapAdd?: string[] | null;
  CapDrop?: string[] | null;
  Dns?: string[] | null;
  DnsOptions?: string[] | null;
  DnsSearch?: string[] | null;
  ExtraHosts?: string[] | null;
  GroupAdd?: string[] | null;
  IpcMode?: string;
  Links?: string[] | null;
  OomScoreAdj?: number;
  PidMode?: string;
  Privileged?: boolean;
  PublishAllPorts?: boolean;
  ReadonlyRootfs?: boolean;
  SecurityOpt?: string[] | null;
  Tmpfs?: Record<string, string> | null;
  UTSMode?: string;
  ShmSize?: number;
  Sysctls?: Record<string, string> | null;
  Runtime?: string;
  Init?: boolean | null;
  Memory?: number;
  MemoryReservation?: number;
  MemorySwap?: number;
  MemorySwappiness?: number | null;
  NanoCpus?: number;
  CpuShares?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  PidsLimit?: number | null;
  BlkioWeight?: number;
  OomKillDisable?: boolean | null;
  Devices?: { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }[] | null;
  DeviceCgroupRules?: string[] | null;
  Ulimits?: { Name: string; Soft: number; Hard: number }[] | null;
  LogConfig?: { Type?: string; Config?: Record<string, string> };
  CgroupnsMode?: string;
  MaskedPaths?: string[] | null;
  ReadonlyPaths?: string[] | null;
  [k: string]: unknown;
}

/** What `POST /containers/create` receives. */
export interface CreateBody extends ContainerConfig {
  HostConfig?: HostConfig;
  NetworkingConfig?: { EndpointsConfig?: Record<string, unknown> };
  MacAddress?: string;
}

/** Docker's container state. */
export interface ContainerState {
  Status: "created" | "running" | "paused" | "restarting" | "removing" | "exited" | "dead";
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  Health?: { Status: string; FailingStreak: number; Log: unknown[] };
}

export const ZERO_TIME = "0001-01-01T00:00:00Z";

/** Everything berth keeps about one container (persisted as JSON). */
export interface ContainerRecord {
  Id: string;
  Name: string;
  Created: string;
  Path: string;
  Args: string[];
  Config: ContainerConfig;
  HostConfig: HostConfig;
  State: ContainerState;
  /** The image ID. */
  Image: string;
  /** The image as the user named it (ps IMAGE column, `ancestor` filter). */
  ImageName: string;
  RestartCount: number;
  Driver: "overlay2";
  Platform: "linux";
  MountLabel: "";
  ProcessLabel: "";
  AppArmorProfile: "";
  ExecIDs: string[] | null;
  HostnamePath: string;
  HostsPath: string;
  ResolvConfPath: string;
  LogPath: string;
  NetworkSettings: Record<string, unknown>;
  Mounts: unknown[];
  /** berth's own bookkeeping. */
  berth: {
    snapshotKey: string;
    topChainId?: string;
    monitorPid?: number;
    manualStop?: boolean;
    [k: string]: unknown;
  };
}

const migrations: Migration[] = [
  {
    version: 1,
    sql: `CREATE TABLE containers (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      created_at INTEGER NOT NULL,
      data TEXT NOT NULL
    );`,
  },
];

/** The container table: one JSON document per container, names unique. */
export class ContainerStore {
  #db: Db;
  #cache = new Map<string, ContainerRecord>();

  constructor(db: Db) {
    this.#db = db;
    db.migrate("containers", migrations);
    for (const r of db.all<{ data: string }>("SELECT data FROM containers")) {
      const c = JSON.parse(r.data) as ContainerRecord;
      this.#cache.set(c.Id, c);
    }
  }

  list(): ContainerRecord[] {
    return [...this.#cache.values()].sort((a, b) => (a.Created < b.Created ? 1 : a.Created > b.Created ? -1 : 0));
  }

  get(id: string): ContainerRecord | undefined {
    return this.#cache.get(id);
  }

  byName(name: string): ContainerRecord | undefined {
    const n = name.startsWith("/") ? name.slice(1) : name;
    for (const c of this.#cache.values()) if (c.Name === `/${n}`) return c;
    return undefined;
  }

  /** Finds by full ID, name, or unique ID prefix, as Docker does. */
  resolve(ref: string): ContainerRecord | undefined {
    if (!ref) return undefined;
    const exact = this.#cache.get(ref);
    if (exact) return exact;
    const named = this.byName(ref);
    if (named) return named;
    if (/^[a-f0-9]+$/.test(ref)) {
      const m = [...this.#cache.values()].filter((c) => c.Id.startsWith(ref));
      if (m.length > 1) throw conflict(`multiple IDs found with provided prefix: ${ref}`);
      return m[0];
    }
    return undefined;
  }

  mustResolve(ref: string): ContainerRecord {
    const c = this.resolve(ref);
    if (!c) throw notFound(`No such container: ${ref}`);
    return c;
  }

  insert(c: ContainerRecord): void {
    const other = this.byName(c.Name);
    if (other) {
      throw conflict(
        `Conflict. The container name "${c.Name}" is already in use by container "${other.Id}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
    this.#db.run(
      "INSERT INTO containers (id, name, created_at, data) VALUES (?, ?, ?, ?)",
      c.Id,
      c.Name,
      Date.parse(c.Created),
      JSON.stringify(c),
    );
    this.#cache.set(c.Id, c);
  }

  /** Persists a changed record. */
  save(c: ContainerRecord): void {
    const { changes } = this.#db.run("UPDATE containers SET name = ?, data = ? WHERE id = ?", c.Name, JSON.stringify(c), c.Id);
    // A late save of a container removed meanwhile must not bring it back.
    if (changes > 0) this.#cache.set(c.Id, c);
  }

  delete(id: string): void {
    this.#db.run("DELETE FROM containers WHERE id = ?", id);
    this.#cache.delete(id);
  }
}
