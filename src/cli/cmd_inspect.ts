import { isNotFound } from "../base/mod.ts";
import type { Cli } from "./cli.ts";
import type { Command } from "./command.ts";
import { type Inspected, inspectAndPrint } from "./inspect.ts";
import { INSPECT_FORMAT_HELP } from "./opts.ts";

type Kind = "container" | "image" | "network" | "volume";
const KINDS: Kind[] = ["container", "image", "network", "volume"];

/** Inspects a reference as any object type, in docker's order (container, image, network, volume). */
async function inspectAny(cli: Cli, ref: string, type: string, size: boolean): Promise<Inspected> {
  const kinds = type ? KINDS.filter((k) => k === type) : KINDS;
  for (const k of kinds) {
    try {
      const r = await cli.client.inspectRaw(k, ref, { size });
      if (size && k !== "container") await cli.eprintln(`WARNING: --size ignored for ${k}`);
      return r;
    } catch (e) {
      const msg = (e as Error).message;
      if (!type && (isNotFound(e) || msg.includes("not supported") || msg.includes("invalid reference format"))) continue;
      throw e;
    }
  }
  throw new Error(`Error: No such object: ${ref}`);
}

export const inspectCommand: Command = {
  name: "inspect",
  usage: "[OPTIONS] NAME|ID [NAME|ID...]",
  short: "Return low-level information on Docker objects",
  args: { min: 1 },
  flags: [
    { long: "format", short: "f", kind: "string", help: INSPECT_FORMAT_HELP },
    { long: "size", short: "s", kind: "bool", help: "Display total file sizes if the type is container" },
    { long: "type", kind: "string", help: "Only inspect objects of the given type" },
  ],
  async run(cli, { flags, args }) {
    const type = flags.string("type");
    const valid = ["", "config", "container", "image", "node", "network", "plugin", "secret", "service", "task", "volume"];
    if (!valid.includes(type)) throw new Error(`"${type}" is not a valid value for --type`);
    await inspectAndPrint(cli, args, flags.string("format"), (ref) => inspectAny(cli, ref, type, flags.bool("size")));
    return 0;
  },
};
