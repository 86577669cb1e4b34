/**
 * `berth`: the command-line client. Parses docker's global flags, finds the command (top-level
 * or under a management command such as `image` or `container`), parses its flags, runs it and
 * maps errors to docker's messages and exit statuses. Only this file calls `process.exit`.
 */
import { realpathSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BerthError, kindOf } from "../base/mod.ts";
import { ConnectError, DaemonError, type TlsSettings } from "../client/mod.ts";
import { ArgsError, Cli, type GlobalOptions, type InStream, type OutStream, PROGRAM, StatusError, describeError } from "./cli.ts";
import { berthVersion } from "./cmd_system.ts";
import { type Command, checkArgs, flagErrorText, helpText } from "./command.ts";
import { COMMANDS, topLevelHelp } from "./commands.ts";
import { FlagError, type FlagSpec, parseFlags } from "./flags.ts";

const GLOBAL_FLAGS: FlagSpec[] = [
  { long: "config", kind: "string", help: "Location of client config files", defaultText: '"~/.docker"' },
  { long: "context", short: "c", kind: "string", help: "Name of the context to use to connect to the daemon" },
  { long: "debug", short: "D", kind: "bool", help: "Enable debug mode" },
  { long: "host", short: "H", kind: "list", help: "Daemon socket to connect to" },
  {
    long: "log-level",
    short: "l",
    kind: "string",
    help: 'Set the logging level ("debug", "info", "warn", "error", "fatal")',
    defaultText: '"info"',
  },
  { long: "tls", kind: "bool", help: "Use TLS; implied by --tlsverify" },
  { long: "tlscacert", kind: "string", help: "Trust certs signed only by this CA", defaultText: '"~/.docker/ca.pem"' },
  { long: "tlscert", kind: "string", help: "Path to TLS certificate file", defaultText: '"~/.docker/cert.pem"' },
  { long: "tlskey", kind: "string", help: "Path to TLS key file", defaultText: '"~/.docker/key.pem"' },
  { long: "tlsverify", kind: "bool", help: "Use TLS and verify the remote" },
  { long: "version", short: "v", kind: "bool", help: "Print version information and quit" },
];

/** Where main reads and writes; defaults to the process's own streams. */
export interface MainIo {
  out?: OutStream;
  err?: OutStream;
  in?: InStream;
  env?: NodeJS.ProcessEnv;
}

function processOut(s: NodeJS.WriteStream): OutStream {
  const o: OutStream = { stream: s, isTTY: Boolean(s.isTTY) };
  if (s.isTTY) {
    o.columns = s.columns;
    o.rows = s.rows;
  }
  return o;
}

function globalOptions(flags: ReturnType<typeof parseFlags>["flags"], env: NodeJS.ProcessEnv): GlobalOptions {
  const o: GlobalOptions = {};
  const hosts = flags.list("host");
  if (hosts.length > 1) throw new StatusError(1, "Specify only one -H");
  if (hosts[0]) o.host = hosts[0];
  if (flags.string("config")) o.configDir = flags.string("config");
  if (flags.bool("debug") || env.DEBUG) o.debug = true;
  if (flags.string("log-level")) o.logLevel = flags.string("log-level");
  const verify = flags.has("tlsverify") ? flags.bool("tlsverify") : Boolean(env.DOCKER_TLS_VERIFY);
  if (verify || flags.bool("tls")) {
    const certDir = env.DOCKER_CERT_PATH || join(homedir(), ".docker");
    const tls: TlsSettings = {
      verify,
      ca: flags.string("tlscacert") || join(certDir, "ca.pem"),
      cert: flags.string("tlscert") || join(certDir, "cert.pem"),
      key: flags.string("tlskey") || join(certDir, "key.pem"),
    };
    o.tls = tls;
  }
  return o;
}

function findCommand(list: readonly Command[], name: string): Command | undefined {
  return list.find((c) => c.name === name || c.aliases?.includes(name));
}

/** The exit status and stderr text for an error, as docker prints it. */
export function errorOutcome(err: unknown, cmd: Command | undefined, path: string): { code: number; message: string } {
  if (err instanceof StatusError) return { code: err.code, message: err.message };
  if (err instanceof ArgsError) return { code: 1, message: err.message };
  if (err instanceof FlagError) return { code: 125, message: cmd ? flagErrorText(err.message, cmd, path) : err.message };
  if (err instanceof DaemonError) return { code: 1, message: describeError(err) };
  if (err instanceof ConnectError) return { code: 1, message: err.message };
  if (err instanceof BerthError) return { code: 1, message: err.message };
  if (err instanceof Error) {
    if (kindOf(err) === "Canceled") return { code: 1, message: "" };
    return { code: 1, message: err.message };
  }
  return { code: 1, message: String(err) };
}

