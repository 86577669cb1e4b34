import { isNotFound } from "../base/mod.ts";
import type { HistoryEntry } from "../client/mod.ts";
/** Image commands without much logic: tag, rmi, inspect, history, image prune. */
import { type Cli, describeError, StatusError } from "./cli.ts";
import type { Command } from "./command.ts";
import { ellipsis } from "./display.ts";
import { formatList } from "./listing.ts";
import { inspectAndPrint } from "./inspect.ts";
import { filterFlag, formatFlag, INSPECT_FORMAT_HELP, parseFilters, shortId } from "./opts.ts";
import { confirm } from "./prompt.ts";
import { humanSize, humanSizeWithPrecision, rfc3339, timeAgo } from "./units.ts";

export const tagCommand: Command = {
  name: "tag",
  usage: "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
  short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
  aliasPaths: ["image tag", "tag"],
  args: { exact: 2 },
  stopAtFirstPositional: true,
  flags: [],
  async run(cli, { args }) {
    await cli.client.imageTag(args[0] as string, args[1] as string);
    return 0;
  },
};

/** Options of `berth rmi`. */
export interface RemoveImageOptions {
  force: boolean;
  noPrune: boolean;
  platforms: string[];
}

/** Removes images, printing `Untagged:`/`Deleted:` lines; with -f, only non-"not found" errors fail. */
export async function runRemoveImages(cli: Cli, images: string[], opts: RemoveImageOptions): Promise<void> {
  const errors: string[] = [];
  let fatal = false;
  for (const img of images) {
    try {
      const o: { force?: boolean; noPrune?: boolean; platforms?: string[] } = { force: opts.force, noPrune: opts.noPrune };
      if (opts.platforms.length) o.platforms = opts.platforms;
      const dels = await cli.client.imageRemove(img, o);
      for (const d of dels ?? []) {
        if (d.Deleted) await cli.println(`Deleted: ${d.Deleted}`);
        else await cli.println(`Untagged: ${d.Untagged ?? ""}`);
      }
    } catch (e) {
      if (!isNotFound(e)) fatal = true;
      errors.push(describeError(e));
    }
  }
  if (errors.length > 0) {
    if (!opts.force || fatal) throw new StatusError(1, errors.join("\n"));
    await cli.eprintln(errors.join("\n"));
  }
}

const rmiFlags: Command["flags"] = [
  { long: "force", short: "f", kind: "bool", help: "Force removal of the image" },
  { long: "no-prune", kind: "bool", help: "Do not delete untagged parents" },
  {
    long: "platform",
    kind: "slice",
    help: 'Remove only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")',
  },
];

export const rmiCommand: Command = {
  name: "rmi",
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  short: "Remove one or more images",
  aliasPaths: ["image rm", "image remove", "rmi"],
  args: { min: 1 },
  flags: rmiFlags,
  async run(cli, { flags, args }) {
    await runRemoveImages(cli, args, { force: flags.bool("force"), noPrune: flags.bool("no-prune"), platforms: flags.list("platform") });
    return 0;
  },
};

export const imageRmCommand: Command = { ...rmiCommand, name: "rm", aliases: ["rmi", "remove"] };

export const imageInspectCommand: Command = {
  name: "inspect",
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  short: "Display detailed information on one or more images",
  args: { min: 1 },
  flags: [
    { long: "format", short: "f", kind: "string", help: INSPECT_FORMAT_HELP },
    {
      long: "platform",
      kind: "string",
      help: "Inspect a specific platform of the multi-platform image.\nIf the image or the server is not multi-platform capable, the command will error out if the platform does not match.\n'os[/arch[/variant]]': Explicit platform (eg. linux/amd64)",
    },
  ],
  async run(cli, { flags, args }) {
    await inspectAndPrint(cli, args, flags.string("format"), (ref) => cli.client.inspectRaw("image", ref));
    return 0;
  },
};

