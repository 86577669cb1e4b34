import { invalidArgument } from "../base/mod.ts";
import type { ContainerConfig } from "../oci/mod.ts";

/** Instructions `import -c` and `commit -c` accept, as dockerd does. */
const ALLOWED = new Set([
  "CMD",
  "ENTRYPOINT",
  "ENV",
  "EXPOSE",
  "LABEL",
  "ONBUILD",
  "STOPSIGNAL",
  "USER",
  "VOLUME",
  "WORKDIR",
  "HEALTHCHECK",
  "SHELL",
]);

function jsonOrShell(rest: string, shell: string[]): string[] {
  const t = rest.trim();
  if (t.startsWith("[")) {
    try {
      const a = JSON.parse(t) as unknown;
      if (Array.isArray(a) && a.every((x) => typeof x === "string")) return a as string[];
    } catch {
      // not JSON: shell form, as Docker falls back
    }
  }
  return [...shell, t];
}

function keyValues(rest: string): [string, string][] {
  const out: [string, string][] = [];
  const t = rest.trim();
  if (!t.includes("=") || (/^\S+\s/.test(t) && !/^\S+=/.test(t))) {
    const m = /^(\S+)\s+(.*)$/s.exec(t);
    if (!m) throw invalidArgument(`Invalid instruction: ${rest}`);
    return [[m[1] ?? "", m[2] ?? ""]];
  }
  const re = /([^\s=]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  for (const m of t.matchAll(re)) {
    let v = m[2] ?? "";
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, "$1");
    else if (v.startsWith("'")) v = v.slice(1, -1);
    out.push([m[1] ?? "", v]);
  }
  return out;
}

/**
 * Applies Dockerfile-style changes (`CMD ["sh"]`, `ENV A=b`, ...) to an image config, for
 * `import --change` and `commit --change`.
 */
export function applyChanges(config: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const c: ContainerConfig = { ...config };
  for (const raw of changes
    .flatMap((x) => x.split("\n"))
    .map((x) => x.trim())
    .filter(Boolean)) {
    const m = /^(\S+)\s*(.*)$/s.exec(raw);
    const inst = (m?.[1] ?? "").toUpperCase();
    const rest = m?.[2] ?? "";
    if (!ALLOWED.has(inst)) throw invalidArgument(`${inst} is not a valid change command`);
    const shell = c.Shell ?? ["/bin/sh", "-c"];
    switch (inst) {
      case "CMD":
        c.Cmd = jsonOrShell(rest, shell);
        break;
      case "ENTRYPOINT":
        c.Entrypoint = jsonOrShell(rest, shell);
        break;
      case "ENV": {
        const env = [...(c.Env ?? [])];
        for (const [k, v] of keyValues(rest)) {
          const i = env.findIndex((e) => e.startsWith(`${k}=`));
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        c.Env = env;
        break;
      }
      case "LABEL":
        c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(keyValues(rest)) };
        break;
      case "EXPOSE": {
        const ports = { ...(c.ExposedPorts ?? {}) };
        for (const p of rest.split(/\s+/).filter(Boolean)) ports[p.includes("/") ? p : `${p}/tcp`] = {};
        c.ExposedPorts = ports;
        break;
      }
      case "VOLUME": {
        const vols = { ...(c.Volumes ?? {}) };
        for (const v of jsonOrShell(rest, [])
          .flatMap((x) => x.split(/\s+/))
          .filter(Boolean))
          vols[v] = {};
        c.Volumes = vols;
        break;
      }
      case "USER":
        c.User = rest.trim();
        break;
      case "WORKDIR":
        c.WorkingDir = rest.trim();
        break;
      case "STOPSIGNAL":
        c.StopSignal = rest.trim();
        break;
      case "ONBUILD":
        c.OnBuild = [...(c.OnBuild ?? []), rest.trim()];
        break;
      case "SHELL":
        c.Shell = jsonOrShell(rest, []);
        break;
      case "HEALTHCHECK":
        if (/^NONE$/i.test(rest.trim())) c.Healthcheck = { Test: ["NONE"] };
        else {
          const cmd = /CMD\s+(.*)$/is.exec(rest)?.[1] ?? "";
          const t = cmd.trim().startsWith("[") ? ["CMD", ...jsonOrShell(cmd, [])] : ["CMD-SHELL", cmd.trim()];
          c.Healthcheck = { Test: t };
        }
        break;
    }
  }
  return c;
}
