/** The command tree: top-level commands and the management commands with their subcommands. */
import { PROGRAM } from "./cli.ts";
import { importCommand, loadCommand, saveCommand } from "./cmd_image_io.ts";
import { historyCommand, imageInspectCommand, imagePruneCommand, imageRmCommand, rmiCommand, tagCommand } from "./cmd_image_misc.ts";
import { imageLsCommand, imagesCommand } from "./cmd_images.ts";
import { loginCommand, logoutCommand } from "./cmd_login.ts";
import { pullCommand } from "./cmd_pull.ts";
import { pushCommand } from "./cmd_push.ts";
import { dfCommand, eventsCommand, infoCommand, versionCommand } from "./cmd_system.ts";
import type { Command } from "./command.ts";
import { type FlagSpec, formatFlagUsages } from "./flags.ts";
import { inspectCommand } from "./cmd_inspect.ts";
import { CONTAINER_COMMANDS, CONTAINER_TOP_LEVEL } from "./containers.ts";
import { EXTRA_GROUPS, EXTRA_TOP_LEVEL } from "./extras.ts";

const imageGroup: Command = {
  name: "image",
  usage: "COMMAND",
  short: "Manage images",
  subcommands: [
    { ...historyCommand },
    { ...importCommand },
    imageInspectCommand,
    { ...loadCommand },
    imageLsCommand,
    imagePruneCommand,
    { ...pullCommand },
    { ...pushCommand },
    imageRmCommand,
    { ...saveCommand },
    { ...tagCommand },
    ...(EXTRA_GROUPS.image ?? []),
  ],
};

const systemGroup: Command = {
  name: "system",
  usage: "COMMAND",
  short: "Manage Docker",
  subcommands: [dfCommand, { ...eventsCommand }, { ...infoCommand }, ...(EXTRA_GROUPS.system ?? [])],
};

const containerGroup: Command = {
  name: "container",
  usage: "COMMAND",
  short: "Manage containers",
  subcommands: CONTAINER_COMMANDS,
};

/** Every command reachable from the top level. */
export const COMMANDS: Command[] = [
  ...CONTAINER_TOP_LEVEL,
  pullCommand,
  pushCommand,
  imagesCommand,
  loginCommand,
  logoutCommand,
  versionCommand,
  infoCommand,
  eventsCommand,
  historyCommand,
  importCommand,
  inspectCommand,
  loadCommand,
  rmiCommand,
  saveCommand,
  tagCommand,
  ...EXTRA_TOP_LEVEL,
  imageGroup,
  containerGroup,
  systemGroup,
];

const COMMON = ["run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "version", "info"];

/** `berth --help`: docker's top-level layout with berth's commands. */
export function topLevelHelp(globalFlags: FlagSpec[]): string {
  const line = (c: Command) => `  ${c.name.padEnd(10)}  ${c.short.split("\n")[0]}`;
  const byName = new Map(COMMANDS.map((c) => [c.name, c]));
  const common = COMMON.map((n) => byName.get(n)).filter((c): c is Command => c !== undefined);
  const management = COMMANDS.filter((c) => c.subcommands).sort((a, b) => a.name.localeCompare(b.name));
  const others = COMMANDS.filter((c) => !c.subcommands && !COMMON.includes(c.name) && !c.hidden).sort((a, b) =>
    a.name.localeCompare(b.name),
  );
  return [
    "",
    `Usage:  ${PROGRAM} [OPTIONS] COMMAND`,
    "",
    "A container engine that speaks Docker's interfaces",
    "",
    "Common Commands:",
    ...common.map(line),
    "",
    "Management Commands:",
    ...management.map(line),
    "",
    "Commands:",
    ...others.map(line),
    "",
    "Global Options:",
    formatFlagUsages(globalFlags),
    "",
    `Run '${PROGRAM} COMMAND --help' for more information on a command.`,
    "",
  ].join("\n");
}
