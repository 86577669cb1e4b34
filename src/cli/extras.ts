/** Lower-priority command groups: network, volume, build, system prune. */
import { buildCommand } from "./cmd_build.ts";
import { networkGroup } from "./cmd_network.ts";
import { searchCommand } from "./cmd_search.ts";
import { systemPruneCommand } from "./cmd_system_prune.ts";
import { volumeGroup } from "./cmd_volume.ts";
import { StatusError } from "./cli.ts";
import type { Command } from "./command.ts";
import { filterFlag, parseFilters } from "./opts.ts";
import { confirm } from "./prompt.ts";
import { humanSize } from "./units.ts";

const builderPruneCommand: Command = {
  name: "prune",
  usage: "[OPTIONS]",
  short: "Remove build cache",
  args: "none",
  flags: [
    { long: "all", short: "a", kind: "bool", help: "Remove all unused build cache, not just dangling ones" },
    filterFlag('Provide filter values (e.g. "until=24h")', null),
    { long: "force", short: "f", kind: "bool", help: "Do not prompt for confirmation" },
    { long: "keep-storage", kind: "bytes", help: "Amount of disk space to keep for cache" },
  ],
  async run(cli, { flags }) {
    const warning = flags.bool("all")
      ? "WARNING! This will remove all build cache.\nAre you sure you want to continue?"
      : "WARNING! This will remove all dangling build cache.\nAre you sure you want to continue?";
    if (!flags.bool("force") && !(await confirm(cli, warning))) throw new StatusError(1, "");
    const r = await cli.client.buildPrune({ all: flags.bool("all"), filters: parseFilters(flags.list("filter")) });
    if ((r.CachesDeleted ?? []).length) await cli.println(`Deleted build cache objects:\n${(r.CachesDeleted ?? []).join("\n")}\n`);
    await cli.println(`Total reclaimed space: ${humanSize(r.SpaceReclaimed ?? 0)}`);
    return 0;
  },
};

/** `berth system check`: verifies (and with --repair repairs) berthd's store. berth's own command. */
const systemCheckCommand: Command = {
  name: "check",
  usage: "[OPTIONS]",
  short: "Verify berth's store: blob digests, image, snapshot and container records",
  args: "none",
  flags: [
    { long: "repair", kind: "bool", help: "Repair what a crash can leave (corrupt blobs, stale records), then collect garbage" },
    { long: "format", kind: "string", help: 'Format output: "json" prints the whole report' },
  ],
  async run(cli, { flags }) {
    const r = await cli.client.storeCheck({ repair: flags.bool("repair") });
    if (flags.string("format") === "json") {
      await cli.println(JSON.stringify(r, null, 2));
      return r.ok ? 0 : 1;
    }
    const counts = Object.entries(r.checked)
      .map(([k, v]) => `${v} ${k}`)
      .join(", ");
    await cli.println(`Checked ${counts}.`);
    for (const p of r.problems) {
      await cli.println(
        `${p.severity === "garbage" ? "garbage" : "PROBLEM"}: ${p.kind} ${p.subject}: ${p.message}${p.repaired ? " (repaired)" : ""}`,
      );
    }
    await cli.println(r.ok ? "The store is consistent." : "The store has problems: run `berth system check --repair`.");
    return r.ok ? 0 : 1;
  },
};

/** Extra subcommands of existing groups, by group name. */
export const EXTRA_GROUPS: Record<string, Command[]> = {
  image: [{ ...buildCommand }],
  system: [systemPruneCommand, systemCheckCommand],
};

/** Extra top-level commands and groups. */
export const EXTRA_TOP_LEVEL: Command[] = [
  buildCommand,
  searchCommand,
  networkGroup,
  volumeGroup,
  { name: "builder", usage: "COMMAND", short: "Manage builds", subcommands: [{ ...buildCommand }, builderPruneCommand] },
];
