/**
 * The Compose loader: finds the files as Compose v2 does, reads `.env` and `--env-file`,
 * interpolates, validates each file against berth's schema, resolves `include` and `extends`,
 * normalises every service, merges the files by the Compose rules, applies profiles and checks
 * the project as a whole (references, dependency cycles, port clashes). Every error names the
 * file and the path inside it.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { invalidArgument, notFound } from "../base/mod.ts";
import { parseEnvFile } from "./envfile.ts";
import { interpolateTree, type Lookup } from "./interpolate.ts";
import { mergeServices, mergeValue, OverrideTag, ResetTag, stripMarkers } from "./merge.ts";
import type { FileObjectConfig, NetworkConfig, Project, Service, VolumeConfig } from "./model.ts";
import { listOrDict, normalizeService, resolveHostPath } from "./normalize.ts";
import { validateComposeFile } from "./schema.ts";
import { toBool } from "./units.ts";
import { parseComposeYaml } from "./yaml.ts";

/** The file names Compose looks for, in order of preference. */
export const DEFAULT_FILE_NAMES = ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];
/** The override files merged automatically after the default file. */
export const OVERRIDE_FILE_NAMES = [
  "compose.override.yaml",
  "compose.override.yml",
  "docker-compose.override.yml",
  "docker-compose.override.yaml",
];

/** What to load, as the global flags of `compose` say it. */
export interface LoadOptions {
  /** The directory the command runs in. */
  cwd: string;
  /** The process environment. */
  env: Record<string, string | undefined>;
  /** `-f` files (`-` for standard input); default COMPOSE_FILE, then the files found from `cwd` up. */
  files?: string[];
  /** `-p`; default COMPOSE_PROJECT_NAME, then `name:`, then the project directory's name. */
  projectName?: string;
  /** `--project-directory`; default the first file's directory. */
  projectDirectory?: string;
  /** `--env-file` files; default `.env` in the project directory. */
  envFiles?: string[];
  /** `--profile`; added to COMPOSE_PROFILES. */
  profiles?: string[];
  /** Services named on the command line: enabled whatever their profiles. */
  services?: string[];
  /** Reads standard input, for `-f -`. */
  readStdin?: () => Promise<string>;
  /** Set false for `config --no-interpolate`. */
  interpolate?: boolean;
}

type Raw = Record<string, unknown>;

/** One file's content after interpolation, validation and normalisation of its services. */
interface FileModel {
  name?: string;
  services: Record<string, Service>;
  networks: Raw;
  volumes: Raw;
  secrets: Raw;
  configs: Raw;
  extensions: Raw;
}

interface Ctx {
  lookup: Lookup;
  interpolate: boolean;
  /** Parsed, interpolated, validated files by absolute path (extends reads files again). */
  cache: Map<string, Raw>;
  stdin?: string;
  /** Files being included, for cycle detection. */
  including: string[];
}

function isObject(v: unknown): v is Raw {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof ResetTag) && !(v instanceof OverrideTag);
}

/** Replaces `!override` values by their content and drops `!reset` keys, for schema checks. */
function withoutTags(v: unknown): unknown {
  if (v instanceof OverrideTag) return withoutTags(v.value);
  if (Array.isArray(v)) return v.filter((x) => !(x instanceof ResetTag)).map(withoutTags);
  if (isObject(v)) {
    const out: Raw = {};
    for (const [k, x] of Object.entries(v)) if (!(x instanceof ResetTag)) out[k] = withoutTags(x);
    return out;
  }
  return v;
}

/** Finds the Compose file from `dir` upwards, with its override file when present. */
export function findComposeFiles(dir: string): string[] {
  let d = resolve(dir);
  for (;;) {
    for (const name of DEFAULT_FILE_NAMES) {
      const p = resolve(d, name);
      if (existsSync(p) && statSync(p).isFile()) {
        const out = [p];
        for (const o of OVERRIDE_FILE_NAMES) {
          const op = resolve(d, o);
          if (existsSync(op)) {
            out.push(op);
            break;
          }
        }
        return out;
      }
    }
    const parent = dirname(d);
    if (parent === d) return [];
    d = parent;
  }
}

/** Makes a directory name a valid project name, as Compose does. */
export function normalizeProjectName(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "")
    .replace(/^[^a-z0-9]+/, "");
}

/** Checks a project name given with `-p`, COMPOSE_PROJECT_NAME or `name:`. */
export function checkProjectName(name: string): string {
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name)) {
    throw invalidArgument(
      `Invalid project name "${name}": must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number`,
    );
  }
  return name;
}

