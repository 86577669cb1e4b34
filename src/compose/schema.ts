/**
 * berth's own description of the Compose file format (written for berth from the Compose
 * specification's prose; not a copy of its JSON schema), and a validator that reports the file,
 * the path inside it and what is wrong: `compose.yaml: services.web.ports[0]: must be a string
 * or a number`. Values are checked after interpolation, so numbers and booleans may also arrive
 * as strings (`"8080"`, `"true"`); the normaliser converts them.
 */
import { invalidArgument } from "../base/mod.ts";
import { pathText } from "./interpolate.ts";

/** A node of the schema. */
export type Schema =
  | { t: "string"; pattern?: RegExp; values?: readonly string[] }
  | { t: "int" }
  | { t: "number" }
  | { t: "bool" }
  | { t: "null" }
  | { t: "any" }
  | { t: "object"; props: Record<string, Schema>; extra?: Schema; required?: readonly string[]; name?: string }
  | { t: "array"; items: Schema; unique?: boolean }
  | { t: "oneOf"; of: readonly Schema[]; name?: string };

const str: Schema = { t: "string" };
const int: Schema = { t: "int" };
const num: Schema = { t: "number" };
const bool: Schema = { t: "bool" };
const nul: Schema = { t: "null" };
const any: Schema = { t: "any" };
const oneOf = (...of: Schema[]): Schema => ({ t: "oneOf", of });
const arr = (items: Schema, unique = false): Schema => ({ t: "array", items, unique });
const obj = (props: Record<string, Schema>, extra?: Schema, required?: string[]): Schema => {
  const o: Schema = { t: "object", props };
  if (extra) o.extra = extra;
  if (required) o.required = required;
  return o;
};
const strEnum = (...values: string[]): Schema => ({ t: "string", values });
const strOrNum = oneOf(str, num);
const intOrStr = oneOf(int, str);
const strOrList = oneOf(str, arr(str));
/** `KEY=value` list or a mapping of scalars (environment, labels, sysctls, ...). */
const listOrDict = oneOf(arr(str, true), obj({}, oneOf(str, num, bool, nul)));
const labels = listOrDict;
const duration = str;
const extOk = (o: Schema): Schema => o;

const healthcheck = obj({
  disable: bool,
  interval: duration,
  retries: num,
  test: strOrList,
  timeout: duration,
  start_period: duration,
  start_interval: duration,
});

const build = oneOf(
  str,
  obj({
    context: str,
    dockerfile: str,
    dockerfile_inline: str,
    entitlements: arr(str),
    args: listOrDict,
    ssh: listOrDict,
    labels,
    cache_from: arr(str),
    cache_to: arr(str),
    no_cache: bool,
    additional_contexts: listOrDict,
    network: str,
    pull: bool,
    target: str,
    shm_size: intOrStr,
    extra_hosts: listOrDict,
    isolation: str,
    privileged: bool,
    secrets: arr(oneOf(str, obj({ source: str, target: str, uid: str, gid: str, mode: oneOf(num, str) }))),
    tags: arr(str),
    ulimits: obj({}, oneOf(int, obj({ hard: int, soft: int }, undefined, ["soft", "hard"]))),
    platforms: arr(str),
  }),
);

const blkioLimit = obj({ path: str, rate: intOrStr });
const blkioWeight = obj({ path: str, weight: int });

const deploy = obj({
  mode: str,
  endpoint_mode: str,
  replicas: int,
  labels,
  rollback_config: obj({}, any),
  update_config: obj({}, any),
  resources: obj({
    limits: obj({ cpus: strOrNum, memory: str, pids: int, devices: arr(any) }),
    reservations: obj({ cpus: strOrNum, memory: str, generic_resources: arr(any), devices: arr(any) }),
  }),
  restart_policy: obj({ condition: str, delay: duration, max_attempts: int, window: duration }),
  placement: obj({}, any),
});

