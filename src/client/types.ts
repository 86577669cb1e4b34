/**
 * Request and response shapes of the Docker Engine API (v1.47) as far as berth's client uses
 * them. Field names are the API's own (PascalCase). Only the fields the CLI reads or sends are
 * typed; everything else is still present at run time and printed by `inspect` as received.
 */

/** Filters as the API takes them: `{"label": {"a=b": true}}`. */
export type Filters = Record<string, Record<string, boolean>>;

/** Answer of GET /version. */
export interface VersionInfo {
  Platform?: { Name: string };
  Components?: { Name: string; Version: string; Details?: Record<string, string> }[];
  Version: string;
  ApiVersion: string;
  MinAPIVersion?: string;
  GitCommit?: string;
  GoVersion?: string;
  Os: string;
  Arch: string;
  KernelVersion?: string;
  Experimental?: boolean;
  BuildTime?: string;
}

/** Answer of GET /info (the fields `berth info` prints). */
export interface SystemInfo {
  ID?: string;
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  Images: number;
  Driver: string;
  DriverStatus?: [string, string][] | null;
  Plugins?: { Volume?: string[] | null; Network?: string[] | null; Authorization?: string[] | null; Log?: string[] | null };
  MemoryLimit?: boolean;
  SwapLimit?: boolean;
  CpuCfsPeriod?: boolean;
  CpuCfsQuota?: boolean;
  CPUShares?: boolean;
  CPUSet?: boolean;
  PidsLimit?: boolean;
  IPv4Forwarding?: boolean;
  Debug?: boolean;
  NFd?: number;
  NGoroutines?: number;
  SystemTime?: string;
  LoggingDriver?: string;
  CgroupDriver?: string;
  CgroupVersion?: string;
  NEventsListener?: number;
  KernelVersion?: string;
  OperatingSystem?: string;
  OSVersion?: string;
  OSType?: string;
  Architecture?: string;
  NCPU?: number;
  MemTotal?: number;
  IndexServerAddress?: string;
  RegistryConfig?: {
    IndexConfigs?: Record<string, { Name: string; Mirrors: string[]; Secure: boolean; Official: boolean }>;
    InsecureRegistryCIDRs?: string[];
    Mirrors?: string[];
  } | null;
  DockerRootDir?: string;
  HttpProxy?: string;
  HttpsProxy?: string;
  NoProxy?: string;
  Name?: string;
  Labels?: string[];
  ExperimentalBuild?: boolean;
  ServerVersion?: string;
  Runtimes?: Record<string, { path?: string }>;
  DefaultRuntime?: string;
  Swarm?: { LocalNodeState?: string; NodeID?: string };
  LiveRestoreEnabled?: boolean;
  Isolation?: string;
  InitBinary?: string;
  ContainerdCommit?: { ID: string; Expected?: string };
  RuncCommit?: { ID: string; Expected?: string };
  InitCommit?: { ID: string; Expected?: string };
  SecurityOptions?: string[];
  ProductLicense?: string;
  DefaultAddressPools?: { Base: string; Size: number }[];
  Warnings?: string[] | null;
  CDISpecDirs?: string[];
}

/** One entry of GET /images/json. */
export interface ImageSummary {
  Id: string;
  ParentId: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Created: number;
  Size: number;
  SharedSize: number;
  VirtualSize?: number;
  Labels: Record<string, string> | null;
  Containers: number;
}

/** An image's config as inspect shows it (`Config` of the image, `Config` of a container). */
export interface ContainerConfig {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  ExposedPorts?: Record<string, Record<string, never>> | null;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Healthcheck?: HealthConfig;
  ArgsEscaped?: boolean;
  Image?: string;
  Volumes?: Record<string, Record<string, never>> | null;
  WorkingDir?: string;
  Entrypoint?: string[] | null;
  NetworkDisabled?: boolean;
  MacAddress?: string;
  OnBuild?: string[] | null;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  StopTimeout?: number;
  Shell?: string[] | null;
}

