/**
 * `build:` of a service through the Engine API's classic builder (POST /build): the context
 * directory is sent as a tar that honours `.dockerignore`, with the Dockerfile added when it
 * lives outside the context or is given inline.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { PassThrough } from "node:stream";
import { pack } from "tar-stream";
import type { QueryValue } from "../client/mod.ts";
import { COMPOSE_VERSION, PROJECT_LABEL, SERVICE_LABEL, VERSION_LABEL } from "./labels.ts";
import { ComposeError, type Session } from "./engine.ts";
import { serviceImage } from "./convert.ts";
import type { Project, Service } from "./model.ts";

/** One `.dockerignore` rule. */
interface IgnoreRule {
  re: RegExp;
  negate: boolean;
}

function globToRegex(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "*") {
      if (pattern[i + 1] === "*") {
        re += ".*";
        i++;
        if (pattern[i + 1] === "/") i++;
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else if ("[]".includes(c)) re += c;
    else re += c.replace(/[.+^${}()|]/g, "\\$&");
  }
  // A pattern matching a directory excludes what is below it too.
  return new RegExp(`^${re}(/.*)?$`);
}

/** Parses `.dockerignore` text into rules (paths relative to the context, no leading slash). */
export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (let line of text.split(/\r?\n/)) {
    line = line.trim();
    if (line === "" || line.startsWith("#")) continue;
    let negate = false;
    if (line.startsWith("!")) {
      negate = true;
      line = line.slice(1).trim();
    }
    line = line.replace(/^\/+/, "").replace(/\/+$/, "");
    const parts: string[] = [];
    for (const p of line.split("/")) {
      if (p === "" || p === ".") continue;
      if (p === "..") parts.pop();
      else parts.push(p);
    }
    if (parts.length === 0) continue;
    rules.push({ re: globToRegex(parts.join("/")), negate });
  }
  return rules;
}

/** Whether a context path is excluded (the last matching rule wins). */
export function isIgnored(path: string, rules: IgnoreRule[]): boolean {
  let ignored = false;
  for (const r of rules) if (r.re.test(path)) ignored = !r.negate;
  return ignored;
}

/** Packs a build context as a tar stream. `extra` files are added at the root. */
export function contextTar(dir: string, extra: Record<string, string> = {}): PassThrough {
  let rules: IgnoreRule[] = [];
  try {
    rules = parseDockerignore(readFileSync(join(dir, ".dockerignore"), "utf8"));
  } catch {
    // No .dockerignore.
  }
  const tar = pack();
  const out = new PassThrough();
  tar.pipe(out);
  const anyNegated = rules.some((r) => r.negate);
  const keep = (rel: string) => !isIgnored(rel, rules) || rel === "Dockerfile" || rel === ".dockerignore";
  const walk = (abs: string, rel: string) => {
    for (const name of readdirSync(abs).sort()) {
      const childAbs = join(abs, name);
      const childRel = rel === "" ? name : `${rel}/${name}`;
      const st = lstatSync(childAbs);
      const header = { name: childRel, mode: st.mode & 0o7777, mtime: st.mtime, uid: 0, gid: 0 };
      if (st.isDirectory()) {
        if (keep(childRel)) tar.entry({ ...header, type: "directory" });
        // A negated rule may bring back something below an excluded directory.
        if (keep(childRel) || anyNegated) walk(childAbs, childRel);
      } else if (!keep(childRel)) {
      } else if (st.isSymbolicLink()) {
        tar.entry({ ...header, type: "symlink", linkname: readlinkSync(childAbs) });
      } else if (st.isFile()) {
        tar.entry({ ...header, size: st.size }, readFileSync(childAbs));
      }
    }
  };
  try {
    walk(dir, "");
    for (const [name, content] of Object.entries(extra)) tar.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
    tar.finalize();
  } catch (e) {
    out.destroy(e as Error);
  }
  return out;
}

/** Builds one service's image; returns its ID. */
export async function buildService(
  session: Session,
  project: Project,
  name: string,
  options: { noCache?: boolean; pull?: boolean; quiet?: boolean; args?: Record<string, string> } = {},
): Promise<string | undefined> {
  const s = project.services[name] as Service;
  const b = s.build;
  if (!b) return undefined;
  if (/^(https?:\/\/|git@|git:\/\/)/.test(b.context))
    throw new ComposeError(`service "${name}": remote build contexts are not supported by berth compose`);
  const image = serviceImage(project, name, s);
  const extra: Record<string, string> = {};
  let dockerfile = b.dockerfile ?? "Dockerfile";
  if (b.dockerfile_inline !== undefined) {
    dockerfile = ".berth.dockerfile.inline";
    extra[dockerfile] = b.dockerfile_inline;
  } else {
    const abs = isAbsolute(dockerfile) ? dockerfile : resolve(b.context, dockerfile);
    const rel = relative(b.context, abs);
    if (rel.startsWith("..") || isAbsolute(rel)) {
      dockerfile = ".berth.dockerfile";
      extra[dockerfile] = readFileSync(abs, "utf8");
    } else dockerfile = rel.split(sep).join("/");
  }
  const args: Record<string, string> = {};
  for (const [k, v] of Object.entries(b.args ?? {})) {
    const value = v ?? project.environment[k];
    if (value !== undefined) args[k] = value;
  }
  Object.assign(args, options.args);
  const labels = { ...(b.labels ?? {}), [PROJECT_LABEL]: project.name, [SERVICE_LABEL]: name, [VERSION_LABEL]: COMPOSE_VERSION };
  const query: Record<string, QueryValue> = {
    t: [image, ...(b.tags ?? [])],
    dockerfile,
    buildargs: JSON.stringify(args),
    labels: JSON.stringify(labels),
    rm: "1",
    forcerm: "1",
  };
  if (b.target) query.target = b.target;
  if (options.noCache || b.no_cache) query.nocache = "1";
  if (options.pull || b.pull) query.pull = "1";
  if (b.network) query.networkmode = b.network;
  if (b.shm_size !== undefined) query.shmsize = String(b.shm_size);
  if (b.extra_hosts?.length) query.extrahosts = b.extra_hosts.join(",");
  if (b.cache_from?.length) query.cachefrom = JSON.stringify(b.cache_from);
  if (s.platform) query.platform = s.platform;
  session.progress("Service", name, "Building");
  const opts: { signal?: AbortSignal } = {};
  if (session.signal) opts.signal = session.signal;
  const stream = await session.client.imageBuild(contextTar(b.context, extra), query, opts);
  let id: string | undefined;
  for await (const m of stream) {
    if (m.error || m.errorDetail) throw new ComposeError(`failed to build service "${name}": ${m.errorDetail?.message ?? m.error}`);
    if (typeof m.stream === "string" && !options.quiet) session.info(m.stream);
    const aux = (m as { aux?: { ID?: string } }).aux;
    if (aux?.ID) id = aux.ID;
  }
  session.progress("Service", name, "Built");
  return id;
}
