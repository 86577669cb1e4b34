/** Lower-priority command groups: network, volume, build, system prune. */
import type { Command } from "./command.ts";

/** Extra subcommands of existing groups, by group name. */
export const EXTRA_GROUPS: Record<string, Command[]> = {};
/** Extra top-level commands and groups. */
export const EXTRA_TOP_LEVEL: Command[] = [];