function readText(path: string, ctx: Ctx): string {
  if (path === "-") {
    if (ctx.stdin === undefined) throw invalidArgument("Reading a Compose file from standard input is not possible here");
    return ctx.stdin;
  }
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw notFound(`open ${path}: no such file or directory`);
    throw e;
  }
}

/** Reads, interpolates and validates one file (cached). */
function readFile(path: string, ctx: Ctx): Raw {
  const cached = ctx.cache.get(path);
  if (cached) return cached;
  const shown = path === "-" ? "(stdin)" : path;
  const raw = parseComposeYaml(readText(path, ctx), shown);
  if (raw === null || raw === undefined) throw invalidArgument(`${shown}: empty compose file`);
  if (!isObject(raw)) throw invalidArgument(`${shown}: Top-level object must be a mapping`);
  const value = (ctx.interpolate ? interpolateTree(raw, ctx.lookup, shown) : raw) as Raw;
  validateComposeFile(withoutTags(value), shown);
  ctx.cache.set(path, value);
  return value;
}

/** Resolves `extends` of one service and normalises it. */
function resolveService(name: string, file: string, baseDir: string, ctx: Ctx, stack: string[]): Service {
  const doc = readFile(file, ctx);
  const services = (doc.services ?? {}) as Raw;
  const raw = services[name];
  const shown = file === "-" ? "(stdin)" : file;
  if (!isObject(raw)) {
    if (raw === undefined)
      throw invalidArgument(`${shown}: services.${stack.at(-1)?.split("#")[1] ?? name}.extends: no service "${name}" in ${shown}`);
    if (raw !== null) throw invalidArgument(`${shown}: services.${name}: must be a mapping`);
  }
  const body: Raw = isObject(raw) ? { ...raw } : {};
  const key = `${file}#${name}`;
  if (stack.includes(key)) {
    throw invalidArgument(
      `${shown}: services.${name}.extends: circular reference: ${[...stack, key].map((k) => k.split("#")[1]).join(" -> ")}`,
    );
  }
  const ext = body.extends;
  delete body.extends;
  const own = normalizeService(body, { baseDir, file: shown, service: name });
  if (ext === undefined) return own;
  const target = typeof ext === "string" ? { service: ext } : (ext as { service: string; file?: string });
  let baseFile = file;
  let baseBase = baseDir;
  if (target.file !== undefined) {
    baseFile = resolveHostPath(target.file, file === "-" ? baseDir : dirname(file));
    baseBase = dirname(baseFile);
  }
  const base = resolveService(target.service, baseFile, baseBase, ctx, [...stack, key]);
  return mergeServices(base, own);
}

function loadFileModel(path: string, baseDir: string, ctx: Ctx): FileModel {
  const doc = readFile(path, ctx);
  const shown = path === "-" ? "(stdin)" : path;
  const m: FileModel = { services: {}, networks: {}, volumes: {}, secrets: {}, configs: {}, extensions: {} };
  if (typeof doc.name === "string") m.name = doc.name;
  for (const k of Object.keys(doc)) if (k.startsWith("x-")) m.extensions[k] = doc[k];
  for (const name of Object.keys((doc.services ?? {}) as Raw)) {
    const v = (doc.services as Raw)[name];
    if (v instanceof ResetTag) continue;
    m.services[name] = resolveService(name, path, baseDir, ctx, []);
  }
  for (const kind of ["networks", "volumes", "secrets", "configs"] as const) {
    for (const [k, v] of Object.entries((doc[kind] ?? {}) as Raw)) {
      m[kind][k] = normalizeResource(kind, k, v, baseDir);
    }
  }
  // include: each entry is loaded as a project of its own and its resources added to this one.
  const includes = (doc.include ?? []) as unknown[];
  for (const [i, inc] of includes.entries()) {
    const spec =
      typeof inc === "string"
        ? { path: inc }
        : (inc as { path: string | string[]; env_file?: string | string[]; project_directory?: string });
    const fileDir = path === "-" ? baseDir : dirname(path);
    const paths = (Array.isArray(spec.path) ? spec.path : [spec.path]).map((p) => resolveHostPath(p, fileDir));
    const projectDir =
      spec.project_directory !== undefined ? resolveHostPath(spec.project_directory, fileDir) : dirname(paths[0] as string);
    for (const p of paths) {
      if (ctx.including.includes(p)) throw invalidArgument(`${shown}: include[${i}]: include cycle through ${p}`);
    }
    const envFiles =
      spec.env_file !== undefined
        ? (Array.isArray(spec.env_file) ? spec.env_file : [spec.env_file]).map((p) => resolveHostPath(p, fileDir))
        : [resolve(projectDir, ".env")];
    const envVars: Record<string, string> = {};
    for (const f of envFiles) {
      if (!existsSync(f)) {
        if (spec.env_file !== undefined) throw invalidArgument(`${shown}: include[${i}].env_file: ${f} not found`);
        continue;
      }
      Object.assign(
        envVars,
        parseEnvFile(readFileSync(f, "utf8"), f, (n) => envVars[n] ?? ctx.lookup(n)),
      );
    }
    const sub: Ctx = {
      lookup: (n) => ctx.lookup(n) ?? envVars[n],
      interpolate: ctx.interpolate,
      cache: new Map(),
      including: [...ctx.including, ...paths],
    };
    const models = paths.map((p) => loadFileModel(p, projectDir, sub));
    const inc2 = mergeModels(models);
    for (const kind of ["services", "networks", "volumes", "secrets", "configs"] as const) {
      for (const [k, v] of Object.entries(inc2[kind])) {
        const existing = (m[kind] as Raw)[k];
        if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(v)) {
          throw invalidArgument(
            `${shown}: include[${i}]: ${kind}.${k} conflicts with the same ${kind.slice(0, -1)} in the included project`,
          );
        }
        (m[kind] as Raw)[k] = v;
      }
    }
  }
  return m;
}

