import { ArgsError, type Cli, PROGRAM } from "./cli.ts";
import { type FlagSpec, type FlagValues, formatFlagUsages, HELP_FLAG } from "./flags.ts";

/** How many positional arguments a command takes (docker's cli.ExactArgs, RequiresMinArgs, ...). */
export type ArgsRule = { exact: number } | { min: number } | { max: number } | { min: number; max: number } | "none" | "any";

/** What a command's run function receives. */
export interface Invocation {
  flags: FlagValues;
  args: string[];
  /** The command path as invoked, without the program: `image pull`, `pull`. */
  path: string;
}

/**
 * One command: its flag table, argument rule and help text, plus the function that turns the
 * parsed command line into an options object and calls the client. Management commands
 * (`image`, `container`, ...) have `subcommands` instead of `run`.
 */
export interface Command {
  name: string;
  /** Other names within the same parent (`image rm` is also `image rmi`, `image remove`). */
  aliases?: string[];
  /** Usage after the command path: `[OPTIONS] NAME[:TAG|@DIGEST]`. */
  usage: string;
  short: string;
  /** Full paths listed under "Aliases:" in help: `["image pull", "pull"]`. */
  aliasPaths?: string[];
  flags?: FlagSpec[];
  args?: ArgsRule;
  /** Stop parsing flags at the first positional (run, create, exec). */
  stopAtFirstPositional?: boolean;
  subcommands?: Command[];
  hidden?: boolean;
  /** Runs the command; resolves with the exit status (default 0). */
  run?: (cli: Cli, inv: Invocation) => Promise<number | undefined>;
}

function plural(n: number, word: string): string {
  return n === 1 ? `${n} ${word}` : `${n} ${word}s`;
}

/** Validates the positional count; throws ArgsError with docker's wording. */
export function checkArgs(cmd: Command, path: string, args: string[]): void {
  const rule = cmd.args ?? "any";
  const name = `'${PROGRAM} ${path}'`;
  const usage = `\n\nUsage:  ${PROGRAM} ${path} ${cmd.usage}`.trimEnd();
  const fail = (msg: string, verb: "Run" | "See") => {
    throw new ArgsError(`${PROGRAM}: ${name} ${msg}${usage}\n\n${verb} '${PROGRAM} ${path} --help' for more information`);
  };
  if (rule === "any") return;
  if (rule === "none") {
    if (args.length > 0) fail("accepts no arguments", "Run");
    return;
  }
  if ("exact" in rule) {
    if (args.length !== rule.exact) fail(`requires ${plural(rule.exact, "argument")}`, "Run");
    return;
  }
  const min = "min" in rule ? rule.min : undefined;
  const max = "max" in rule ? rule.max : undefined;
  if (min !== undefined && max !== undefined) {
    if (args.length < min || args.length > max) fail(`requires at least ${min} and at most ${plural(max, "argument")}`, "Run");
  } else if (min !== undefined) {
    if (args.length < min) fail(`requires at least ${plural(min, "argument")}`, "See");
  } else if (max !== undefined) {
    if (args.length > max) fail(`requires at most ${plural(max, "argument")}`, "Run");
  }
}

/** The usage line of a command: `berth pull [OPTIONS] NAME[:TAG|@DIGEST]`. */
export function useLine(cmd: Command, path: string): string {
  return `${PROGRAM} ${path} ${cmd.usage}`.trimEnd();
}

/** docker's help layout for one command (or a management command's list of subcommands). */
export function helpText(cmd: Command, path: string, width = 80): string {
  const lines: string[] = [];
  if (cmd.subcommands) {
    lines.push("", `Usage:  ${PROGRAM} ${path} COMMAND`, "", cmd.short, "");
    if (cmd.aliasPaths?.length) lines.push("Aliases:", `  ${cmd.aliasPaths.map((p) => `${PROGRAM} ${p}`).join(", ")}`, "");
    lines.push("Commands:");
    const subs = cmd.subcommands.filter((c) => !c.hidden).sort((a, b) => a.name.localeCompare(b.name));
    const w = Math.max(...subs.map((c) => c.name.length), 10);
    for (const c of subs) lines.push(`  ${c.name.padEnd(w)}  ${c.short}`);
    lines.push("", `Run '${PROGRAM} ${path} COMMAND --help' for more information on a command.`);
    return `${lines.join("\n")}\n`;
  }
  lines.push(`Usage:  ${useLine(cmd, path)}`, "", cmd.short, "");
  if (cmd.aliasPaths?.length) lines.push("Aliases:", `  ${cmd.aliasPaths.map((p) => `${PROGRAM} ${p}`).join(", ")}`, "");
  const flags = (cmd.flags ?? []).filter((f) => !f.hidden);
  // pflag lists `--help` when `-h` belongs to the command (run's --hostname); flags sort by name.
  if (flags.some((f) => f.short === "h")) flags.push(HELP_FLAG);
  flags.sort((a, b) => (a.long < b.long ? -1 : a.long > b.long ? 1 : 0));
  if (flags.length > 0) lines.push("Options:", formatFlagUsages(flags, width));
  else if (lines[lines.length - 1] === "") lines.pop();
  return `${lines.join("\n")}\n`;
}

/** The message of a flag error with the usage hint (exit status 125). */
export function flagErrorText(message: string, cmd: Command, path: string): string {
  return `${message}\n\nUsage:  ${useLine(cmd, path)}\n\nRun '${PROGRAM} ${path} --help' for more information`;
}
