/** ps / container ls: docker's container table, filters and templates. */
import type { ContainerSummary, PortSummary } from "../client/mod.ts";
import { familiarString, parseReference } from "../oci/mod.ts";
import type { Cli } from "./cli.ts";
import type { Command } from "./command.ts";
import { ellipsis, goQuote } from "./display.ts";
import { formatList } from "./listing.ts";
import { filterFlag, formatFlag, parseFilters, shortId } from "./opts.ts";
import { goTimeString, humanSizeWithPrecision, timeAgo } from "./units.ts";

const DEFAULT_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/** Column titles of container listings. */
export const CONTAINER_HEADERS: Record<string, string> = {
  ID: "CONTAINER ID",
  Names: "NAMES",
  Image: "IMAGE",
  Command: "COMMAND",
  CreatedAt: "CREATED AT",
  RunningFor: "CREATED",
  Ports: "PORTS",
  State: "STATE",
  Status: "STATUS",
  Size: "SIZE",
  Labels: "LABELS",
  Mounts: "MOUNTS",
  LocalVolumes: "LOCAL VOLUMES",
  Networks: "NETWORKS",
  Platform: "PLATFORM",
};

function joinHostPort(ip: string, port: string): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** docker's DisplayablePorts: ranges grouped, host mappings as `ip:port->port/proto`. */
export function displayablePorts(input: PortSummary[]): string {
  const ports = [...input].sort((a, b) => {
    if (a.PrivatePort !== b.PrivatePort) return a.PrivatePort - b.PrivatePort;
    if ((a.IP ?? "") !== (b.IP ?? "")) return (a.IP ?? "") < (b.IP ?? "") ? -1 : 1;
    if ((a.PublicPort ?? 0) !== (b.PublicPort ?? 0)) return (a.PublicPort ?? 0) - (b.PublicPort ?? 0);
    return a.Type < b.Type ? -1 : a.Type > b.Type ? 1 : 0;
  });
  const groups = new Map<string, { first: number; last: number }>();
  const order: string[] = [];
  const result: string[] = [];
  const hostMappings: string[] = [];
  const formGroup = (key: string, start: number, last: number) => {
    const parts = key.split("/");
    let type = parts[0] as string;
    let ip = "";
    if (parts.length > 1) {
      ip = parts.slice(0, -1).join("/");
      type = parts[parts.length - 1] as string;
    }
    let group = String(start);
    if (start !== last) group = `${group}-${last}`;
    if (ip !== "") group = `${joinHostPort(ip, group)}->${group}`;
    return `${group}/${type}`;
  };
  for (const p of ports) {
    const current = p.PrivatePort;
    let key = p.Type;
    if (p.IP) {
      if ((p.PublicPort ?? 0) !== current) {
        hostMappings.push(`${joinHostPort(p.IP, String(p.PublicPort ?? 0))}->${p.PrivatePort}/${p.Type}`);
        continue;
      }
      key = `${p.IP}/${p.Type}`;
    }
    const g = groups.get(key);
    if (!g) {
      groups.set(key, { first: current, last: current });
      order.push(key);
      continue;
    }
    if (current === g.last + 1) {
      g.last = current;
      continue;
    }
    result.push(formGroup(key, g.first, g.last));
    groups.set(key, { first: current, last: current });
  }
  for (const k of order) {
    const g = groups.get(k) as { first: number; last: number };
    result.push(formGroup(k, g.first, g.last));
  }
  result.push(...hostMappings);
  return result.join(", ");
}