function normalizeResource(kind: string, key: string, v: unknown, baseDir: string): unknown {
  if (v instanceof ResetTag) return v;
  if (v instanceof OverrideTag) return new OverrideTag(normalizeResource(kind, key, v.value, baseDir));
  const r: Raw = isObject(v) ? { ...v } : {};
  if (r.external !== undefined) {
    if (isObject(r.external)) {
      // Legacy `external: {name: x}`.
      if (r.external.name !== undefined) r.name = r.external.name;
      r.external = true;
    } else r.external = toBool(r.external);
  }
  if (r.labels !== undefined) {
    const l = listOrDict(r.labels, "");
    r.labels = Object.fromEntries(Object.entries(l).map(([a, b]) => [a, b ?? ""]));
  }
  if (r.driver_opts !== undefined) r.driver_opts = Object.fromEntries(Object.entries(r.driver_opts as Raw).map(([a, b]) => [a, String(b)]));
  for (const b of ["internal", "attachable", "enable_ipv6", "enable_ipv4"]) if (r[b] !== undefined) r[b] = toBool(r[b]);
  if ((kind === "secrets" || kind === "configs") && typeof r.file === "string") r.file = resolveHostPath(r.file, baseDir);
  return r;
}

function mergeModels(models: FileModel[]): FileModel {
  const out: FileModel = { services: {}, networks: {}, volumes: {}, secrets: {}, configs: {}, extensions: {} };
  for (const m of models) {
    if (m.name !== undefined) out.name = m.name;
    for (const [k, s] of Object.entries(m.services)) {
      const prev = out.services[k];
      out.services[k] = prev ? mergeServices(prev, s) : (stripMarkers(s) as Service);
    }
    for (const kind of ["networks", "volumes", "secrets", "configs", "extensions"] as const) {
      for (const [k, v] of Object.entries(m[kind])) {
        const merged = mergeValue(out[kind][k], v, kind);
        if (merged === undefined) delete out[kind][k];
        else out[kind][k] = merged;
      }
    }
  }
  return out;
}

/** Reads the `.env` or `--env-file` files into a map (later files win). */
function loadDotEnv(files: string[], explicit: boolean, processEnv: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of files) {
    if (!existsSync(f)) {
      if (explicit) throw notFound(`Couldn't find env file: ${f}`);
      continue;
    }
    if (statSync(f).isDirectory()) {
      if (explicit) throw invalidArgument(`${f} is a directory`);
      continue;
    }
    Object.assign(
      out,
      parseEnvFile(readFileSync(f, "utf8"), f, (n) => processEnv[n] ?? out[n]),
    );
  }
  return out;
}

