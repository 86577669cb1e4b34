/** `berth volume` commands. */
import type { Volume } from "../client/mod.ts";
import { describeError, StatusError } from "./cli.ts";
import type { Command } from "./command.ts";
import { inspectAndPrint } from "./inspect.ts";
import { formatList } from "./listing.ts";
import { filterFlag, formatFlag, INSPECT_FORMAT_HELP, kvToMap, parseFilters } from "./opts.ts";
import { confirm } from "./prompt.ts";
import { humanSize } from "./units.ts";

/** One row of `berth volume ls`. */
class VolumeRow {
  readonly #v: Volume;
  constructor(v: Volume) {
    this.#v = v;
  }
  get Name(): string {
    return this.#v.Name;
  }
  get Driver(): string {
    return this.#v.Driver;
  }
  get Scope(): string {
    return this.#v.Scope;
  }
  get Mountpoint(): string {
    return this.#v.Mountpoint;
  }
  get Labels(): string {
    return Object.entries(this.#v.Labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
  }
  Label(name: string): string {
    return this.#v.Labels?.[name] ?? "";
  }
  get Links(): string {
    const n = this.#v.UsageData?.RefCount;
    return n === undefined || n < 0 ? "N/A" : String(n);
  }
  get Size(): string {
    const s = this.#v.UsageData?.Size;
    return s === undefined || s < 0 ? "N/A" : humanSize(s);
  }
  get Group(): string {
    return "N/A";
  }
  get Availability(): string {
    return "N/A";
  }
  get Status(): string {
    return "N/A";
  }
}

/** Go struct field order of a volume: docker's volume inspect prints the typed struct, not the daemon's text. */
const VOLUME_FIELDS = ["ClusterVolume", "CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope", "Status", "UsageData"];
const OMIT_EMPTY = new Set(["ClusterVolume", "Status", "UsageData"]);

function goVolumeJson(r: { raw: string; value: unknown }): { raw: string; value: unknown } {
  const v = (r.value ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of VOLUME_FIELDS) {
    const x = v[k];
    if (OMIT_EMPTY.has(k) && (x === undefined || x === null || (typeof x === "object" && Object.keys(x as object).length === 0))) continue;
    out[k] = x ?? null;
  }
  const raw = JSON.stringify(out).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
  return { raw, value: r.value };
}

const VOLUME_HEADERS = {
  Name: "VOLUME NAME",
  Driver: "DRIVER",
  Scope: "SCOPE",
  Mountpoint: "MOUNTPOINT",
  Labels: "LABELS",
  Links: "LINKS",
  Size: "SIZE",
  Group: "GROUP",
  Availability: "AVAILABILITY",
  Status: "STATUS",
};

const create: Command = {
  name: "create",
  usage: "[OPTIONS] [VOLUME]",
  short: "Create a volume",
  args: { max: 1 },
  flags: [
    { long: "driver", short: "d", kind: "string", help: "Specify volume driver name", defaultText: '"local"' },
    { long: "label", kind: "list", help: "Set metadata for a volume" },
    { long: "name", kind: "string", help: "Specify volume name", hidden: true },
    { long: "opt", short: "o", kind: "list", typeName: "map", help: "Set driver specific options", defaultText: "map[]" },
  ],
  async run(cli, { flags, args }) {
    const name = args[0] ?? flags.string("name");
    if (args[0] && flags.string("name") && args[0] !== flags.string("name")) {
      throw new StatusError(1, `conflicting options: cannot specify a volume-name through both --name and as a positional arg`);
    }
    const v = await cli.client.volumeCreate({
      Name: name,
      Driver: flags.string("driver", "local") || "local",
      DriverOpts: kvToMap(flags.list("opt")),
      Labels: kvToMap(flags.list("label")),
    });
    await cli.println(v.Name);
    return 0;
  },
};

const ls: Command = {
  name: "ls",
  aliases: ["list"],
  usage: "[OPTIONS]",
  short: "List volumes",
  aliasPaths: ["volume ls", "volume list"],
  args: "none",
  flags: [
    { long: "cluster", kind: "bool", help: "Display only cluster volumes, and use cluster volume list formatting" },
    filterFlag('Provide filter values (e.g. "dangling=true")'),
    formatFlag(),
    { long: "quiet", short: "q", kind: "bool", help: "Only display volume names" },
  ],
  async run(cli, { flags }) {
    const r = await cli.client.volumeList({ filters: parseFilters(flags.list("filter")) });
    const vols = [...(r.Volumes ?? [])].sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
    let format = flags.string("format") || cli.configFile().data.volumesFormat?.toString() || "table";
    if (format === "table") format = flags.bool("quiet") ? "{{.Name}}" : "table {{.Driver}}\t{{.Name}}";
    else if (flags.bool("quiet")) format = "{{.Name}}";
    await cli.write(
      formatList(
        format,
        vols.map((v) => new VolumeRow(v)),
        VOLUME_HEADERS,
      ),
    );
    for (const w of r.Warnings ?? []) await cli.eprintln(w);
    return 0;
  },
};

const rm: Command = {
  name: "rm",
  aliases: ["remove"],
  usage: "[OPTIONS] VOLUME [VOLUME...]",
  short: "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
  aliasPaths: ["volume rm", "volume remove"],
  args: { min: 1 },
  flags: [{ long: "force", short: "f", kind: "bool", help: "Force the removal of one or more volumes" }],
  async run(cli, { flags, args }) {
    const errors: string[] = [];
    for (const v of args) {
      try {
        await cli.client.volumeRemove(v, flags.bool("force"));
        await cli.println(v);
      } catch (e) {
        errors.push(describeError(e));
      }
    }
    if (errors.length) throw new StatusError(1, errors.join("\n"));
    return 0;
  },
};

const inspect: Command = {
  name: "inspect",
  usage: "[OPTIONS] VOLUME [VOLUME...]",
  short: "Display detailed information on one or more volumes",
  args: { min: 1 },
  flags: [{ long: "format", short: "f", kind: "string", help: INSPECT_FORMAT_HELP }],
  async run(cli, { flags, args }) {
    await inspectAndPrint(cli, args, flags.string("format"), async (ref) => goVolumeJson(await cli.client.inspectRaw("volume", ref)));
    return 0;
  },
};

const prune: Command = {
  name: "prune",
  usage: "[OPTIONS]",
  short: "Remove unused local volumes",
  args: "none",
  flags: [
    { long: "all", short: "a", kind: "bool", help: "Remove all unused volumes, not just anonymous ones" },
    filterFlag('Provide filter values (e.g. "label=<label>")', null),
    { long: "force", short: "f", kind: "bool", help: "Do not prompt for confirmation" },
  ],
  async run(cli, { flags }) {
    const filters = parseFilters(flags.list("filter"));
    if (flags.bool("all")) filters.all = { true: true };
    const warning = flags.bool("all")
      ? "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?"
      : "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?";
    if (!flags.bool("force") && !(await confirm(cli, warning))) throw new StatusError(1, "");
    const r = await cli.client.volumesPrune(filters);
    let reclaimed = 0;
    if ((r.VolumesDeleted ?? []).length > 0) {
      await cli.println(`Deleted Volumes:\n${(r.VolumesDeleted ?? []).join("\n")}\n`);
      reclaimed = r.SpaceReclaimed ?? 0;
    }
    await cli.println(`Total reclaimed space: ${humanSize(reclaimed)}`);
    return 0;
  },
};

/** `berth volume`. */
export const volumeGroup: Command = {
  name: "volume",
  usage: "COMMAND",
  short: "Manage volumes",
  subcommands: [create, inspect, ls, prune, rm],
};
