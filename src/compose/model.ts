/**
 * The normalised Compose model: every short syntax expanded to its long form, relative paths made
 * absolute, environment files read, defaults filled in. Keys are the Compose file's own
 * (snake_case), so `berth compose config` prints the model as it is.
 */

/** A published port, long syntax. */
export interface ServicePort {
  name?: string;
  mode: string;
  host_ip?: string;
  target: number;
  /** Host port or range (`"8080"`, `"8000-8010"`); absent: an ephemeral port. */
  published?: string;
  protocol: string;
  app_protocol?: string;
}

/** A mount of a service, long syntax. */
export interface ServiceVolume {
  type: "bind" | "volume" | "tmpfs" | "npipe" | "cluster" | "image";
  /** Host path (bind, absolute), volume key (volume; absent for an anonymous volume). */
  source?: string;
  target: string;
  read_only?: boolean;
  consistency?: string;
  bind?: { propagation?: string; create_host_path?: boolean; recursive?: string; selinux?: string };
  volume?: { nocopy?: boolean; subpath?: string };
  tmpfs?: { size?: number; mode?: number };
  image?: { subpath?: string };
}

/** A service's attachment to a network (null: defaults). */
export interface ServiceNetwork {
  aliases?: string[];
  ipv4_address?: string;
  ipv6_address?: string;
  link_local_ips?: string[];
  mac_address?: string;
  driver_opts?: Record<string, string>;
  priority?: number;
  gw_priority?: number;
  interface_name?: string;
}

/** A dependency of a service. */
export interface ServiceDependency {
  condition: "service_started" | "service_healthy" | "service_completed_successfully";
  required: boolean;
  restart?: boolean;
}

/** A secret or config granted to a service. */
export interface FileReference {
  source: string;
  target?: string;
  uid?: string;
  gid?: string;
  mode?: number;
}

/** How to build a service's image. */
export interface BuildConfig {
  context: string;
  dockerfile?: string;
  dockerfile_inline?: string;
  args?: Record<string, string | null>;
  labels?: Record<string, string>;
  target?: string;
  cache_from?: string[];
  no_cache?: boolean;
  pull?: boolean;
  network?: string;
  shm_size?: number;
  extra_hosts?: string[];
  tags?: string[];
  platforms?: string[];
  [key: string]: unknown;
}

/** A health check (durations as Go duration strings). */
export interface HealthCheck {
  test?: string[];
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
  start_interval?: string;
  disable?: boolean;
}

/** A service, normalised. */
export interface Service {
  annotations?: Record<string, string>;
  build?: BuildConfig;
  cap_add?: string[];
  cap_drop?: string[];
  cgroup?: string;
  cgroup_parent?: string;
  command?: string[] | null;
  configs?: FileReference[];
  container_name?: string;
  cpu_shares?: number;
  cpu_quota?: number;
  cpu_period?: number;
  cpus?: number;
  cpuset?: string;
  depends_on?: Record<string, ServiceDependency>;
  deploy?: Record<string, unknown> & { replicas?: number };
  device_cgroup_rules?: string[];
  devices?: { source: string; target: string; permissions?: string }[];
  dns?: string[];
  dns_opt?: string[];
  dns_search?: string[];
  domainname?: string;
  entrypoint?: string[] | null;
  environment?: Record<string, string | null>;
  expose?: string[];
  external_links?: string[];
  extra_hosts?: string[];
  group_add?: string[];
  healthcheck?: HealthCheck;
  hostname?: string;
  image?: string;
  init?: boolean;
  ipc?: string;
  labels?: Record<string, string>;
  links?: string[];
  logging?: { driver?: string; options?: Record<string, string> };
  mac_address?: string;
  mem_limit?: number;
  mem_reservation?: number;
  mem_swappiness?: number;
  memswap_limit?: number;
  network_mode?: string;
  networks?: Record<string, ServiceNetwork | null>;
  oom_kill_disable?: boolean;
  oom_score_adj?: number;
  pid?: string;
  pids_limit?: number;
  platform?: string;
  ports?: ServicePort[];
  privileged?: boolean;
  profiles?: string[];
  pull_policy?: string;
  read_only?: boolean;
  restart?: string;
  runtime?: string;
  scale?: number;
  secrets?: FileReference[];
  security_opt?: string[];
  shm_size?: number;
  stdin_open?: boolean;
  stop_grace_period?: string;
  stop_signal?: string;
  storage_opt?: Record<string, string>;
  sysctls?: Record<string, string>;
  tmpfs?: string[];
  tty?: boolean;
  ulimits?: Record<string, { single?: number; soft?: number; hard?: number }>;
  user?: string;
  userns_mode?: string;
  uts?: string;
  volumes?: ServiceVolume[];
  volumes_from?: string[];
  working_dir?: string;
  [key: string]: unknown;
}

/** A top-level network. */
export interface NetworkConfig {
  name: string;
  driver?: string;
  driver_opts?: Record<string, string>;
  ipam?: {
    driver?: string;
    config?: { subnet?: string; ip_range?: string; gateway?: string; aux_addresses?: Record<string, string> }[];
    options?: Record<string, string>;
  };
  external?: boolean;
  internal?: boolean;
  attachable?: boolean;
  enable_ipv4?: boolean;
  enable_ipv6?: boolean;
  labels?: Record<string, string>;
}

/** A top-level volume. */
export interface VolumeConfig {
  name: string;
  driver?: string;
  driver_opts?: Record<string, string>;
  external?: boolean;
  labels?: Record<string, string>;
}

/** A top-level secret or config (file-based, environment-based or external). */
export interface FileObjectConfig {
  name: string;
  file?: string;
  environment?: string;
  content?: string;
  external?: boolean;
  labels?: Record<string, string>;
}

/** A loaded, normalised project. */
export interface Project {
  name: string;
  /** The project directory (absolute). */
  workingDir: string;
  /** The Compose files loaded (absolute), in order. */
  configFiles: string[];
  /** The `--env-file` files used (absolute). */
  envFiles: string[];
  services: Record<string, Service>;
  /** Services left out because none of their profiles is active. */
  disabledServices: Record<string, Service>;
  networks: Record<string, NetworkConfig>;
  volumes: Record<string, VolumeConfig>;
  secrets: Record<string, FileObjectConfig>;
  configs: Record<string, FileObjectConfig>;
  /** The variables used for interpolation (process environment over `.env`). */
  environment: Record<string, string>;
  /** Top-level `x-*` extensions. */
  extensions: Record<string, unknown>;
}