/** One row of `berth history`. */
export class HistoryRow {
  readonly #h: HistoryEntry;
  readonly #trunc: boolean;
  readonly #human: boolean;
  constructor(h: HistoryEntry, trunc: boolean, human: boolean) {
    this.#h = h;
    this.#trunc = trunc;
    this.#human = human;
  }
  get ID(): string {
    return this.#trunc ? shortId(this.#h.Id) : this.#h.Id;
  }
  get CreatedAt(): string {
    return rfc3339(new Date(this.#h.Created * 1000));
  }
  get CreatedSince(): string {
    if (!this.#human) return this.CreatedAt;
    if (this.#h.Created <= 946684800) return "N/A";
    return timeAgo(this.#h.Created);
  }
  get CreatedBy(): string {
    const s = this.#h.CreatedBy.replaceAll("\t", " ");
    return this.#trunc ? ellipsis(s, 45) : s;
  }
  get Size(): string {
    return this.#human ? humanSizeWithPrecision(this.#h.Size, 3) : String(this.#h.Size);
  }
  get Comment(): string {
    return this.#h.Comment;
  }
}

export const historyCommand: Command = {
  name: "history",
  usage: "[OPTIONS] IMAGE",
  short: "Show the history of an image",
  aliasPaths: ["image history", "history"],
  args: { exact: 1 },
  flags: [
    formatFlag(),
    { long: "human", short: "H", kind: "bool", help: "Print sizes and dates in human readable format", defaultText: "true" },
    { long: "no-trunc", kind: "bool", help: "Don't truncate output" },
    {
      long: "platform",
      kind: "string",
      help: 'Show history for the given platform. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")',
    },
    { long: "quiet", short: "q", kind: "bool", help: "Only show image IDs" },
  ],
  async run(cli, { flags, args }) {
    const human = flags.has("human") ? flags.bool("human") : true;
    const o: { platform?: string } = {};
    if (flags.string("platform")) o.platform = flags.string("platform");
    const history = (await cli.client.imageHistory(args[0] as string, o)) ?? [];
    let format = flags.string("format") || "table";
    if (format === "table") {
      if (flags.bool("quiet")) format = "{{.ID}}";
      else if (!human) format = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
      else format = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
    }
    const rows = history.map((h) => new HistoryRow(h, !flags.bool("no-trunc"), human));
    await cli.write(
      formatList(format, rows, {
        ID: "IMAGE",
        CreatedSince: "CREATED",
        CreatedAt: "CREATED AT",
        CreatedBy: "CREATED BY",
        Size: "SIZE",
        Comment: "COMMENT",
      }),
    );
    return 0;
  },
};

export const imagePruneCommand: Command = {
  name: "prune",
  usage: "[OPTIONS]",
  short: "Remove unused images",
  args: "none",
  flags: [
    { long: "all", short: "a", kind: "bool", help: "Remove all unused images, not just dangling ones" },
    filterFlag('Provide filter values (e.g. "until=<timestamp>")', null),
    { long: "force", short: "f", kind: "bool", help: "Do not prompt for confirmation" },
  ],
  async run(cli, { flags }) {
    const r = await pruneImages(cli, { all: flags.bool("all"), force: flags.bool("force"), filters: flags.list("filter") });
    if (r === undefined) return 0;
    if (r.output) await cli.println(r.output);
    await cli.println(`Total reclaimed space: ${humanSize(r.reclaimed)}`);
    return 0;
  },
};

/** Prunes images after confirmation; undefined when the user declined. */
export async function pruneImages(
  cli: Cli,
  opts: { all: boolean; force: boolean; filters: string[] },
): Promise<{ output: string; reclaimed: number } | undefined> {
  const filters = parseFilters(opts.filters);
  filters.dangling = { [String(!opts.all)]: true };
  const warning = opts.all
    ? "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
    : "WARNING! This will remove all dangling images.\nAre you sure you want to continue?";
  if (!opts.force && !(await confirm(cli, warning))) throw new StatusError(1, "");
  const report = await cli.client.imagesPrune(filters);
  let output = "";
  if ((report.ImagesDeleted ?? []).length > 0) {
    output = "Deleted Images:\n";
    for (const d of report.ImagesDeleted ?? []) output += d.Untagged ? `untagged: ${d.Untagged}\n` : `deleted: ${d.Deleted ?? ""}\n`;
  }
  return { output, reclaimed: report.SpaceReclaimed ?? 0 };
}