/** One row of `berth ps`: the fields docker's container formatter offers to templates. */
export class ContainerRow {
  readonly #c: ContainerSummary;
  readonly #trunc: boolean;
  constructor(c: ContainerSummary, trunc: boolean) {
    this.#c = c;
    this.#trunc = trunc;
  }
  get ID(): string {
    return this.#trunc ? shortId(this.#c.Id) : this.#c.Id;
  }
  get Names(): string {
    let names = (this.#c.Names ?? []).map((n) => n.slice(1));
    if (this.#trunc) {
      const plain = names.find((n) => !n.includes("/"));
      if (plain !== undefined) names = [plain];
    }
    return names.join(",");
  }
  get Image(): string {
    const img = this.#c.Image;
    if (!img) return "<no image>";
    if (this.#trunc) {
      const t = shortId(this.#c.ImageID ?? "");
      if (t === shortId(img)) return t;
      try {
        const r = parseReference(img);
        return r.tag !== undefined
          ? familiarString({ domain: r.domain, path: r.path, tag: r.tag })
          : familiarString({ domain: r.domain, path: r.path });
      } catch {
        return img;
      }
    }
    return img;
  }
  get Command(): string {
    const cmd = this.#trunc ? ellipsis(this.#c.Command ?? "", 20) : (this.#c.Command ?? "");
    return goQuote(cmd);
  }
  get CreatedAt(): string {
    return goTimeString(new Date(this.#c.Created * 1000));
  }
  get RunningFor(): string {
    return timeAgo(this.#c.Created);
  }
  get Ports(): string {
    return displayablePorts(this.#c.Ports ?? []);
  }
  get State(): string {
    return this.#c.State;
  }
  get Status(): string {
    return this.#c.Status;
  }
  get Size(): string {
    const srw = humanSizeWithPrecision(this.#c.SizeRw ?? 0, 3);
    const sv = humanSizeWithPrecision(this.#c.SizeRootFs ?? 0, 3);
    return (this.#c.SizeRootFs ?? 0) > 0 ? `${srw} (virtual ${sv})` : srw;
  }
  get Labels(): string {
    if (!this.#c.Labels) return "";
    return Object.entries(this.#c.Labels)
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(",");
  }
  /** `{{.Label "key"}}` */
  Label(name: string): string {
    return this.#c.Labels?.[name] ?? "";
  }
  get Mounts(): string {
    return (this.#c.Mounts ?? [])
      .map((m) => {
        const name = m.Name ? m.Name : m.Source;
        return this.#trunc ? ellipsis(name, 15) : name;
      })
      .join(",");
  }
  get LocalVolumes(): string {
    return String((this.#c.Mounts ?? []).filter((m) => m.Driver === "local").length);
  }
  get Networks(): string {
    return Object.keys(this.#c.NetworkSettings?.Networks ?? {}).join(",");
  }
  get Platform(): null {
    return null;
  }
}

/** docker's NewContainerFormat. */
export function containerFormat(source: string, quiet: boolean, size: boolean): string {
  if (source === "table" || source === "") {
    if (quiet) return "{{.ID}}";
    return size ? `${DEFAULT_TABLE}\t{{.Size}}` : DEFAULT_TABLE;
  }
  if (source === "raw") {
    if (quiet) return "container_id: {{.ID}}";
    let f =
      "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n";
    if (size) f += "size: {{.Size}}\\n";
    return f;
  }
  return quiet ? "{{.ID}}" : source;
}

/** Options of `berth ps`. */
export interface PsOptions {
  quiet: boolean;
  size: boolean;
  all: boolean;
  noTrunc: boolean;
  latest: boolean;
  last: number;
  format: string;
  filters: string[];
}

/** Lists containers as `docker ps` does. */
export async function runPs(cli: Cli, opts: PsOptions): Promise<void> {
  let format = opts.format;
  if (!format) {
    const fromConfig = cli.configFile().data.psFormat;
    format = fromConfig && !opts.quiet ? fromConfig : "table";
  }
  let limit = opts.last;
  if (opts.latest && limit === -1) limit = 1;
  // `.Size` in a custom template needs the sizes, as docker detects by rendering the template.
  const size = opts.size || (format !== "table" && /\.Size\b/.test(format));
  const list = await cli.client.containerList({ all: opts.all, limit, size, filters: parseFilters(opts.filters) });
  const rows = list.map((c) => new ContainerRow(c, !opts.noTrunc));
  await cli.write(formatList(containerFormat(format, opts.quiet, opts.size), rows, CONTAINER_HEADERS));
}

const psFlags: Command["flags"] = [
  { long: "all", short: "a", kind: "bool", help: "Show all containers (default shows just running)" },
  filterFlag(),
  formatFlag(),
  { long: "last", short: "n", kind: "int", help: "Show n last created containers (includes all states)", defaultText: "-1" },
  { long: "latest", short: "l", kind: "bool", help: "Show the latest created container (includes all states)" },
  { long: "no-trunc", kind: "bool", help: "Don't truncate output" },
  { long: "quiet", short: "q", kind: "bool", help: "Only display container IDs" },
  { long: "size", short: "s", kind: "bool", help: "Display total file sizes" },
];

export const psCommand: Command = {
  name: "ps",
  usage: "[OPTIONS]",
  short: "List containers",
  aliasPaths: ["container ls", "container list", "container ps", "ps"],
  args: "none",
  flags: psFlags,
  async run(cli, { flags }) {
    await runPs(cli, {
      quiet: flags.bool("quiet"),
      size: flags.bool("size"),
      all: flags.bool("all"),
      noTrunc: flags.bool("no-trunc"),
      latest: flags.bool("latest"),
      last: flags.number("last", -1),
      format: flags.string("format"),
      filters: flags.list("filter"),
    });
    return 0;
  },
};

export const containerLsCommand: Command = { ...psCommand, name: "ls", aliases: ["list", "ps"], usage: "[OPTIONS]" };