/** A container's health check (durations in nanoseconds). */
export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** Answer of GET /images/{name}/json. */
export interface ImageInspect {
  Id: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Parent?: string;
  Comment?: string;
  Created?: string;
  DockerVersion?: string;
  Author?: string;
  Config?: ContainerConfig | null;
  Architecture?: string;
  Variant?: string;
  Os?: string;
  Size: number;
  RootFS?: { Type: string; Layers?: string[] };
  Metadata?: { LastTagTime?: string };
  [key: string]: unknown;
}

/** One entry of GET /images/{name}/history. */
export interface HistoryEntry {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

/** One result of GET /images/search. */
export interface SearchResult {
  name: string;
  description: string;
  star_count: number;
  is_official: boolean;
  is_automated?: boolean;
}

/** One entry of DELETE /images/{name} and of the image prune report. */
export interface ImageDeleteItem {
  Untagged?: string;
  Deleted?: string;
}

/** Answer of POST /images/prune. */
export interface ImagesPruneReport {
  ImagesDeleted: ImageDeleteItem[] | null;
  SpaceReclaimed: number;
}

/** Credentials as POST /auth and X-Registry-Auth take them. */
export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  email?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
}

/** Answer of POST /auth. */
export interface AuthResponse {
  Status: string;
  IdentityToken?: string;
}

/** A progress message of pull/push/load/import/build streams (docker's JSONMessage). */
export interface JsonMessage {
  stream?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number; start?: number; hidecounts?: boolean; units?: string };
  progress?: string;
  id?: string;
  from?: string;
  time?: number;
  timeNano?: number;
  errorDetail?: { code?: number; message?: string };
  error?: string;
  aux?: unknown;
}

/** One event of GET /events. */
export interface EventMessage {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
  scope?: string;
  time: number;
  /** Exact int64 nanoseconds (a bigint when decoded by `events()`). */
  timeNano: number | bigint;
  // Deprecated fields some daemons still send.
  status?: string;
  id?: string;
  from?: string;
}

/** Answer of GET /system/df. */
export interface DiskUsage {
  LayersSize: number;
  Images: (ImageSummary & { VirtualSize?: number })[] | null;
  Containers: (ContainerSummary & { SizeRw?: number; SizeRootFs?: number })[] | null;
  Volumes: (Volume & { UsageData?: { Size: number; RefCount: number } | null })[] | null;
  BuildCache: BuildCacheRecord[] | null;
}

/** A build cache record of GET /system/df. */
export interface BuildCacheRecord {
  ID: string;
  Parent?: string;
  Parents?: string[];
  Type: string;
  Description: string;
  InUse: boolean;
  Shared: boolean;
  Size: number;
  CreatedAt: string;
  LastUsedAt: string | null;
  UsageCount: number;
}

/** A published port as GET /containers/json lists it. */
export interface PortSummary {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

/** A mount point as containers report it. */
export interface MountPoint {
  Type?: string;
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode?: string;
  RW?: boolean;
  Propagation?: string;
}

/** One entry of GET /containers/json. */
export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  Ports: PortSummary[] | null;
  SizeRw?: number;
  SizeRootFs?: number;
  Labels: Record<string, string> | null;
  State: string;
  Status: string;
  HostConfig?: { NetworkMode?: string };
  NetworkSettings?: { Networks?: Record<string, EndpointSettings> } | null;
  Mounts: MountPoint[] | null;
}

/** A port binding of HostConfig.PortBindings and NetworkSettings.Ports. */
export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

/** Per-network settings of a container. */
export interface EndpointSettings {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
  Links?: string[] | null;
  Aliases?: string[] | null;
  MacAddress?: string;
  DriverOpts?: Record<string, string> | null;
  NetworkID?: string;
  EndpointID?: string;
  Gateway?: string;
  IPAddress?: string;
  IPPrefixLen?: number;
  IPv6Gateway?: string;
  GlobalIPv6Address?: string;
  GlobalIPv6PrefixLen?: number;
  DNSNames?: string[] | null;
}