const port = oneOf(
  num,
  str,
  obj({
    name: str,
    mode: str,
    host_ip: str,
    target: intOrStr,
    published: oneOf(str, int),
    protocol: str,
    app_protocol: str,
  }),
);

const serviceVolume = oneOf(
  str,
  obj(
    {
      type: strEnum("bind", "volume", "tmpfs", "npipe", "cluster", "image"),
      source: str,
      target: str,
      read_only: bool,
      consistency: str,
      bind: obj({
        propagation: str,
        create_host_path: bool,
        recursive: strEnum("enabled", "disabled", "writable", "readonly"),
        selinux: str,
      }),
      volume: obj({ nocopy: bool, subpath: str }),
      tmpfs: obj({ size: oneOf(int, str), mode: num }),
      image: obj({ subpath: str }),
    },
    undefined,
    ["type"],
  ),
);

const fileRef = arr(
  oneOf(
    str,
    obj({
      source: str,
      target: str,
      uid: str,
      gid: str,
      mode: oneOf(num, str),
    }),
  ),
);

const service: Schema = {
  t: "object",
  name: "service",
  props: {
    annotations: listOrDict,
    attach: bool,
    build,
    blkio_config: obj({
      device_read_bps: arr(blkioLimit),
      device_read_iops: arr(blkioLimit),
      device_write_bps: arr(blkioLimit),
      device_write_iops: arr(blkioLimit),
      weight: int,
      weight_device: arr(blkioWeight),
    }),
    cap_add: arr(str, true),
    cap_drop: arr(str, true),
    cgroup: strEnum("host", "private"),
    cgroup_parent: str,
    command: oneOf(nul, str, arr(str)),
    configs: fileRef,
    container_name: str,
    cpu_count: intOrStr,
    cpu_percent: intOrStr,
    cpu_shares: strOrNum,
    cpu_quota: strOrNum,
    cpu_period: strOrNum,
    cpu_rt_period: strOrNum,
    cpu_rt_runtime: strOrNum,
    cpus: strOrNum,
    cpuset: str,
    credential_spec: obj({}, any),
    depends_on: oneOf(
      arr(str, true),
      obj(
        {},
        obj(
          { condition: strEnum("service_started", "service_healthy", "service_completed_successfully"), restart: bool, required: bool },
          undefined,
          ["condition"],
        ),
      ),
    ),
    deploy,
    develop: obj({}, any),
    device_cgroup_rules: arr(str),
    devices: arr(oneOf(str, obj({ source: str, target: str, permissions: str }))),
    dns: strOrList,
    dns_opt: arr(str, true),
    dns_search: strOrList,
    domainname: str,
    entrypoint: oneOf(nul, str, arr(str)),
    env_file: oneOf(str, arr(oneOf(str, obj({ path: str, required: bool, format: str }, undefined, ["path"])))),
    label_file: strOrList,
    environment: listOrDict,
    expose: arr(strOrNum, true),
    extends: oneOf(str, obj({ service: str, file: str }, undefined, ["service"])),
    external_links: arr(str, true),
    extra_hosts: listOrDict,
    gpus: any,
    group_add: arr(strOrNum, true),
    healthcheck,
    hostname: str,
    image: str,
    init: bool,
    ipc: str,
    isolation: str,
    labels,
    links: arr(str, true),
    logging: obj({ driver: str, options: obj({}, oneOf(str, num, nul)) }),
    mac_address: str,
    mem_limit: strOrNum,
    mem_reservation: strOrNum,
    mem_swappiness: int,
    memswap_limit: strOrNum,
    network_mode: str,
    networks: oneOf(
      arr(str, true),
      obj(
        {},
        oneOf(
          nul,
          obj({
            aliases: arr(str, true),
            ipv4_address: str,
            ipv6_address: str,
            link_local_ips: arr(str, true),
            mac_address: str,
            driver_opts: obj({}, strOrNum),
            priority: num,
            gw_priority: num,
            interface_name: str,
          }),
        ),
      ),
    ),
    oom_kill_disable: bool,
    oom_score_adj: int,
    pid: oneOf(str, nul),
    pids_limit: strOrNum,
    platform: str,
    ports: arr(port),
    post_start: arr(any),
    pre_stop: arr(any),
    privileged: bool,
    profiles: arr(str, true),
    pull_policy: str,
    read_only: bool,
    restart: str,
    runtime: str,
    scale: int,
    secrets: fileRef,
    security_opt: arr(str, true),
    shm_size: strOrNum,
    stdin_open: bool,
    stop_grace_period: duration,
    stop_signal: str,
    storage_opt: obj({}, any),
    sysctls: listOrDict,
    tmpfs: strOrList,
    tty: bool,
    ulimits: obj({}, oneOf(int, obj({ hard: int, soft: int }, undefined, ["soft", "hard"]))),
    user: str,
    uts: str,
    userns_mode: str,
    volumes: arr(serviceVolume),
    volumes_from: arr(str, true),
    working_dir: str,
  },
};

