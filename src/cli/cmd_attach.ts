/** Commands that stream a container's stdio: logs, attach, start -a, exec. */
import { demuxTo } from "../client/mod.ts";
import { describeError, StatusError } from "./cli.ts";
import type { Command } from "./command.ts";
import { expandEnv, readKvFile } from "./opts.ts";
import { monitorTtySize, proxySignals, streamHijacked } from "./hijack.ts";
import { apiTimestamp } from "./units.ts";
import { pipeline } from "node:stream/promises";

export const logsCommand: Command = {
  name: "logs",
  usage: "[OPTIONS] CONTAINER",
  short: "Fetch the logs of a container",
  aliasPaths: ["container logs", "logs"],
  args: { exact: 1 },
  flags: [
    { long: "details", kind: "bool", help: "Show extra details provided to logs" },
    { long: "follow", short: "f", kind: "bool", help: "Follow log output" },
    {
      long: "since",
      kind: "string",
      help: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
    },
    { long: "tail", short: "n", kind: "string", help: "Number of lines to show from the end of the logs", defaultText: '"all"' },
    { long: "timestamps", short: "t", kind: "bool", help: "Show timestamps" },
    {
      long: "until",
      kind: "string",
      help: 'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
    },
  ],
  async run(cli, { flags, args }) {
    const c = await cli.client.containerInspect(args[0] as string);
    const o: Parameters<typeof cli.client.containerLogs>[1] = {
      stdout: true,
      stderr: true,
      follow: flags.bool("follow"),
      timestamps: flags.bool("timestamps"),
      details: flags.bool("details"),
      tail: flags.string("tail", "all") || "all",
    };
    if (flags.string("since")) o.since = apiTimestamp(flags.string("since"));
    if (flags.string("until")) o.until = apiTimestamp(flags.string("until"));
    const body = await cli.client.containerLogs(c.Id, o);
    if (c.Config.Tty) await pipeline(body, cli.out.stream, { end: false });
    else await demuxTo(body, cli.out.stream, cli.err.stream);
    return 0;
  },
};

export const attachCommand: Command = {
  name: "attach",
  usage: "[OPTIONS] CONTAINER",
  short: "Attach local standard input, output, and error streams to a running container",
  aliasPaths: ["container attach", "attach"],
  args: { exact: 1 },
  flags: [
    { long: "detach-keys", kind: "string", help: "Override the key sequence for detaching a container" },
    { long: "no-stdin", kind: "bool", help: "Do not attach STDIN" },
    { long: "sig-proxy", kind: "bool", help: "Proxy all received signals to the process", defaultText: "true" },
  ],
  async run(cli, { flags, args }) {
    const name = args[0] as string;
    const c = await cli.client.containerInspect(name);
    if (!c.State.Running) throw new StatusError(1, "You cannot attach to a stopped container, start it first");
    if (c.State.Paused) throw new StatusError(1, "You cannot attach to a paused container, unpause it first");
    if (c.State.Restarting) throw new StatusError(1, "You cannot attach to a restarting container, wait until it is running");
    const stdin = !flags.bool("no-stdin") && Boolean(c.Config.OpenStdin);
    if (stdin && c.Config.Tty && !cli.in.isTTY) throw new StatusError(1, "the input device is not a TTY");
    const detachKeys = flags.string("detach-keys") || cli.configFile().data.detachKeys || "";
    const sigProxy = flags.has("sig-proxy") ? flags.bool("sig-proxy") : true;
    const stopProxy = sigProxy && !c.Config.Tty ? proxySignals((s) => cli.client.containerKill(c.Id, s)) : () => {};
    const { result: waitResult } = await cli.client.containerWait(name);
    const ao: Parameters<typeof cli.client.containerAttach>[1] = { stream: true, stdin, stdout: true, stderr: true };
    if (detachKeys) ao.detachKeys = detachKeys;
    const conn = await cli.client.containerAttach(c.Id, ao);
    let stopResize = () => {};
    if (c.Config.Tty && cli.out.isTTY) stopResize = monitorTtySize(cli, (h, w) => cli.client.containerResize(c.Id, h, w));
    try {
      const r = await streamHijacked(cli, {
        conn,
        tty: Boolean(c.Config.Tty),
        stdin,
        stdout: cli.out.stream,
        stderr: c.Config.Tty ? cli.out.stream : cli.err.stream,
        detachKeys,
      });
      if (r.detached) return 0;
      const status = await Promise.race([waitResult, new Promise<undefined>((res) => setTimeout(() => res(undefined), 5000))]);
      const code = status?.StatusCode ?? 0;
      return code;
    } finally {
      stopResize();
      stopProxy();
      conn.close();
    }
  },
};

