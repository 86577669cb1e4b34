/** Container commands that act on a list of containers or print one small result. */
import { isNotFound } from "../base/mod.ts";
import type { Resources, RestartPolicy } from "../client/mod.ts";
import { type Cli, describeError, StatusError } from "./cli.ts";
import { writeFileFromStream } from "./cmd_image_io.ts";
import type { Command } from "./command.ts";
import { ContainerOptionsError, parseRestartPolicy } from "./container_opts.ts";
import { TabWriter } from "./format/mod.ts";
import { inspectAndPrint } from "./inspect.ts";
import { filterFlag, INSPECT_FORMAT_HELP, parseFilters } from "./opts.ts";
import { confirm } from "./prompt.ts";
import { humanSize } from "./units.ts";
import { pipeline } from "node:stream/promises";
import { invalidArgument } from "../base/mod.ts";

/** Runs `op` on every container at once (docker's parallelOperation) and reports in order. */
async function eachContainer(
  cli: Cli,
  names: string[],
  op: (name: string) => Promise<void>,
  options: { ignoreNotFound?: boolean } = {},
): Promise<void> {
  const results = await Promise.allSettled(names.map((n) => op(n)));
  const errors: string[] = [];
  for (const [i, r] of results.entries()) {
    if (r.status === "fulfilled") await cli.println(names[i]);
    else if (options.ignoreNotFound && isNotFound(r.reason)) await cli.eprintln(describeError(r.reason));
    else errors.push(describeError(r.reason));
  }
  if (errors.length > 0) throw new StatusError(1, errors.join("\n"));
}

const ALIAS = (name: string, extra: string[] = []) => [`container ${name}`, ...extra.map((e) => `container ${e}`), name];

export const stopCommand: Command = {
  name: "stop",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  short: "Stop one or more running containers",
  aliasPaths: ALIAS("stop"),
  args: { min: 1 },
  flags: [
    { long: "signal", short: "s", kind: "string", help: "Signal to send to the container" },
    { long: "timeout", short: "t", kind: "int", help: "Seconds to wait before killing the container" },
    { long: "time", kind: "int", help: "Seconds to wait before killing the container", hidden: true },
  ],
  async run(cli, { flags, args }) {
    const o: { signal?: string; timeout?: number } = {};
    if (flags.string("signal")) o.signal = flags.string("signal");
    if (flags.has("timeout")) o.timeout = flags.number("timeout", 0);
    else if (flags.has("time")) o.timeout = flags.number("time", 0);
    await eachContainer(cli, args, (c) => cli.client.containerStop(c, o));
    return 0;
  },
};

export const restartCommand: Command = {
  ...stopCommand,
  name: "restart",
  short: "Restart one or more containers",
  aliasPaths: ALIAS("restart"),
  async run(cli, { flags, args }) {
    const o: { signal?: string; timeout?: number } = {};
    if (flags.string("signal")) o.signal = flags.string("signal");
    if (flags.has("timeout")) o.timeout = flags.number("timeout", 0);
    else if (flags.has("time")) o.timeout = flags.number("time", 0);
    const errors: string[] = [];
    for (const c of args) {
      try {
        await cli.client.containerRestart(c, o);
        await cli.println(c);
      } catch (e) {
        errors.push(describeError(e));
      }
    }
    if (errors.length) throw new StatusError(1, errors.join("\n"));
    return 0;
  },
};

export const killCommand: Command = {
  name: "kill",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  short: "Kill one or more running containers",
  aliasPaths: ALIAS("kill"),
  args: { min: 1 },
  flags: [{ long: "signal", short: "s", kind: "string", help: "Signal to send to the container" }],
  async run(cli, { flags, args }) {
    await eachContainer(cli, args, (c) => cli.client.containerKill(c, flags.string("signal")));
    return 0;
  },
};

export const rmCommand: Command = {
  name: "rm",
  aliases: ["remove"],
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  short: "Remove one or more containers",
  aliasPaths: ["container rm", "container remove", "rm"],
  args: { min: 1 },
  flags: [
    { long: "force", short: "f", kind: "bool", help: "Force the removal of a running container (uses SIGKILL)" },
    { long: "link", short: "l", kind: "bool", help: "Remove the specified link" },
    { long: "volumes", short: "v", kind: "bool", help: "Remove anonymous volumes associated with the container" },
  ],
  async run(cli, { flags, args }) {
    await eachContainer(
      cli,
      args,
      async (c) => {
        const id = c.replace(/^\/+|\/+$/g, "");
        if (id === "") throw invalidArgument("container name cannot be empty");
        await cli.client.containerRemove(id, { force: flags.bool("force"), volumes: flags.bool("volumes"), link: flags.bool("link") });
      },
      { ignoreNotFound: flags.bool("force") },
    );
    return 0;
  },
};