const external = oneOf(bool, obj({ name: str }));

const network = oneOf(
  nul,
  obj({
    name: str,
    driver: str,
    driver_opts: obj({}, strOrNum),
    ipam: obj({
      driver: str,
      config: arr(obj({ subnet: str, ip_range: str, gateway: str, aux_addresses: obj({}, str) })),
      options: obj({}, str),
    }),
    external,
    internal: bool,
    enable_ipv4: bool,
    enable_ipv6: bool,
    attachable: bool,
    labels,
  }),
);

const volume = oneOf(
  nul,
  obj({
    name: str,
    driver: str,
    driver_opts: obj({}, strOrNum),
    external,
    labels,
  }),
);

const secretOrConfig = (extraProps: Record<string, Schema>) =>
  obj({
    name: str,
    environment: str,
    file: str,
    external,
    labels,
    driver: str,
    driver_opts: obj({}, strOrNum),
    template_driver: str,
    ...extraProps,
  });

/** The whole file. */
export const COMPOSE_SCHEMA: Schema = extOk(
  obj({
    version: strOrNum,
    name: { t: "string", pattern: /^[a-z0-9][a-z0-9_-]*$/ },
    include: arr(oneOf(str, obj({ path: strOrList, env_file: strOrList, project_directory: str }, undefined, ["path"]))),
    services: obj({}, service),
    networks: obj({}, network),
    volumes: obj({}, volume),
    secrets: obj({}, secretOrConfig({})),
    configs: obj({}, secretOrConfig({ content: str })),
    models: obj({}, any),
  }),
);

/** One validation failure. */
export interface SchemaError {
  path: string[];
  message: string;
}

const BOOL_STRINGS = new Set(["true", "false", "yes", "no", "on", "off", "y", "n", "1", "0", "True", "False", "TRUE", "FALSE"]);

