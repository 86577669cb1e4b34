/** create and run: the docker CLI's container creation flow (pull when missing), attach, start, wait. */
import { closeSync, existsSync, openSync, rmSync, writeSync } from "node:fs";
import { isNotFound } from "../base/mod.ts";
import type { ContainerWaitResponse } from "../client/mod.ts";
import { familiarString, parseReference, withDefaultTag } from "../oci/mod.ts";
import { registryAuthForImage } from "./auth.ts";
import { type Cli, describeError, StatusError } from "./cli.ts";
import { discardOut } from "./cmd_pull.ts";
import type { Command } from "./command.ts";
import { CONTAINER_FLAGS, ContainerOptionsError, type ContainerSpec, RUN_ONLY_FLAGS, buildContainerSpec } from "./container_opts.ts";
import { monitorTtySize, proxySignals, streamHijacked } from "./hijack.ts";
import { displayJsonMessages } from "./jsonmessage.ts";
import { PROGRAM } from "./cli.ts";

function withHelp(message: string, command: string): string {
  return `${PROGRAM}: ${message}\n\nRun '${PROGRAM} ${command} --help' for more information`;
}

/** docker's toStatusError: start failures map to 126 (not executable) and 127 (not found), others to 125. */
export function startFailure(err: unknown, command = "run"): StatusError {
  const msg = describeError(err);
  if (/executable file not found|no such file or directory|system cannot find the file specified/.test(msg)) {
    return new StatusError(127, withHelp(msg, command));
  }
  if (/permission denied|is a directory/.test(msg)) return new StatusError(126, withHelp(msg, command));
  return new StatusError(125, withHelp(msg, command));
}

async function pullForCreate(cli: Cli, image: string, spec: ContainerSpec): Promise<void> {
  const registryAuth = await registryAuthForImage(cli, image);
  const o: { registryAuth: string; platform?: string } = { registryAuth };
  if (spec.platform) o.platform = spec.platform;
  const progress = await cli.client.imagePull(image, o);
  await displayJsonMessages(progress, spec.quiet ? discardOut() : cli.err);
}

/** Creates the container (pulling the image when missing, per `--pull`); returns its id. */
export async function createContainer(cli: Cli, spec: ContainerSpec): Promise<string> {
  let cidFd: number | undefined;
  if (spec.cidfile) {
    if (existsSync(spec.cidfile))
      throw new StatusError(1, `container ID file found, make sure the other container isn't running or delete ${spec.cidfile}`);
    try {
      cidFd = openSync(spec.cidfile, "w", 0o644);
    } catch (e) {
      throw new StatusError(1, `failed to create the container ID file: ${(e as Error).message}`);
    }
  }
  let written = false;
  try {
    const image = spec.body.Image ?? "";
    let named: string | undefined;
    try {
      named = familiarString(withDefaultTag(parseReference(image)));
    } catch {
      named = undefined;
    }
    if (spec.pull === "always") await pullForCreate(cli, image, spec);
    // A TTY starts at this terminal's size, as the docker CLI asks (HostConfig.ConsoleSize).
    const out = cli.out.stream as NodeJS.WriteStream;
    if (spec.body.Tty && cli.out.isTTY && out.rows && out.columns && spec.body.HostConfig)
      spec.body.HostConfig.ConsoleSize = [out.rows, out.columns];
    const o: { name?: string; platform?: string } = {};
    if (spec.name) o.name = spec.name;
    if (spec.platform) o.platform = spec.platform;
    let res: Awaited<ReturnType<typeof cli.client.containerCreate>>;
    try {
      res = await cli.client.containerCreate(spec.body, o);
    } catch (e) {
      if (!(isNotFound(e) && named !== undefined && spec.pull === "missing")) throw e;
      if (!spec.quiet) await cli.eprintln(`Unable to find image '${named}' locally`);
      await pullForCreate(cli, image, spec);
      res = await cli.client.containerCreate(spec.body, o);
    }
    const warnings = [...(res.Warnings ?? [])];
    const dns = spec.body.HostConfig?.Dns ?? [];
    if (dns.some((d) => d.startsWith("127.") || d === "::1")) {
      warnings.push(`Localhost DNS setting (--dns=${dns.find((d) => d.startsWith("127.") || d === "::1")}) may fail in containers.`);
    }
    for (const w of warnings) await cli.eprintln(`WARNING: ${w}`);
    if (cidFd !== undefined) {
      writeSync(cidFd, res.Id);
      written = true;
    }
    return res.Id;
  } finally {
    if (cidFd !== undefined) {
      closeSync(cidFd);
      if (!written) rmSync(spec.cidfile, { force: true });
    }
  }
}

function specFrom(cli: Cli, inv: Parameters<NonNullable<Command["run"]>>[1], detach: boolean, command: string): ContainerSpec {
  try {
    return buildContainerSpec(inv.flags, inv.args, { detach, env: cli.env });
  } catch (e) {
    if (e instanceof ContainerOptionsError) throw new StatusError(125, withHelp(e.message, command));
    throw e;
  }
}

