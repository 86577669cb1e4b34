/** Lower-priority command groups: network, volume, build, system prune. */
import { buildCommand } from "./cmd_build.ts";
import { networkGroup } from "./cmd_network.ts";
import { searchCommand } from "./cmd_search.ts";
import { systemPruneCommand } from "./cmd_system_prune.ts";
import { volumeGroup } from "./cmd_volume.ts";
import type { Command } from "./command.ts";

/** Extra subcommands of existing groups, by group name. */
export const EXTRA_GROUPS: Record<string, Command[]> = {
  image: [{ ...buildCommand }],
  system: [systemPruneCommand],
};

/** Extra top-level commands and groups. */
export const EXTRA_TOP_LEVEL: Command[] = [
  buildCommand,
  searchCommand,
  networkGroup,
  volumeGroup,
  { name: "builder", usage: "COMMAND", short: "Manage builds", subcommands: [{ ...buildCommand }] },
];