export const pauseCommand: Command = {
  name: "pause",
  usage: "CONTAINER [CONTAINER...]",
  short: "Pause all processes within one or more containers",
  aliasPaths: ALIAS("pause"),
  args: { min: 1 },
  flags: [],
  async run(cli, { args }) {
    await eachContainer(cli, args, (c) => cli.client.containerPause(c));
    return 0;
  },
};

export const unpauseCommand: Command = {
  name: "unpause",
  usage: "CONTAINER [CONTAINER...]",
  short: "Unpause all processes within one or more containers",
  aliasPaths: ALIAS("unpause"),
  args: { min: 1 },
  flags: [],
  async run(cli, { args }) {
    await eachContainer(cli, args, (c) => cli.client.containerUnpause(c));
    return 0;
  },
};

export const waitCommand: Command = {
  name: "wait",
  usage: "CONTAINER [CONTAINER...]",
  short: "Block until one or more containers stop, then print their exit codes",
  aliasPaths: ALIAS("wait"),
  args: { min: 1 },
  flags: [],
  async run(cli, { args }) {
    const errors: string[] = [];
    for (const c of args) {
      try {
        const { result } = await cli.client.containerWait(c);
        const r = await result;
        await cli.println(String(r.StatusCode));
      } catch (e) {
        errors.push(describeError(e));
      }
    }
    if (errors.length) throw new StatusError(1, errors.join("\n"));
    return 0;
  },
};

export const renameCommand: Command = {
  name: "rename",
  usage: "CONTAINER NEW_NAME",
  short: "Rename a container",
  aliasPaths: ALIAS("rename"),
  args: { exact: 2 },
  flags: [],
  async run(cli, { args }) {
    const oldName = (args[0] as string).trim();
    const newName = (args[1] as string).trim();
    if (!oldName || !newName) throw new StatusError(1, "Error: Neither old nor new names may be empty");
    try {
      await cli.client.containerRename(oldName, newName);
    } catch (e) {
      await cli.eprintln(describeError(e));
      throw new StatusError(1, `Error: failed to rename container named ${oldName}`);
    }
    return 0;
  },
};

export const topCommand: Command = {
  name: "top",
  usage: "CONTAINER [ps OPTIONS]",
  short: "Display the running processes of a container",
  aliasPaths: ALIAS("top"),
  args: { min: 1 },
  stopAtFirstPositional: true,
  flags: [],
  async run(cli, { args }) {
    const top = await cli.client.containerTop(args[0] as string, args.slice(1).join(" "));
    const tw = new TabWriter({ minWidth: 20, tabWidth: 1, padding: 3, padChar: " " });
    tw.write(`${top.Titles.join("\t")}\n`);
    for (const p of top.Processes ?? []) tw.write(`${p.join("\t")}\n`);
    await cli.write(tw.flush());
    return 0;
  },
};

/**
 * Go's sortorder.NaturalLess for port lines: runs of digits compare as numbers, everything else
 * byte by byte (so `0.0.0.0:P` comes before `[::]:P`, as in the docker CLI).
 */
export function naturalLess(a: string, b: string): number {
  const isDigit = (c: number) => c >= 48 && c <= 57;
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(j);
    if (isDigit(ca) && isDigit(cb)) {
      let ei = i;
      let ej = j;
      while (ei < a.length && isDigit(a.charCodeAt(ei))) ei++;
      while (ej < b.length && isDigit(b.charCodeAt(ej))) ej++;
      const na = a.slice(i, ei).replace(/^0+(?=\d)/, "");
      const nb = b.slice(j, ej).replace(/^0+(?=\d)/, "");
      if (na.length !== nb.length) return na.length - nb.length;
      if (na !== nb) return na < nb ? -1 : 1;
      i = ei;
      j = ej;
      continue;
    }
    if (ca !== cb) return ca - cb;
    i++;
    j++;
  }
  return a.length - i - (b.length - j);
}