export const createCommand: Command = {
  name: "create",
  usage: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
  short: "Create a new container",
  aliasPaths: ["container create", "create"],
  args: { min: 1 },
  stopAtFirstPositional: true,
  flags: CONTAINER_FLAGS.map((f) => (f.long === "pull" ? { ...f, help: 'Pull image before creating ("always", "|missing", "never")' } : f)),
  async run(cli, inv) {
    const spec = specFrom(cli, inv, false, "create");
    const id = await createContainer(cli, spec);
    await cli.println(id);
    return 0;
  },
};

/** Options of `berth run` beyond the container spec. */
export interface RunOptions {
  detach: boolean;
  detachKeys: string;
  sigProxy: boolean;
}

/** docker run: create, attach before start, wait registration, start, stream, exit status. */
export async function runContainer(cli: Cli, spec: ContainerSpec, opts: RunOptions): Promise<number> {
  const config = spec.body;
  if (!opts.detach) {
    if (config.Tty && config.AttachStdin && !cli.in.isTTY) throw new StatusError(1, "the input device is not a TTY");
  }
  let id: string;
  try {
    id = await createContainer(cli, spec);
  } catch (e) {
    if (e instanceof StatusError) throw e;
    throw startFailure(e);
  }
  const stopProxy = opts.sigProxy ? proxySignals((s) => cli.client.containerKill(id, s)) : () => {};
  try {
    const attach = Boolean(config.AttachStdin || config.AttachStdout || config.AttachStderr);
    let conn: Awaited<ReturnType<typeof cli.client.containerAttach>> | undefined;
    if (attach) {
      const detachKeys = opts.detachKeys || cli.configFile().data.detachKeys || "";
      const ao: Parameters<typeof cli.client.containerAttach>[1] = {
        stream: true,
        stdin: Boolean(config.AttachStdin),
        stdout: Boolean(config.AttachStdout),
        stderr: Boolean(config.AttachStderr),
      };
      if (detachKeys) ao.detachKeys = detachKeys;
      conn = await cli.client.containerAttach(id, ao);
    }
    const { result: waitResult } = await cli.client.containerWait(id, spec.autoRemove ? "removed" : "next-exit");
    const status = waitResult.then(
      (r: ContainerWaitResponse) => {
        if (r.Error?.Message) {
          void cli.eprintln(`Error waiting for container: ${r.Error.Message}`);
          return 125;
        }
        return r.StatusCode;
      },
      async (e: unknown) => {
        await cli.eprintln(`error waiting for container: ${describeError(e)}`);
        return 125;
      },
    );
    try {
      await cli.client.containerStart(id);
    } catch (e) {
      conn?.close();
      if (spec.autoRemove) await Promise.race([status, new Promise((r) => setTimeout(r, 5000))]);
      throw startFailure(e);
    }
    if (!attach || !conn) {
      await cli.println(id);
      return 0;
    }
    let stopResize = () => {};
    if (config.Tty && cli.out.isTTY) stopResize = monitorTtySize(cli, (h, w) => cli.client.containerResize(id, h, w));
    try {
      const streams = streamHijacked(cli, {
        conn,
        tty: Boolean(config.Tty),
        stdin: Boolean(config.AttachStdin),
        stdout: config.AttachStdout ? cli.out.stream : undefined,
        stderr: config.AttachStderr ? (config.Tty ? cli.out.stream : cli.err.stream) : undefined,
        detachKeys: opts.detachKeys || cli.configFile().data.detachKeys,
      });
      const first = await Promise.race([
        streams.then((r) => ({ kind: "streams" as const, r })),
        status.then((code) => ({ kind: "status" as const, code })),
      ]);
      if (first.kind === "streams") {
        if (first.r.detached) {
          conn.close();
          return 0;
        }
        return await status;
      }
      if (!config.AttachStdout && !config.AttachStderr) conn.close();
      else await Promise.race([streams, new Promise((r) => setTimeout(r, 2000))]);
      return first.code;
    } finally {
      stopResize();
      conn.close();
    }
  } finally {
    stopProxy();
  }
}

export const runCommand: Command = {
  name: "run",
  usage: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
  short: "Create and run a new container from an image",
  aliasPaths: ["container run", "run"],
  args: { min: 1 },
  stopAtFirstPositional: true,
  flags: [...CONTAINER_FLAGS, ...RUN_ONLY_FLAGS].sort((a, b) => a.long.localeCompare(b.long)),
  async run(cli, inv) {
    const detach = inv.flags.bool("detach");
    if (detach && inv.flags.list("attach").length > 0)
      throw new StatusError(1, "conflicting options: cannot specify both --attach and --detach");
    const spec = specFrom(cli, inv, detach, "run");
    return await runContainer(cli, spec, {
      detach,
      detachKeys: inv.flags.string("detach-keys"),
      sigProxy: inv.flags.has("sig-proxy") ? inv.flags.bool("sig-proxy") : true,
    });
  },
};