function typeName(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `the string "${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  return `${typeof v === "number" ? "the number" : "the boolean"} ${String(v)}`;
}

function describe(s: Schema): string {
  switch (s.t) {
    case "string":
      return s.values ? `one of ${s.values.map((x) => `"${x}"`).join(", ")}` : "a string";
    case "int":
      return "an integer";
    case "number":
      return "a number";
    case "bool":
      return "a boolean";
    case "null":
      return "null";
    case "any":
      return "anything";
    case "object":
      return "a mapping";
    case "array":
      return "a list";
    case "oneOf": {
      const parts = [...new Set(s.of.map(describe))];
      return parts.length <= 1 ? (parts[0] ?? "") : `${parts.slice(0, -1).join(", ")} or ${parts.at(-1)}`;
    }
  }
}

/** Validates `value` against `schema`; returns every error found (empty when valid). */
export function validate(value: unknown, schema: Schema, path: string[] = []): SchemaError[] {
  const errs: SchemaError[] = [];
  check(value, schema, path, errs);
  return errs;
}

function check(v: unknown, s: Schema, path: string[], errs: SchemaError[]): void {
  const bad = () => errs.push({ path, message: `must be ${describe(s)}, not ${typeName(v)}` });
  switch (s.t) {
    case "any":
      return;
    case "null":
      if (v !== null && v !== undefined) bad();
      return;
    case "string":
      if (typeof v !== "string") return void bad();
      if (s.values && !s.values.includes(v)) return void bad();
      if (s.pattern && !s.pattern.test(v)) errs.push({ path, message: `"${v}" does not match ${s.pattern.source}` });
      return;
    case "int":
      if (typeof v === "number" && Number.isInteger(v)) return;
      if (typeof v === "string" && /^[+-]?\d+$/.test(v.trim())) return;
      return void bad();
    case "number":
      if (typeof v === "number") return;
      if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return;
      return void bad();
    case "bool":
      if (typeof v === "boolean") return;
      if (typeof v === "string" && BOOL_STRINGS.has(v)) return;
      return void bad();
    case "array": {
      if (!Array.isArray(v)) return void bad();
      const seen = new Set<string>();
      v.forEach((item, i) => {
        check(item, s.items, [...path, `[${i}]`], errs);
        if (s.unique) {
          const key = JSON.stringify(item);
          if (seen.has(key)) errs.push({ path: [...path, `[${i}]`], message: `duplicate entry ${typeName(item)}` });
          seen.add(key);
        }
      });
      return;
    }
    case "object": {
      if (v === null || typeof v !== "object" || Array.isArray(v)) return void bad();
      const o = v as Record<string, unknown>;
      for (const r of s.required ?? []) {
        if (!(r in o)) errs.push({ path, message: `missing required property "${r}"` });
      }
      for (const [k, child] of Object.entries(o)) {
        const p = s.props[k];
        if (p) check(child, p, [...path, k], errs);
        else if (k.startsWith("x-")) continue;
        else if (s.extra) check(child, s.extra, [...path, k], errs);
        else errs.push({ path, message: `additional property "${k}" is not allowed${suggest(k, Object.keys(s.props))}` });
      }
      return;
    }
    case "oneOf": {
      const candidates = s.of.filter((c) => matchesShape(v, c));
      if (candidates.length === 0) return void bad();
      // Report the errors of the alternative of the right shape (the mapping form for a mapping).
      let best: SchemaError[] | undefined;
      for (const c of candidates) {
        const sub: SchemaError[] = [];
        check(v, c, path, sub);
        if (sub.length === 0) return;
        if (!best || sub.length < best.length) best = sub;
      }
      errs.push(...(best ?? []));
      return;
    }
  }
}

/** Whether a value has the basic type of a schema node (before its details are checked). */
function matchesShape(v: unknown, s: Schema): boolean {
  switch (s.t) {
    case "any":
      return true;
    case "null":
      return v === null || v === undefined;
    case "string":
      return typeof v === "string";
    case "int":
    case "number":
      return typeof v === "number" || typeof v === "string";
    case "bool":
      return typeof v === "boolean" || typeof v === "string";
    case "array":
      return Array.isArray(v);
    case "object":
      return v !== null && typeof v === "object" && !Array.isArray(v);
    case "oneOf":
      return s.of.some((c) => matchesShape(v, c));
  }
}

function suggest(key: string, known: string[]): string {
  let best = "";
  let bestD = 3;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best ? ` (did you mean "${best}"?)` : "";
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0] as number;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j] as number;
      dp[j] = Math.min((dp[j] as number) + 1, (dp[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length] as number;
}

/** Validates a whole Compose file; throws one error listing every problem with file and path. */
export function validateComposeFile(value: unknown, file: string): void {
  const errs = validate(value, COMPOSE_SCHEMA);
  if (errs.length === 0) return;
  const lines = errs.slice(0, 20).map((e) => `${file}: ${pathText(e.path)}: ${e.message}`);
  if (errs.length > 20) lines.push(`... and ${errs.length - 20} more`);
  throw invalidArgument(lines.join("\n"), { detail: { file, path: pathText(errs[0]?.path ?? []) } });
}