function joinHostPort(host: string, port: string): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export const portCommand: Command = {
  name: "port",
  usage: "CONTAINER [PRIVATE_PORT[/PROTO]]",
  short: "List port mappings or a specific mapping for the container",
  aliasPaths: ALIAS("port"),
  args: { min: 1, max: 2 },
  flags: [],
  async run(cli, { args }) {
    const c = await cli.client.containerInspect(args[0] as string);
    const ports = c.NetworkSettings.Ports ?? {};
    const out: string[] = [];
    if (args[1]) {
      const [port = "", protoRaw] = (args[1] as string).split("/");
      const proto = protoRaw || "tcp";
      if (!/^\d+$/.test(port) || Number(port) > 65535) {
        throw new StatusError(1, `Error: invalid port (${port}): strconv.ParseUint: parsing "${port}": invalid syntax`);
      }
      const fronts = ports[`${port}/${proto}`];
      if (!fronts || fronts.length === 0) throw new StatusError(1, `Error: No public port '${args[1]}' published for ${args[0]}`);
      for (const f of fronts) out.push(joinHostPort(f.HostIp ?? "", f.HostPort ?? ""));
    } else {
      for (const [from, fronts] of Object.entries(ports)) {
        for (const f of fronts ?? []) out.push(`${from} -> ${joinHostPort(f.HostIp ?? "", f.HostPort ?? "")}`);
      }
    }
    if (out.length > 0) await cli.println(out.sort(naturalLess).join("\n"));
    return 0;
  },
};

export const diffCommand: Command = {
  name: "diff",
  usage: "CONTAINER",
  short: "Inspect changes to files or directories on a container's filesystem",
  aliasPaths: ALIAS("diff"),
  args: { exact: 1 },
  flags: [],
  async run(cli, { args }) {
    if (!args[0]) throw new StatusError(1, "Container name cannot be empty");
    const changes = await cli.client.containerChanges(args[0]);
    const kind = ["C", "A", "D"];
    let text = "";
    for (const c of changes) text += `${kind[c.Kind] ?? "?"} ${c.Path}\n`;
    await cli.write(text);
    return 0;
  },
};