/** A mount of HostConfig.Mounts (`--mount`). */
export interface Mount {
  Target: string;
  Source?: string;
  Type: "bind" | "volume" | "tmpfs" | "npipe" | "cluster" | "image";
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: {
    Propagation?: string;
    NonRecursive?: boolean;
    CreateMountpoint?: boolean;
    ReadOnlyNonRecursive?: boolean;
    ReadOnlyForceRecursive?: boolean;
  };
  VolumeOptions?: {
    NoCopy?: boolean;
    Labels?: Record<string, string>;
    DriverConfig?: { Name?: string; Options?: Record<string, string> };
    Subpath?: string;
  };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number; Options?: string[][] };
  ImageOptions?: { Subpath?: string };
}

/** A device mapping (`--device`). */
export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
}

/** A ulimit (`--ulimit`). */
export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

/** Restart policy (`--restart`). */
export interface RestartPolicy {
  Name: "" | "no" | "always" | "unless-stopped" | "on-failure";
  MaximumRetryCount?: number;
}

/** Resource limits, shared by create and POST /containers/{id}/update. */
export interface Resources {
  CpuShares?: number;
  Memory?: number;
  NanoCpus?: number;
  CgroupParent?: string;
  BlkioWeight?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpuRealtimePeriod?: number;
  CpuRealtimeRuntime?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  Devices?: DeviceMapping[];
  DeviceCgroupRules?: string[];
  MemoryReservation?: number;
  MemorySwap?: number;
  MemorySwappiness?: number;
  OomKillDisable?: boolean;
  PidsLimit?: number;
  Ulimits?: Ulimit[];
  KernelMemory?: number;
}

/** HostConfig of POST /containers/create. */
export interface HostConfig extends Resources {
  Binds?: string[];
  /** [height, width] of the client's terminal, for a TTY's initial size (API 1.42+). */
  ConsoleSize?: [number, number];
  ContainerIDFile?: string;
  LogConfig?: { Type: string; Config?: Record<string, string> };
  NetworkMode?: string;
  PortBindings?: Record<string, PortBinding[] | null>;
  RestartPolicy?: RestartPolicy;
  AutoRemove?: boolean;
  VolumeDriver?: string;
  VolumesFrom?: string[];
  Mounts?: Mount[];
  CapAdd?: string[];
  CapDrop?: string[];
  CgroupnsMode?: string;
  Dns?: string[];
  DnsOptions?: string[];
  DnsSearch?: string[];
  ExtraHosts?: string[];
  GroupAdd?: string[];
  IpcMode?: string;
  Cgroup?: string;
  Links?: string[];
  OomScoreAdj?: number;
  PidMode?: string;
  Privileged?: boolean;
  PublishAllPorts?: boolean;
  ReadonlyRootfs?: boolean;
  SecurityOpt?: string[];
  StorageOpt?: Record<string, string>;
  Tmpfs?: Record<string, string>;
  UTSMode?: string;
  UsernsMode?: string;
  ShmSize?: number;
  Sysctls?: Record<string, string>;
  Runtime?: string;
  Isolation?: string;
  Init?: boolean | null;
  Annotations?: Record<string, string>;
}

/** Body of POST /containers/create. */
export interface ContainerCreateBody extends ContainerConfig {
  HostConfig?: HostConfig;
  NetworkingConfig?: { EndpointsConfig?: Record<string, EndpointSettings> };
}

/** Answer of POST /containers/create. */
export interface ContainerCreateResponse {
  Id: string;
  Warnings: string[] | null;
}

/** State of a container (inspect). */
export interface ContainerState {
  Status: string;
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
  Health?: { Status: string; FailingStreak: number; Log?: unknown[] };
}

/** Answer of GET /containers/{id}/json. */
export interface ContainerInspect {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: ContainerState;
  Image: string;
  Name: string;
  RestartCount?: number;
  Driver?: string;
  Platform?: string;
  HostConfig: HostConfig;
  Config: ContainerConfig;
  NetworkSettings: {
    Ports?: Record<string, PortBinding[] | null> | null;
    IPAddress?: string;
    Networks?: Record<string, EndpointSettings>;
    [key: string]: unknown;
  };
  Mounts: MountPoint[];
  SizeRw?: number;
  SizeRootFs?: number;
  [key: string]: unknown;
}

