/**
 * Legacy container links (`--link name[:alias]`), as dockerd keeps them.
 *
 * On the default bridge a link is a record of the linking container, stored in
 * `HostConfig.Links` as `/<target>:/<me>/<alias>`: at start the target must be running, and
 * the linking container gets an `/etc/hosts` line (`IP alias id12 target`) and environment
 * variables (`ALIAS_NAME`, `ALIAS_PORT_80_TCP_ADDR`, ..., `ALIAS_ENV_X` for the target's own
 * variables). `rm -l <me>/<alias>` removes it.
 *
 * On a user-defined network a link is only a name: dockerd moves it to the endpoint's `Links`
 * (`target:alias`, `HostConfig.Links` is null) and its DNS server answers the alias with the
 * target's address, for the linking container only and only while the target is on that
 * network. No hosts line, no variables, and a missing target is not an error.
 */
import { parsePortKey } from "./ports.ts";

/** One link: the container linked to and the name the linking container knows it by. */
export interface Link {
  target: string;
  alias: string;
}

/**
 * Parses any form a link comes in: `name`, `name:alias` (the CLI), `/name:/alias` (berth's
 * endpoint records) and `/name:/me/alias` (dockerd's `HostConfig.Links`). The alias is the
 * last path element; without one it is the target's name.
 */
export function parseLink(s: string): Link {
  const i = s.indexOf(":");
  const target = (i < 0 ? s : s.slice(0, i)).replace(/^\/+/, "");
  const aliasPath = i < 0 ? "" : s.slice(i + 1);
  const alias = aliasPath.split("/").filter(Boolean).pop() ?? "";
  return { target, alias: alias || target };
}

/** dockerd's stored form of a link on the default bridge: `/target:/me/alias`. */
export function legacyLinkName(link: Link, me: string): string {
  return `/${link.target}:/${me.replace(/^\/+/, "")}/${link.alias}`;
}

/** What the variables of a link need to know about its target. */
export interface LinkTarget {
  /** The target's address on the default bridge. */
  ip: string;
  /** `Config.ExposedPorts` keys: `80/tcp`, `53/udp`, `8000-8002/tcp`. */
  exposedPorts: readonly string[];
  /** The target's `Config.Env`. */
  env: readonly string[];
}

/** The variable prefix of an alias: upper case, `-` as `_` (dockerd keeps other characters). */
function prefixOf(alias: string): string {
  return alias.toUpperCase().replaceAll("-", "_");
}

/**
 * The environment variables a legacy link gives the linking container (`me` is its name),
 * in dockerd's names: `<ALIAS>_NAME=/me/alias`; `<ALIAS>_PORT` for the lowest exposed port
 * (tcp before udp at the same number); per port `<ALIAS>_PORT_<n>_<PROTO>` with `_ADDR`,
 * `_PORT` and `_PROTO`; for each run of consecutive ports of one protocol, `_START`, `_END`,
 * `_PORT_START` and `_PORT_END` on its first port; and `<ALIAS>_ENV_<k>` for each of the
 * target's variables but `HOME` and `PATH`.
 */
export function linkEnv(link: Link, me: string, target: LinkTarget): string[] {
  const p = prefixOf(link.alias);
  const out = [`${p}_NAME=/${me.replace(/^\/+/, "")}/${link.alias}`];
  const ports: { port: number; proto: string }[] = [];
  for (const key of target.exposedPorts) {
    let k: ReturnType<typeof parsePortKey>;
    try {
      k = parsePortKey(key);
    } catch {
      continue;
    }
    for (let n = k.start; n <= k.end; n++) ports.push({ port: n, proto: k.proto });
  }
  const order = (proto: string) => (proto === "tcp" ? 0 : proto === "udp" ? 1 : 2);
  ports.sort((a, b) => a.port - b.port || order(a.proto) - order(b.proto));
  const unique = ports.filter((x, i) => i === 0 || x.port !== ports[i - 1]?.port || x.proto !== ports[i - 1]?.proto);
  const url = (x: { port: number; proto: string }) => `${x.proto}://${target.ip}:${x.port}`;
  const first = unique[0];
  if (first) out.push(`${p}_PORT=${url(first)}`);
  for (const x of unique) {
    const v = `${p}_PORT_${x.port}_${x.proto.toUpperCase()}`;
    out.push(`${v}=${url(x)}`, `${v}_ADDR=${target.ip}`, `${v}_PORT=${x.port}`, `${v}_PROTO=${x.proto}`);
  }
  for (const proto of new Set(unique.map((x) => x.proto))) {
    const nums = unique.filter((x) => x.proto === proto).map((x) => x.port);
    for (let i = 0; i < nums.length; ) {
      let j = i;
      while (j + 1 < nums.length && nums[j + 1] === (nums[j] ?? 0) + 1) j++;
      const start = nums[i] ?? 0;
      const end = nums[j] ?? 0;
      if (j > i) {
        const v = `${p}_PORT_${start}_${proto.toUpperCase()}`;
        out.push(
          `${v}_START=${proto}://${target.ip}:${start}`,
          `${v}_PORT_START=${start}`,
          `${v}_END=${proto}://${target.ip}:${end}`,
          `${v}_PORT_END=${end}`,
        );
      }
      i = j + 1;
    }
  }
  for (const e of target.env) {
    const eq = e.indexOf("=");
    if (eq <= 0) continue;
    const k = e.slice(0, eq);
    if (k === "HOME" || k === "PATH") continue;
    out.push(`${p}_ENV_${k}=${e.slice(eq + 1)}`);
  }
  return out;
}

/** The `/etc/hosts` line of a legacy link: `IP alias id12 target` (each name once). */
export function linkHostsLine(link: Link, ip: string, targetId: string, targetName: string): string {
  const names = [...new Set([link.alias, targetId.slice(0, 12), targetName.replace(/^\/+/, "")])].filter(Boolean);
  return `${ip}\t${names.join(" ")}`;
}

/**
 * Splits the `<me>/<alias>` of `rm -l` (a leading `/` allowed): undefined when there is no
 * slash (the container's own name, which `rm -l` refuses), or more than one.
 */
export function parseLinkPath(path: string): { me: string; alias: string } | "own" | undefined {
  const parts = path.replace(/^\/+/, "").split("/");
  if (parts.length === 1) return "own";
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { me: parts[0], alias: parts[1] };
}
