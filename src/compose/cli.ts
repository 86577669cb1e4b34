/**
 * `berth compose`: the command line of Compose v2 over the loader and the engine operations.
 * Global flags (`-f`, `-p`, `--project-directory`, `--env-file`, `--profile`, ...) are accepted
 * before or after the subcommand, as Compose's persistent flags are.
 */
import type { Readable, Writable } from "node:stream";
import { BerthError, isNotFound, messageOf } from "../base/mod.ts";
import { ConnectError, type ContainerSummary, DaemonError, EngineClient } from "../client/mod.ts";
import { type FlagDef, FlagError, type Flags, flagHelp, parseFlags } from "./flags.ts";
import { loadProject } from "./loader.ts";
import type { Project } from "./model.ts";
import { COMMANDS } from "./commands.ts";
import { ComposeError, projectContainers, type Session } from "./engine.ts";
import { simpleTemplate } from "./table.ts";

/** Streams and environment of a compose invocation. */
export interface ComposeIo {
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean };
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  env: Record<string, string | undefined>;
  cwd: string;
  /** The daemon address (the CLI's `-H`); default BERTH_HOST, DOCKER_HOST, then berth's socket. */
  host?: string;
  /**
   * The CLI's Go-template engine for `--format` (compose cannot import the CLI); without it a
   * simple `{{.Field}}` expansion is used.
   */
  formatTemplate?: (template: string, value: unknown) => string;
}

/** The global (persistent) flags of `compose`. */
export const GLOBAL_FLAGS: FlagDef[] = [
  { long: "file", short: "f", kind: "list", help: "Compose configuration files" },
  { long: "project-name", short: "p", kind: "string", help: "Project name" },
  {
    long: "project-directory",
    kind: "string",
    help: "Specify an alternate working directory (default: the path of the first specified Compose file)",
  },
  { long: "workdir", kind: "string", help: "DEPRECATED! USE --project-directory INSTEAD.", hidden: true },
  { long: "env-file", kind: "list", help: "Specify an alternate environment file" },
  { long: "profile", kind: "list", help: "Specify a profile to enable" },
  { long: "ansi", kind: "string", help: 'Control when to print ANSI control characters ("never"|"always"|"auto")' },
  { long: "progress", kind: "string", help: 'Set type of progress output ("auto", "tty", "plain", "json", "quiet")' },
  { long: "parallel", kind: "int", help: "Control max parallelism, -1 for unlimited" },
  { long: "compatibility", kind: "bool", help: "Run compose in backward compatibility mode" },
  { long: "dry-run", kind: "bool", help: "Execute command in dry run mode" },
  { long: "no-ansi", kind: "bool", help: "Do not print ANSI control characters", hidden: true },
  { long: "verbose", kind: "bool", help: "Show more output", hidden: true },
];

/** A compose subcommand. */
export interface ComposeCommand {
  name: string;
  usage: string;
  short: string;
  flags: FlagDef[];
  stopAtFirstPositional?: boolean;
  run(ctx: Context, flags: Flags, args: string[]): Promise<number>;
}

/** What a command works with: streams, the daemon, the global options, the project. */
export class Context {
  readonly io: ComposeIo;
  readonly global: Flags;
  #client: EngineClient | undefined;
  readonly abort = new AbortController();

  constructor(io: ComposeIo, global: Flags) {
    this.io = io;
    this.global = global;
  }