/** Answer of POST /containers/{id}/wait. */
export interface ContainerWaitResponse {
  StatusCode: number;
  Error?: { Message?: string } | null;
}

/** Answer of GET /containers/{id}/top. */
export interface ContainerTop {
  Titles: string[];
  Processes: string[][];
}

/** One entry of GET /containers/{id}/changes (Kind 0 modified, 1 added, 2 deleted). */
export interface ContainerChange {
  Path: string;
  Kind: 0 | 1 | 2;
}

/** Answer of POST /containers/prune. */
export interface ContainersPruneReport {
  ContainersDeleted: string[] | null;
  SpaceReclaimed: number;
}

/** Answer of POST /containers/{id}/update. */
export interface ContainerUpdateResponse {
  Warnings: string[] | null;
}

/** Body of POST /containers/{id}/exec. */
export interface ExecCreateBody {
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  DetachKeys?: string;
  Tty?: boolean;
  ConsoleSize?: [number, number] | null;
  Env?: string[];
  Cmd: string[];
  Privileged?: boolean;
  User?: string;
  WorkingDir?: string;
}

/** Answer of GET /exec/{id}/json. */
export interface ExecInspect {
  ID: string;
  Running: boolean;
  ExitCode: number | null;
  Pid?: number;
  ContainerID: string;
  OpenStdin?: boolean;
  ProcessConfig?: { tty?: boolean; entrypoint?: string; arguments?: string[] };
}

/** The `X-Docker-Container-Path-Stat` header of HEAD/GET /containers/{id}/archive, decoded. */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** One sample of GET /containers/{id}/stats. */
export interface StatsSample {
  read: string;
  preread?: string;
  id?: string;
  name?: string;
  pids_stats?: { current?: number; limit?: number };
  num_procs?: number;
  cpu_stats: {
    cpu_usage: { total_usage: number; percpu_usage?: number[] };
    system_cpu_usage?: number;
    online_cpus?: number;
  };
  precpu_stats: {
    cpu_usage: { total_usage: number; percpu_usage?: number[] };
    system_cpu_usage?: number;
    online_cpus?: number;
  };
  memory_stats: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes: number; tx_bytes: number }>;
  blkio_stats?: { io_service_bytes_recursive?: { op: string; value: number }[] | null };
}

/** A network (GET /networks, /networks/{id}). */
export interface NetworkResource {
  Name: string;
  Id: string;
  Created: string;
  Scope: string;
  Driver: string;
  EnableIPv4?: boolean;
  EnableIPv6: boolean;
  IPAM: {
    Driver: string;
    Options?: Record<string, string> | null;
    Config?: { Subnet?: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> }[] | null;
  };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigOnly?: boolean;
  Containers?: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }>;
  Options: Record<string, string> | null;
  Labels: Record<string, string> | null;
  [key: string]: unknown;
}

/** Body of POST /networks/create. */
export interface NetworkCreateBody {
  Name: string;
  Driver?: string;
  Scope?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  EnableIPv4?: boolean;
  EnableIPv6?: boolean;
  IPAM?: NetworkResource["IPAM"];
  Options?: Record<string, string>;
  Labels?: Record<string, string>;
  ConfigOnly?: boolean;
  ConfigFrom?: { Network: string };
}

/** A volume (GET /volumes, /volumes/{name}). */
export interface Volume {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt?: string;
  Status?: Record<string, unknown>;
  Labels: Record<string, string> | null;
  Scope: string;
  Options: Record<string, string> | null;
  UsageData?: { Size: number; RefCount: number } | null;
}

/** Answer of POST /networks/prune, /volumes/prune. */
export interface PruneReport {
  NetworksDeleted?: string[] | null;
  VolumesDeleted?: string[] | null;
  SpaceReclaimed?: number;
}