/** Loads a project. */
export async function loadProject(options: LoadOptions): Promise<Project> {
  const cwd = resolve(options.cwd);
  const processEnv = options.env;
  // The project directory decides where `.env` is read, which may itself set COMPOSE_FILE.
  let files = (options.files ?? []).map((f) => (f === "-" ? "-" : resolveHostPath(f, cwd)));
  let workingDir = options.projectDirectory
    ? resolveHostPath(options.projectDirectory, cwd)
    : files[0] !== undefined && files[0] !== "-"
      ? dirname(files[0])
      : cwd;
  const envFiles = (options.envFiles ?? []).map((f) => resolveHostPath(f, cwd));
  let dotenv = loadDotEnv(envFiles.length ? envFiles : [resolve(workingDir, ".env")], envFiles.length > 0, processEnv);
  let env: Record<string, string> = { ...dotenv };
  for (const [k, v] of Object.entries(processEnv)) if (v !== undefined) env[k] = v;
  if (files.length === 0) {
    const fromEnv = env.COMPOSE_FILE;
    if (fromEnv) {
      const sep = env.COMPOSE_PATH_SEPARATOR || ":";
      files = fromEnv
        .split(sep)
        .filter((f) => f !== "")
        .map((f) => resolveHostPath(f, workingDir));
    } else {
      files = findComposeFiles(workingDir);
      if (files.length === 0) throw notFound("no configuration file provided: not found");
    }
    if (!options.projectDirectory && files[0] !== undefined) {
      const dir = dirname(files[0]);
      if (dir !== workingDir) {
        workingDir = dir;
        if (envFiles.length === 0) {
          dotenv = loadDotEnv([resolve(workingDir, ".env")], false, processEnv);
          env = { ...dotenv };
          for (const [k, v] of Object.entries(processEnv)) if (v !== undefined) env[k] = v;
        }
      }
    }
  }
  for (const f of files) {
    if (f !== "-" && !existsSync(f)) throw notFound(`open ${f}: no such file or directory`);
  }
  const ctx: Ctx = {
    lookup: (n) => env[n],
    interpolate: options.interpolate ?? true,
    cache: new Map(),
    including: files.filter((f) => f !== "-"),
  };
  if (files.includes("-")) {
    if (!options.readStdin) throw invalidArgument("Reading a Compose file from standard input is not possible here");
    ctx.stdin = await options.readStdin();
  }
  const models = files.map((f) => loadFileModel(f, workingDir, ctx));
  const merged = mergeModels(models);

  let name: string;
  if (options.projectName !== undefined && options.projectName !== "") name = checkProjectName(options.projectName);
  else if (env.COMPOSE_PROJECT_NAME) name = checkProjectName(env.COMPOSE_PROJECT_NAME);
  else if (merged.name) name = checkProjectName(merged.name);
  else {
    name = normalizeProjectName(basename(workingDir));
    if (name === "") throw invalidArgument(`Cannot derive a project name from "${workingDir}": use -p or COMPOSE_PROJECT_NAME`);
  }

  const profiles = new Set([...(env.COMPOSE_PROFILES ?? "").split(",").filter(Boolean), ...(options.profiles ?? [])]);
  const project: Project = {
    name,
    workingDir,
    configFiles: files.map((f) => (f === "-" ? "-" : f)),
    envFiles,
    services: {},
    disabledServices: {},
    networks: {},
    volumes: {},
    secrets: {},
    configs: {},
    environment: env,
    extensions: merged.extensions,
  };
  finalize(project, merged, profiles, options.services ?? []);
  return project;
}

function firstFile(project: Project): string {
  const f = project.configFiles[0] ?? "compose.yaml";
  return f === "-" ? "(stdin)" : f;
}