/** Runs the CLI with `argv` (without node and script); resolves with the exit status. */
export async function main(argv: readonly string[], io: MainIo = {}): Promise<number> {
  const env = io.env ?? process.env;
  const out = io.out ?? processOut(process.stdout);
  const err = io.err ?? processOut(process.stderr);
  const input = io.in ?? { stream: process.stdin, isTTY: Boolean(process.stdin.isTTY) };
  let cli: Cli | undefined;
  let cmd: Command | undefined;
  let path = "";
  try {
    let global: ReturnType<typeof parseFlags>;
    try {
      global = parseFlags(argv, GLOBAL_FLAGS, { stopAtFirstPositional: true });
    } catch (e) {
      if (e instanceof FlagError) throw new StatusError(125, `${e.message}\nSee '${PROGRAM} --help'.`);
      throw e;
    }
    cli = new Cli({ out, err, in: input, options: globalOptions(global.flags, env), env });
    if (global.flags.bool("version")) {
      await cli.println(`berth version ${berthVersion()}`);
      return 0;
    }
    const rest = global.args;
    if (global.help || rest.length === 0) {
      await cli.write(topLevelHelp(GLOBAL_FLAGS));
      return 0;
    }
    const name = rest[0] as string;
    // `compose` parses its own flags (Compose v2's command line, implemented in src/compose).
    if (name === "compose") {
      const { runCompose } = await import("../compose/mod.ts");
      const { render } = await import("./format/mod.ts");
      const composeIo: Parameters<typeof runCompose>[1] = {
        stdout: out.stream,
        stderr: err.stream,
        stdin: input.stream,
        env,
        cwd: process.cwd(),
        formatTemplate: (template, value) => render(template, value),
      };
      if (cli.options.host) composeIo.host = cli.options.host;
      return await runCompose(rest.slice(1), composeIo);
    }
    cmd = findCommand(COMMANDS, name);
    path = name;
    let args = rest.slice(1);
    if (!cmd) throw new StatusError(1, `${PROGRAM}: unknown command: ${PROGRAM} ${name}\n\nRun '${PROGRAM} --help' for more information`);
    while (cmd.subcommands) {
      const first = args[0];
      if (first === undefined || first === "--help" || first === "-h") {
        await cli.write(helpText(cmd, path, out.isTTY && out.columns ? out.columns : 80));
        return 0;
      }
      if (first.startsWith("-")) {
        const m = first.startsWith("--") ? `unknown flag: ${first.split("=")[0]}` : `unknown shorthand flag: '${first[1]}' in ${first}`;
        throw new StatusError(125, `${m}\nSee '${PROGRAM} ${path} --help'.`);
      }
      const sub = findCommand(cmd.subcommands, first);
      if (!sub) {
        throw new StatusError(
          1,
          `${PROGRAM}: unknown command: ${PROGRAM} ${path} ${first}\n\nUsage:  ${PROGRAM} ${path}\n\nRun '${PROGRAM} ${path} --help' for more information`,
        );
      }
      path = `${path} ${first}`;
      cmd = sub;
      args = args.slice(1);
    }
    const parsed = parseFlags(args, cmd.flags ?? [], { stopAtFirstPositional: cmd.stopAtFirstPositional ?? false });
    if (parsed.help) {
      await cli.write(helpText(cmd, path, out.isTTY && out.columns ? out.columns : 80));
      return 0;
    }
    checkArgs(cmd, path, parsed.args);
    if (!cmd.run) return 0;
    return (await cmd.run(cli, { flags: parsed.flags, args: parsed.args, path })) ?? 0;
  } catch (e) {
    const { code, message } = errorOutcome(e, cmd, path);
    if (message !== "") err.stream.write(`${message}\n`);
    if (cli?.options.debug && e instanceof Error && e.stack) err.stream.write(`${e.stack}\n`);
    return code;
  } finally {
    cli?.close();
  }
}

/** Entry point when run as a program. */
async function runAsProgram(): Promise<void> {
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
  });
  const code = await main(process.argv.slice(2));
  // Let buffered output reach the terminal or pipe before exiting.
  const flush = (s: NodeJS.WriteStream) =>
    new Promise<void>((resolve) => (s.writableLength === 0 ? resolve() : s.once("drain", () => resolve())));
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  process.exit(code);
}

function isMain(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) void runAsProgram();
