/** The container commands, for the top level and for `berth container`. */
import { attachCommand, execCommand, logsCommand, startCommand } from "./cmd_attach.ts";
import {
  commitCommand,
  containerInspectCommand,
  containerPruneCommand,
  diffCommand,
  exportCommand,
  killCommand,
  pauseCommand,
  portCommand,
  renameCommand,
  restartCommand,
  rmCommand,
  stopCommand,
  topCommand,
  unpauseCommand,
  updateCommand,
  waitCommand,
} from "./cmd_container_misc.ts";
import { cpCommand } from "./cmd_cp.ts";
import { containerLsCommand, psCommand } from "./cmd_ps.ts";
import { createCommand, runCommand } from "./cmd_run.ts";
import { statsCommand } from "./cmd_stats.ts";
import type { Command } from "./command.ts";

/** Container commands that are also top-level (`berth run`, `berth ps`...). */
export const CONTAINER_TOP_LEVEL: Command[] = [
  runCommand,
  execCommand,
  psCommand,
  attachCommand,
  commitCommand,
  cpCommand,
  createCommand,
  diffCommand,
  exportCommand,
  killCommand,
  logsCommand,
  pauseCommand,
  portCommand,
  renameCommand,
  restartCommand,
  { ...rmCommand, aliases: [] },
  startCommand,
  statsCommand,
  stopCommand,
  topCommand,
  unpauseCommand,
  updateCommand,
  waitCommand,
];

/** `berth container <verb>` commands. */
export const CONTAINER_COMMANDS: Command[] = [
  ...CONTAINER_TOP_LEVEL.filter((c) => c.name !== "ps" && c.name !== "rm"),
  rmCommand,
  containerLsCommand,
  containerInspectCommand,
  containerPruneCommand,
];