/** Fills in defaults, applies profiles and checks references across the project. */
function finalize(project: Project, model: FileModel, profiles: Set<string>, targeted: string[]): void {
  const file = firstFile(project);
  const env = project.environment;
  for (const t of targeted) {
    if (!model.services[t]) throw notFound(`no such service: ${t}`);
  }
  // Profiles: a service with profiles runs only when one of them is active or it is named;
  // the dependencies of an enabled service are enabled with it.
  const enabled = new Set<string>();
  const visit = (n: string) => {
    if (enabled.has(n) || !model.services[n]) return;
    enabled.add(n);
    for (const d of Object.keys(model.services[n]?.depends_on ?? {})) visit(d);
    for (const d of implicitDependencies(model.services[n] as Service)) visit(d);
  };
  for (const [n, s] of Object.entries(model.services)) {
    const p = s.profiles ?? [];
    if (p.length === 0 || p.some((x) => profiles.has(x)) || profiles.has("*") || targeted.includes(n)) visit(n);
  }
  for (const [n, s] of Object.entries(model.services)) {
    const svc = finalizeService(n, s, project, file);
    if (enabled.has(n)) project.services[n] = svc;
    else project.disabledServices[n] = svc;
  }
  // Networks: the default network exists when a service uses it.
  const usesDefault = Object.values(project.services).some((s) => s.networks && "default" in s.networks);
  const networks = { ...model.networks };
  if (usesDefault && !networks.default) networks.default = {};
  for (const [k, v] of Object.entries(networks)) {
    const r = (isObject(v) ? v : {}) as Raw;
    const n: NetworkConfig = { ...(r as object), name: typeof r.name === "string" ? r.name : r.external ? k : `${project.name}_${k}` };
    project.networks[k] = n;
  }
  for (const [k, v] of Object.entries(model.volumes)) {
    const r = (isObject(v) ? v : {}) as Raw;
    const vol: VolumeConfig = { ...(r as object), name: typeof r.name === "string" ? r.name : r.external ? k : `${project.name}_${k}` };
    project.volumes[k] = vol;
  }
  for (const kind of ["secrets", "configs"] as const) {
    for (const [k, v] of Object.entries(model[kind])) {
      const r = (isObject(v) ? v : {}) as Raw;
      const o: FileObjectConfig = { ...(r as object), name: typeof r.name === "string" ? r.name : r.external ? k : `${project.name}_${k}` };
      if (!o.external && o.file === undefined && o.environment === undefined && o.content === undefined) {
        throw invalidArgument(
          `${file}: ${kind}.${k}: one of "file", "environment"${kind === "configs" ? ', "content"' : ""} or "external" is needed`,
        );
      }
      if (o.environment !== undefined && env[o.environment] === undefined) {
        throw invalidArgument(`${file}: ${kind}.${k}: environment variable "${o.environment}" is not set`);
      }
      project[kind][k] = o;
    }
  }
  checkReferences(project, file);
  checkCycles(project, file);
  checkPortClashes(project, file);
}

/** Services a service needs started first without `depends_on`: links, network_mode, volumes_from. */
export function implicitDependencies(s: Service): string[] {
  const out: string[] = [];
  for (const l of s.links ?? []) out.push(l.split(":")[0] as string);
  if (s.network_mode?.startsWith("service:")) out.push(s.network_mode.slice(8));
  for (const v of s.volumes_from ?? []) if (!v.startsWith("container:")) out.push(v.split(":")[0] as string);
  return out;
}

function finalizeService(name: string, s: Service, project: Project, file: string): Service {
  const out: Service = { ...s };
  const env = project.environment;
  const where = `${file}: services.${name}`;
  // env_file values first, then `environment`; bare keys take the value from the environment.
  const envFiles = (out.env_file ?? []) as { path: string; required: boolean }[];
  delete out.env_file;
  if (envFiles.length > 0 || out.environment) {
    const merged: Record<string, string | null> = {};
    for (const f of envFiles) {
      if (!existsSync(f.path)) {
        if (f.required) throw notFound(`${where}.env_file: env file ${f.path} not found`);
        continue;
      }
      const vars = parseEnvFile(readFileSync(f.path, "utf8"), f.path, (n) => env[n]);
      Object.assign(merged, vars);
    }
    for (const [k, v] of Object.entries(out.environment ?? {})) merged[k] = v === null ? (env[k] ?? null) : v;
    out.environment = merged;
  }
  if (out.label_file) {
    const labels: Record<string, string> = {};
    for (const f of out.label_file as string[]) {
      const p = resolveHostPath(f, project.workingDir);
      if (!existsSync(p)) throw notFound(`${where}.label_file: ${p} not found`);
      Object.assign(labels, parseEnvFile(readFileSync(p, "utf8"), p));
    }
    out.labels = { ...labels, ...out.labels };
    delete out.label_file;
  }
  if (out.image === undefined && out.build === undefined) {
    throw invalidArgument(`${where}: has neither an image nor a build context specified: invalid compose project`);
  }
  if (out.network_mode === undefined && out.networks === undefined) out.networks = { default: null };
  if (out.network_mode !== undefined && out.networks !== undefined && Object.keys(out.networks).length > 0) {
    throw invalidArgument(`${where}: "network_mode" and "networks" cannot be combined`);
  }
  if (out.scale !== undefined && out.deploy?.replicas !== undefined && out.scale !== out.deploy.replicas) {
    throw invalidArgument(`${where}: "scale" (${out.scale}) and "deploy.replicas" (${out.deploy.replicas}) differ`);
  }
  if (out.restart !== undefined && !/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(out.restart)) {
    throw invalidArgument(`${where}.restart: invalid restart policy "${out.restart}"`);
  }
  if (
    out.pull_policy !== undefined &&
    !/^(always|never|missing|if_not_present|build|daily|weekly|every_\w+|refresh)$/.test(out.pull_policy)
  ) {
    throw invalidArgument(`${where}.pull_policy: invalid pull policy "${out.pull_policy}"`);
  }
  if (out.container_name !== undefined && replicas(out) > 1) {
    throw invalidArgument(`${where}: "container_name" cannot be used with more than one replica`);
  }
  return out;
}