export const startCommand: Command = {
  name: "start",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  short: "Start one or more stopped containers",
  aliasPaths: ["container start", "start"],
  args: { min: 1 },
  flags: [
    { long: "attach", short: "a", kind: "bool", help: "Attach STDOUT/STDERR and forward signals" },
    { long: "checkpoint", kind: "string", help: "Restore from this checkpoint" },
    { long: "checkpoint-dir", kind: "string", help: "Use a custom checkpoint storage directory" },
    { long: "detach-keys", kind: "string", help: "Override the key sequence for detaching a container" },
    { long: "interactive", short: "i", kind: "bool", help: "Attach container's STDIN" },
  ],
  async run(cli, { flags, args }) {
    if (!flags.bool("attach") && !flags.bool("interactive")) {
      const failed: string[] = [];
      for (const c of args) {
        try {
          await cli.client.containerStart(c);
          await cli.println(c);
        } catch (e) {
          await cli.eprintln(describeError(e));
          failed.push(c);
        }
      }
      if (failed.length) throw new StatusError(1, `Error: failed to start containers: ${failed.join(", ")}`);
      return 0;
    }
    if (args.length > 1) throw new StatusError(1, "you cannot start and attach multiple containers at once");
    const c = await cli.client.containerInspect(args[0] as string);
    const stopProxy = !c.Config.Tty ? proxySignals((s) => cli.client.containerKill(c.Id, s)) : () => {};
    const detachKeys = flags.string("detach-keys") || cli.configFile().data.detachKeys || "";
    const stdin = flags.bool("interactive") && Boolean(c.Config.OpenStdin);
    const ao: Parameters<typeof cli.client.containerAttach>[1] = { stream: true, stdin, stdout: true, stderr: true };
    if (detachKeys) ao.detachKeys = detachKeys;
    const conn = await cli.client.containerAttach(c.Id, ao);
    const { result: waitResult } = await cli.client.containerWait(c.Id, c.HostConfig.AutoRemove ? "removed" : "next-exit");
    const status = waitResult.then(
      (r) => r.StatusCode,
      () => 125,
    );
    let stopResize = () => {};
    try {
      const streams = streamHijacked(cli, {
        conn,
        tty: Boolean(c.Config.Tty),
        stdin,
        stdout: cli.out.stream,
        stderr: c.Config.Tty ? cli.out.stream : cli.err.stream,
        detachKeys,
      });
      try {
        await cli.client.containerStart(c.Id);
      } catch (e) {
        conn.close();
        throw e;
      }
      if (c.Config.Tty && cli.out.isTTY) stopResize = monitorTtySize(cli, (h, w) => cli.client.containerResize(c.Id, h, w));
      const r = await streams;
      if (r.detached) return 0;
      return await status;
    } finally {
      stopResize();
      stopProxy();
      conn.close();
    }
  },
};

export const execCommand: Command = {
  name: "exec",
  usage: "[OPTIONS] CONTAINER COMMAND [ARG...]",
  short: "Execute a command in a running container",
  aliasPaths: ["container exec", "exec"],
  args: { min: 2 },
  stopAtFirstPositional: true,
  flags: [
    { long: "detach", short: "d", kind: "bool", help: "Detached mode: run command in the background" },
    { long: "detach-keys", kind: "string", help: "Override the key sequence for detaching a container" },
    { long: "env", short: "e", kind: "list", help: "Set environment variables" },
    { long: "env-file", kind: "list", help: "Read in a file of environment variables" },
    { long: "interactive", short: "i", kind: "bool", help: "Keep STDIN open even if not attached" },
    { long: "privileged", kind: "bool", help: "Give extended privileges to the command" },
    { long: "tty", short: "t", kind: "bool", help: "Allocate a pseudo-TTY" },
    { long: "user", short: "u", kind: "string", help: 'Username or UID (format: "<name|uid>[:<group|gid>]")' },
    { long: "workdir", short: "w", kind: "string", help: "Working directory inside the container" },
  ],
  async run(cli, { flags, args }) {
    const container = args[0] as string;
    const detach = flags.bool("detach");
    const tty = flags.bool("tty");
    const interactive = flags.bool("interactive");
    const env: string[] = [];
    for (const f of flags.list("env-file")) {
      try {
        env.push(...readKvFile(f, { fromEnv: true, env: cli.env }));
      } catch (e) {
        throw new StatusError(1, (e as Error).message);
      }
    }
    for (const e of flags.list("env")) env.push(e.includes("=") ? e : (expandEnv([e], cli.env)[0] ?? e));
    await cli.client.containerInspect(container);
    if (!detach && tty && interactive && !cli.in.isTTY) throw new StatusError(1, "the input device is not a TTY");
    const detachKeys = flags.string("detach-keys") || cli.configFile().data.detachKeys || "";
    const body: Parameters<typeof cli.client.execCreate>[1] = {
      User: flags.string("user"),
      Privileged: flags.bool("privileged"),
      Tty: tty,
      AttachStdin: interactive && !detach,
      AttachStdout: !detach,
      AttachStderr: !detach,
      Env: env,
      WorkingDir: flags.string("workdir"),
      Cmd: args.slice(1),
    };
    if (detachKeys) body.DetachKeys = detachKeys;
    const out = cli.out.stream as NodeJS.WriteStream;
    if (tty && cli.out.isTTY && out.rows && out.columns) body.ConsoleSize = [out.rows, out.columns];
    const { Id: execId } = await cli.client.execCreate(container, body);
    if (detach) {
      await cli.client.execStartDetached(execId, { tty });
      return 0;
    }
    const so: { tty: boolean; consoleSize?: [number, number] } = { tty };
    if (body.ConsoleSize) so.consoleSize = body.ConsoleSize;
    const conn = await cli.client.execAttach(execId, so);
    let stopResize = () => {};
    if (tty && cli.out.isTTY) stopResize = monitorTtySize(cli, (h, w) => cli.client.execResize(execId, h, w));
    try {
      const r = await streamHijacked(cli, {
        conn,
        tty,
        stdin: interactive,
        stdout: cli.out.stream,
        stderr: tty ? cli.out.stream : cli.err.stream,
        detachKeys,
      });
      // The docker CLI reports a detach from an exec as an error of the stream (status 1).
      if (r.detached) throw new StatusError(1, "read escape sequence");
    } finally {
      stopResize();
      conn.close();
    }
    // The exit code is recorded a moment after the stream ends.
    for (let i = 0; i < 50; i++) {
      const info = await cli.client.execInspect(execId);
      if (!info.Running && info.ExitCode !== null) return info.ExitCode;
      await new Promise((r) => setTimeout(r, 20 + i * 5));
    }
    return 0;
  },
};
