/**
 * What metadata instructions do to an image config, and the text Docker records for them in
 * the history (`/bin/sh -c #(nop)  ENV A=b`). Shared by the builder and by `import`/`commit`
 * `--change` (see `applyChanges`). Variable expansion of instruction arguments lives here too.
 */
import { posix } from "node:path";
import { invalidArgument } from "../base/mod.ts";
import type { ContainerConfig, ImageConfig } from "../oci/mod.ts";
import type { HealthConfig, Instruction } from "./instructions.ts";
import { type EnvLookup, ShellLex } from "./lex.ts";

/** The default shell of RUN, CMD and ENTRYPOINT in shell form. */
export const DEFAULT_SHELL = ["/bin/sh", "-c"];

/** Sets or replaces `KEY=value` in an env list (keys are case-sensitive). */
export function setEnv(env: readonly string[], key: string, value: string): string[] {
  const out = [...env];
  const i = out.findIndex((e) => e === key || e.startsWith(`${key}=`));
  if (i >= 0) out[i] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

/** The value of `key` in an env list. */
export function getEnv(env: readonly string[] | null | undefined, key: string): string | undefined {
  for (const e of env ?? []) {
    const eq = e.indexOf("=");
    if ((eq < 0 ? e : e.slice(0, eq)) === key) return eq < 0 ? "" : e.slice(eq + 1);
  }
  return undefined;
}

/** Go's `%q` of a string slice, as Docker writes CMD and ENTRYPOINT in the history. */
export function goQuoteList(a: readonly string[]): string {
  return `[${a.map((s) => JSON.stringify(s)).join(" ")}]`;
}

/** Expands the variables of an instruction's arguments (those Docker expands). */
export function expandInstruction(inst: Instruction, env: EnvLookup, esc: string): Instruction {
  const lex = new ShellLex(esc);
  const w = (s: string) => lex.processWord(s, env);
  const opt = (s: string | undefined) => (s === undefined ? undefined : w(s));
  switch (inst.kind) {
    case "env":
    case "label":
      return { ...inst, pairs: inst.pairs.map(([k, v]) => [w(k), w(v)]) };
    case "arg":
      return { ...inst, args: inst.args.map((a) => ({ key: w(a.key), value: a.value === undefined ? undefined : w(a.value) })) };
    case "workdir":
      return { ...inst, path: w(inst.path) };
    case "user":
      return { ...inst, user: w(inst.user) };
    case "stopsignal":
      return { ...inst, signal: w(inst.signal) };
    case "expose":
      return { ...inst, ports: inst.ports.flatMap((p) => lex.processWords(p, env)) };
    case "volume":
      return { ...inst, volumes: inst.volumes.map(w).filter((v) => v !== "") };
    case "copy":
    case "add":
      return {
        ...inst,
        sources: inst.sources.map(w),
        dest: w(inst.dest),
        from: opt(inst.from),
        chown: opt(inst.chown),
        chmod: opt(inst.chmod),
        checksum: opt(inst.checksum),
        inline: inst.inline.map((s) => ({ ...s, path: w(s.path) })),
      };
    case "run":
      return { ...inst, mounts: inst.mounts.map(w), network: opt(inst.network), security: opt(inst.security) };
    default:
      return inst;
  }
}

/** Docker's port list of EXPOSE: `80`, `80/udp`, `8000-8002/tcp`. */
export function exposedPorts(ports: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of ports) {
    const slash = raw.indexOf("/");
    const range = slash < 0 ? raw : raw.slice(0, slash);
    const proto = (slash < 0 ? "tcp" : raw.slice(slash + 1)).toLowerCase();
    if (!["tcp", "udp", "sctp"].includes(proto)) throw invalidArgument(`Invalid proto: ${proto}`);
    const m = /^(\d+)(?:-(\d+))?$/.exec(range);
    if (!m) throw invalidArgument(`Invalid containerPort: ${range}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 1 || hi > 65535 || hi < lo) throw invalidArgument(`Invalid containerPort: ${range}`);
    for (let p = lo; p <= hi; p++) out.push(`${p}/${proto}`);
  }
  return out;
}

function goDuration(ns: number | undefined): string {
  if (!ns) return "0s";
  const s = ns / 1e9;
  if (s >= 3600) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m${s % 60}s`;
  if (s >= 60) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${s}s`;
}

/** Per-stage state the metadata instructions consult. */
export interface MetaState {
  /** CMD was set in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean;
}

/**
 * Applies one metadata instruction (already expanded) to an image config in place. Returns the
 * history text Docker records (without the `/bin/sh -c #(nop) ` prefix), or undefined for
 * instructions that are not metadata.
 */
export function applyMeta(img: ImageConfig, inst: Instruction, meta: MetaState): string | undefined {
  const c: ContainerConfig = img.config ?? {};
  img.config = c;
  const shell = c.Shell?.length ? c.Shell : DEFAULT_SHELL;
  switch (inst.kind) {
    case "env": {
      let env = c.Env ?? [];
      for (const [k, v] of inst.pairs) env = setEnv(env, k, v);
      c.Env = env;
      return `ENV ${inst.pairs.map(([k, v]) => `${k}=${v}`).join(" ")}`;
    }
    case "label": {
      const labels = { ...(c.Labels ?? {}) };
      for (const [k, v] of inst.pairs) labels[k] = v;
      c.Labels = labels;
      return `LABEL ${inst.pairs.map(([k, v]) => `${k}=${v}`).join(" ")}`;
    }
    case "maintainer":
      img.author = inst.name;
      return `MAINTAINER ${inst.name}`;
    case "user":
      c.User = inst.user;
      return `USER ${inst.user}`;
    case "workdir": {
      const base = c.WorkingDir || "/";
      c.WorkingDir = posix.resolve(base, inst.path);
      return `WORKDIR ${c.WorkingDir}`;
    }
    case "stopsignal":
      if (!/^(SIG)?[A-Z0-9+-]+$/i.test(inst.signal)) throw invalidArgument(`Invalid signal: ${inst.signal}`);
      c.StopSignal = inst.signal;
      return `STOPSIGNAL ${inst.signal}`;
    case "expose": {
      const ports = exposedPorts(inst.ports);
      const map = { ...(c.ExposedPorts ?? {}) };
      for (const p of ports) map[p] = {};
      c.ExposedPorts = map;
      return `EXPOSE ${[...new Set(ports)].sort().join(" ")}`;
    }
    case "volume": {
      const vols = { ...(c.Volumes ?? {}) };
      for (const v of inst.volumes) vols[v] = {};
      c.Volumes = vols;
      return `VOLUME [${inst.volumes.join(" ")}]`;
    }
    case "shell":
      c.Shell = [...inst.shell];
      return `SHELL [${inst.shell.join(" ")}]`;
    case "cmd":
      c.Cmd = inst.prependShell ? [...shell, inst.cmd.join(" ")] : [...inst.cmd];
      meta.cmdSet = true;
      return `CMD ${goQuoteList(c.Cmd)}`;
    case "entrypoint":
      c.Entrypoint = inst.prependShell ? [...shell, inst.cmd.join(" ")] : [...inst.cmd];
      // An ENTRYPOINT resets a CMD inherited from the base image, not one set in this stage.
      if (!meta.cmdSet) c.Cmd = null;
      return `ENTRYPOINT ${goQuoteList(c.Entrypoint)}`;
    case "healthcheck": {
      const h: HealthConfig = inst.health;
      c.Healthcheck = { ...h } as ContainerConfig["Healthcheck"];
      if (h.Test[0] === "NONE") return `HEALTHCHECK &{["NONE"] "0s" "0s" "0s" "0s" '\\x00'}`;
      const retries = (h.Retries ?? 0).toString(16).padStart(2, "0");
      return `HEALTHCHECK &{${goQuoteList(h.Test)} "${goDuration(h.Interval)}" "${goDuration(h.Timeout)}" "${goDuration(h.StartPeriod)}" "${goDuration(h.StartInterval)}" '\\x${retries}'}`;
    }
    case "onbuild":
      c.OnBuild = [...(c.OnBuild ?? []), inst.expression];
      return `ONBUILD ${inst.expression}`;
    case "arg":
      return `ARG ${inst.args.map((a) => (a.value === undefined ? a.key : `${a.key}=${a.value}`)).join(" ")}`;
    default:
      return undefined;
  }
}