/** How many containers a service runs (`scale`, else `deploy.replicas`, else 1). */
export function replicas(s: Service): number {
  return s.scale ?? s.deploy?.replicas ?? 1;
}

function checkReferences(project: Project, file: string): void {
  const all = { ...project.services, ...project.disabledServices };
  for (const [name, s] of Object.entries(project.services)) {
    const where = `${file}: services.${name}`;
    for (const [d, dep] of Object.entries(s.depends_on ?? {})) {
      if (!all[d] && dep.required)
        throw invalidArgument(`${where}.depends_on: service "${name}" depends on undefined service "${d}": invalid compose project`);
    }
    for (const d of implicitDependencies(s)) {
      if (!all[d]) throw invalidArgument(`${where}: service "${name}" refers to undefined service "${d}": invalid compose project`);
    }
    for (const n of Object.keys(s.networks ?? {})) {
      if (!project.networks[n])
        throw invalidArgument(`${where}.networks: service "${name}" refers to undefined network "${n}": invalid compose project`);
    }
    for (const [i, v] of (s.volumes ?? []).entries()) {
      if (v.type === "volume" && v.source !== undefined && !project.volumes[v.source]) {
        throw invalidArgument(
          `${where}.volumes[${i}]: service "${name}" refers to undefined volume "${v.source}": invalid compose project`,
        );
      }
    }
    for (const kind of ["secrets", "configs"] as const) {
      for (const [i, r] of (s[kind] ?? []).entries()) {
        if (!project[kind][r.source]) {
          throw invalidArgument(
            `${where}.${kind}[${i}]: service "${name}" refers to undefined ${kind.slice(0, -1)} "${r.source}": invalid compose project`,
          );
        }
      }
    }
  }
}

function checkCycles(project: Project, file: string): void {
  const state = new Map<string, number>();
  const visit = (n: string, path: string[]) => {
    const st = state.get(n);
    if (st === 2) return;
    if (st === 1) {
      const from = path.indexOf(n);
      throw invalidArgument(`${file}: services.${n}.depends_on: dependency cycle detected: ${[...path.slice(from), n].join(" -> ")}`);
    }
    state.set(n, 1);
    const s = project.services[n];
    if (s)
      for (const d of [...Object.keys(s.depends_on ?? {}), ...implicitDependencies(s)]) if (project.services[d]) visit(d, [...path, n]);
    state.set(n, 2);
  };
  for (const n of Object.keys(project.services)) visit(n, []);
}

function checkPortClashes(project: Project, file: string): void {
  const used = new Map<string, { service: string; ip: string }[]>();
  for (const [name, s] of Object.entries(project.services)) {
    const n = replicas(s);
    for (const p of s.ports ?? []) {
      if (p.published === undefined) continue;
      const m = /^(\d+)(?:-(\d+))?$/.exec(p.published);
      if (!m) throw invalidArgument(`${file}: services.${name}.ports: invalid published port "${p.published}"`);
      const a = Number(m[1]);
      const b = m[2] === undefined ? a : Number(m[2]);
      // A single fixed port cannot be shared by several replicas either.
      if (a === b && n > 1) {
        throw invalidArgument(
          `${file}: services.${name}.ports: port ${a}/${p.protocol} is published by ${n} replicas of "${name}": only one can bind it`,
        );
      }
      if (a !== b) continue;
      const ip = p.host_ip ?? "";
      const key = `${a}/${p.protocol}`;
      for (const other of used.get(key) ?? []) {
        const overlap = other.ip === ip || other.ip === "" || ip === "" || other.ip === "0.0.0.0" || ip === "0.0.0.0";
        if (overlap && other.service !== name) {
          throw invalidArgument(`${file}: services.${name}.ports: port ${key} is published by services "${other.service}" and "${name}"`);
        }
      }
      used.set(key, [...(used.get(key) ?? []), { service: name, ip }]);
    }
  }
}