  get client(): EngineClient {
    this.#client ??= new EngineClient({
      host: this.io.host ?? this.io.env.BERTH_HOST ?? this.io.env.DOCKER_HOST ?? "unix:///run/berth/berth.sock",
    });
    return this.#client;
  }

  close(): void {
    this.#client?.close();
  }

  /** Whether to print colours. */
  get color(): boolean {
    const ansi = this.global.string("ansi") ?? "auto";
    if (this.global.bool("no-ansi") || ansi === "never") return false;
    if (ansi === "always") return true;
    return this.io.stdout.isTTY === true && !this.io.env.NO_COLOR;
  }

  /** The progress and info sink, writing to stderr. */
  session(): Session {
    const quiet = this.global.string("progress") === "quiet";
    const json = this.global.string("progress") === "json";
    const s: Session = {
      client: this.client,
      env: this.io.env,
      signal: this.abort.signal,
      progress: (kind, name, status) => {
        if (quiet) return;
        if (json) this.io.stderr.write(`${JSON.stringify({ id: `${kind} ${name}`, status })}\n`);
        else this.io.stderr.write(` ${kind} ${name}  ${status}\n`);
      },
      info: (text) => {
        if (!quiet) this.io.stderr.write(text);
      },
    };
    return s;
  }

  /** Writes to stdout. */
  out(text: string): void {
    this.io.stdout.write(text);
  }

  /** Writes to stderr. */
  err(text: string): void {
    this.io.stderr.write(text);
  }

  /** Expands a `--format` template. */
  format(template: string, value: unknown): string {
    if (this.io.formatTemplate) return this.io.formatTemplate(template, value);
    return simpleTemplate(template, value);
  }

  /** Loads the project; `services` are the services named on the command line. */
  async project(services: string[] = [], options: { interpolate?: boolean } = {}): Promise<Project> {
    const g = this.global;
    const o: Parameters<typeof loadProject>[0] = { cwd: this.io.cwd, env: this.io.env };
    if (g.list("file").length) o.files = g.list("file");
    const name = g.string("project-name");
    if (name !== undefined) o.projectName = name;
    const dir = g.string("project-directory") ?? g.string("workdir");
    if (dir !== undefined) o.projectDirectory = dir;
    if (g.list("env-file").length) o.envFiles = g.list("env-file");
    if (g.list("profile").length) o.profiles = g.list("profile");
    if (services.length) o.services = services;
    if (options.interpolate === false) o.interpolate = false;
    o.readStdin = async () => {
      const chunks: Buffer[] = [];
      for await (const c of this.io.stdin) chunks.push(typeof c === "string" ? Buffer.from(c) : (c as Buffer));
      return Buffer.concat(chunks).toString("utf8");
    };
    return await loadProject(o);
  }

  /**
   * The project for commands that also work from the labels alone (down, ps, logs, stop, ...):
   * without a Compose file, `-p` or COMPOSE_PROJECT_NAME names a project with no model.
   */
  async projectOrName(services: string[] = []): Promise<{ project: Project | undefined; name: string }> {
    try {
      const p = await this.project(services);
      return { project: p, name: p.name };
    } catch (e) {
      const name = this.global.string("project-name") ?? this.io.env.COMPOSE_PROJECT_NAME;
      if (isNotFound(e) && /no configuration file provided/.test(messageOf(e)) && name) return { project: undefined, name };
      throw e;
    }
  }

  /** The project's containers (running only unless `all`). */
  async containers(
    projectName: string,
    options: { all?: boolean; services?: string[]; oneoff?: boolean } = {},
  ): Promise<ContainerSummary[]> {
    const list = await projectContainers(this.client, projectName, {
      all: true,
      oneoff: options.oneoff ?? false,
      ...(options.services ? { services: options.services } : {}),
    });
    return options.all ? list : list.filter((c) => c.State === "running" || c.State === "restarting" || c.State === "paused");
  }
}

function usageText(cmd: ComposeCommand): string {
  return ["", `Usage:  docker compose ${cmd.name} ${cmd.usage}`.trimEnd(), "", cmd.short, "", "Options:", flagHelp(cmd.flags), ""].join(
    "\n",
  );
}

function topHelp(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "",
    "Usage:  docker compose [OPTIONS] COMMAND",
    "",
    "Define and run multi-container applications with Docker",
    "",
    "Options:",
    flagHelp(GLOBAL_FLAGS),
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}   ${c.short}`),
    "",
    "Run 'docker compose COMMAND --help' for more information on a command.",
    "",
  ].join("\n");
}

/**
 * Runs `compose` with `argv` (the words after `compose`); resolves with the exit status. Never
 * exits the process: the CLI does.
 */
export async function runCompose(argv: string[], io: ComposeIo): Promise<number> {
  let ctx: Context | undefined;
  let cmd: ComposeCommand | undefined;
  try {
    const first = parseFlags(argv, GLOBAL_FLAGS, { stopAtFirstPositional: true });
    const name = first.args[0];
    if (name === undefined) {
      io.stdout.write(topHelp());
      return 0;
    }
    cmd = COMMANDS.find((c) => c.name === name);
    if (!cmd) {
      io.stderr.write(`unknown docker command: "compose ${name}"\n`);
      return 1;
    }
    const rest = parseFlags(
      first.args.slice(1),
      [...cmd.flags, ...GLOBAL_FLAGS.filter((g) => !cmd?.flags.some((f) => f.long === g.long || (g.short && f.short === g.short)))],
      {
        stopAtFirstPositional: cmd.stopAtFirstPositional ?? false,
      },
    );
    if (first.help || rest.help) {
      io.stdout.write(usageText(cmd));
      return 0;
    }
    // Persistent flags given after the subcommand add to those before it.
    for (const g of GLOBAL_FLAGS) {
      const later = rest.flags.values.get(g.long);
      if (later === undefined) continue;
      const before = first.flags.values.get(g.long) ?? [];
      first.flags.values.set(g.long, g.kind === "list" ? [...before, ...later] : later);
    }
    ctx = new Context(io, first.flags);
    return await cmd.run(ctx, rest.flags, rest.args);
  } catch (e) {
    const { code, message } = describe(e);
    if (message) io.stderr.write(`${message}\n`);
    return code;
  } finally {
    ctx?.close();
  }
}

function describe(e: unknown): { code: number; message: string } {
  if (e instanceof ComposeError) return { code: e.exitCode, message: e.message };
  if (e instanceof FlagError) return { code: 1, message: e.message };
  if (e instanceof DaemonError) return { code: 1, message: `Error response from daemon: ${e.message}` };
  if (e instanceof ConnectError) return { code: 1, message: e.message };
  if (e instanceof BerthError) return { code: e.kind === "Canceled" ? 130 : 1, message: e.message };
  return { code: 1, message: messageOf(e) };
}