export const commitCommand: Command = {
  name: "commit",
  usage: "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
  short: "Create a new image from a container's changes",
  aliasPaths: ALIAS("commit"),
  args: { min: 1, max: 2 },
  stopAtFirstPositional: true,
  flags: [
    { long: "author", short: "a", kind: "string", help: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
    { long: "change", short: "c", kind: "list", help: "Apply Dockerfile instruction to the created image" },
    { long: "message", short: "m", kind: "string", help: "Commit message" },
    { long: "pause", short: "p", kind: "bool", help: "Pause container during commit", defaultText: "true" },
  ],
  async run(cli, { flags, args }) {
    const o: Parameters<typeof cli.client.containerCommit>[1] = {
      comment: flags.string("message"),
      author: flags.string("author"),
      changes: flags.list("change"),
      pause: flags.has("pause") ? flags.bool("pause") : true,
    };
    if (args[1]) o.reference = args[1];
    const r = await cli.client.containerCommit(args[0] as string, o);
    await cli.println(r.Id);
    return 0;
  },
};

export const exportCommand: Command = {
  name: "export",
  usage: "[OPTIONS] CONTAINER",
  short: "Export a container's filesystem as a tar archive",
  aliasPaths: ALIAS("export"),
  args: { exact: 1 },
  flags: [{ long: "output", short: "o", kind: "string", help: "Write to a file, instead of STDOUT" }],
  async run(cli, { flags, args }) {
    const output = flags.string("output");
    if (!output && cli.out.isTTY) throw new StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect");
    const body = await cli.client.containerExport(args[0] as string);
    if (output) {
      try {
        await writeFileFromStream(output, body);
      } catch (e) {
        throw new StatusError(1, `failed to export container: ${(e as Error).message}`);
      }
    } else await pipeline(body, cli.out.stream, { end: false });
    return 0;
  },
};

const UPDATE_FLAGS: Command["flags"] = [
  {
    long: "blkio-weight",
    kind: "uint",
    typeName: "uint16",
    help: "Block IO (relative weight), between 10 and 1000, or 0 to disable",
    defaultText: "0",
  },
  { long: "cpu-period", kind: "int", help: "Limit CPU CFS (Completely Fair Scheduler) period" },
  { long: "cpu-quota", kind: "int", help: "Limit CPU CFS (Completely Fair Scheduler) quota" },
  { long: "cpu-rt-period", kind: "int", help: "Limit the CPU real-time period in microseconds" },
  { long: "cpu-rt-runtime", kind: "int", help: "Limit the CPU real-time runtime in microseconds" },
  { long: "cpu-shares", short: "c", kind: "int", help: "CPU shares (relative weight)" },
  { long: "cpus", kind: "decimal", help: "Number of CPUs" },
  { long: "cpuset-cpus", kind: "string", help: "CPUs in which to allow execution (0-3, 0,1)" },
  { long: "cpuset-mems", kind: "string", help: "MEMs in which to allow execution (0-3, 0,1)" },
  { long: "kernel-memory", kind: "bytes", help: "Kernel memory limit (deprecated)", hidden: true },
  { long: "memory", short: "m", kind: "bytes", help: "Memory limit" },
  { long: "memory-reservation", kind: "bytes", help: "Memory soft limit" },
  { long: "memory-swap", kind: "bytes", help: "Swap limit equal to memory plus swap: -1 to enable unlimited swap" },
  { long: "pids-limit", kind: "int", help: "Tune container pids limit (set -1 for unlimited)" },
  { long: "restart", kind: "string", help: "Restart policy to apply when a container exits" },
];

export const updateCommand: Command = {
  name: "update",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  short: "Update configuration of one or more containers",
  aliasPaths: ALIAS("update"),
  args: { min: 1 },
  flags: UPDATE_FLAGS,
  async run(cli, { flags, args }) {
    const changed = (UPDATE_FLAGS ?? []).filter((f) => flags.has(f.long));
    if (changed.length === 0) throw new StatusError(1, "you must provide one or more flags when using this command");
    const body: Resources & { RestartPolicy?: RestartPolicy } = {
      BlkioWeight: flags.number("blkio-weight", 0),
      CpusetCpus: flags.string("cpuset-cpus"),
      CpusetMems: flags.string("cpuset-mems"),
      CpuShares: flags.number("cpu-shares", 0),
      Memory: flags.number("memory", 0),
      MemoryReservation: flags.number("memory-reservation", 0),
      MemorySwap: flags.number("memory-swap", 0),
      KernelMemory: flags.number("kernel-memory", 0),
      CpuPeriod: flags.number("cpu-period", 0),
      CpuQuota: flags.number("cpu-quota", 0),
      CpuRealtimePeriod: flags.number("cpu-rt-period", 0),
      CpuRealtimeRuntime: flags.number("cpu-rt-runtime", 0),
      NanoCpus: Math.round((flags.number("cpus") ?? 0) * 1e9),
    };
    if (flags.number("pids-limit", 0) !== 0) body.PidsLimit = flags.number("pids-limit", 0);
    if (flags.string("restart")) {
      try {
        body.RestartPolicy = parseRestartPolicy(flags.string("restart"));
      } catch (e) {
        if (e instanceof ContainerOptionsError) throw new StatusError(1, e.message);
        throw e;
      }
    }
    const warns: string[] = [];
    const errs: string[] = [];
    for (const c of args) {
      try {
        const r = await cli.client.containerUpdate(c, body);
        await cli.println(c);
        warns.push(...(r?.Warnings ?? []));
      } catch (e) {
        errs.push(describeError(e));
      }
    }
    if (warns.length) await cli.println(warns.join("\n"));
    if (errs.length) throw new StatusError(1, errs.join("\n"));
    return 0;
  },
};

export const containerPruneCommand: Command = {
  name: "prune",
  usage: "[OPTIONS]",
  short: "Remove all stopped containers",
  args: "none",
  flags: [
    filterFlag('Provide filter values (e.g. "until=<timestamp>")', null),
    { long: "force", short: "f", kind: "bool", help: "Do not prompt for confirmation" },
  ],
  async run(cli, { flags }) {
    if (
      !flags.bool("force") &&
      !(await confirm(cli, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"))
    ) {
      throw new StatusError(1, "");
    }
    const report = await cli.client.containersPrune(parseFilters(flags.list("filter")));
    let reclaimed = 0;
    if ((report.ContainersDeleted ?? []).length > 0) {
      await cli.println(`Deleted Containers:\n${(report.ContainersDeleted ?? []).join("\n")}\n`);
      reclaimed = report.SpaceReclaimed ?? 0;
    }
    await cli.println(`Total reclaimed space: ${humanSize(reclaimed)}`);
    return 0;
  },
};

export const containerInspectCommand: Command = {
  name: "inspect",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  short: "Display detailed information on one or more containers",
  args: { min: 1 },
  flags: [
    { long: "format", short: "f", kind: "string", help: INSPECT_FORMAT_HELP },
    { long: "size", short: "s", kind: "bool", help: "Display total file sizes" },
  ],
  async run(cli, { flags, args }) {
    await inspectAndPrint(cli, args, flags.string("format"), (ref) =>
      cli.client.inspectRaw("container", ref, { size: flags.bool("size") }),
    );
    return 0;
  },
};
