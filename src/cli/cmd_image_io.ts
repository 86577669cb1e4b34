/** Moving images in and out as files: save, load, import. */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { invalidArgument } from "../base/mod.ts";
import { decodeJsonStream } from "../client/mod.ts";
import type { Cli } from "./cli.ts";
import type { Command } from "./command.ts";
import { displayJsonMessages } from "./jsonmessage.ts";
import { PLATFORM_FLAG } from "./opts.ts";

/** Opens a file for reading, failing with Go's wording (`open x: no such file or directory`). */
export async function openInput(path: string): Promise<Readable> {
  try {
    const fh = await open(path, "r");
    return fh.createReadStream();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file or directory" : code === "EACCES" ? "permission denied" : (e as Error).message;
    throw invalidArgument(`open ${path}: ${why}`);
  }
}

/** Streams `body` into `path` atomically (temp file in the same directory, then rename), mode 0600. */
export async function writeFileFromStream(path: string, body: Readable): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await pipeline(body, createWriteStream(tmp, { mode: 0o600 }));
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export const saveCommand: Command = {
  name: "save",
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
  aliasPaths: ["image save", "save"],
  args: { min: 1 },
  flags: [
    { long: "output", short: "o", kind: "string", help: "Write to a file, instead of STDOUT" },
    {
      long: "platform",
      kind: "string",
      help: 'Save only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")',
    },
  ],
  async run(cli, { flags, args }) {
    await runSave(cli, args, { output: flags.string("output"), platform: flags.string("platform") });
    return 0;
  },
};

/** Saves images to a file or to stdout (never to a terminal). */
export async function runSave(cli: Cli, images: string[], opts: { output: string; platform: string }): Promise<void> {
  if (!opts.output && cli.out.isTTY) throw invalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect");
  const o: { platform?: string } = {};
  if (opts.platform) o.platform = opts.platform;
  const body = await cli.client.imageSave(images, o);
  if (opts.output) {
    try {
      await writeFileFromStream(opts.output, body);
    } catch (e) {
      throw invalidArgument(`failed to save image: ${(e as Error).message}`);
    }
    return;
  }
  await pipeline(body, cli.out.stream, { end: false });
}

export const loadCommand: Command = {
  name: "load",
  usage: "[OPTIONS]",
  short: "Load an image from a tar archive or STDIN",
  aliasPaths: ["image load", "load"],
  args: "none",
  flags: [
    { long: "input", short: "i", kind: "string", help: "Read from tar archive file, instead of STDIN" },
    {
      long: "platform",
      kind: "string",
      help: 'Load only the given platform variant. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")',
    },
    { long: "quiet", short: "q", kind: "bool", help: "Suppress the load output" },
  ],
  async run(cli, { flags }) {
    await runLoad(cli, { input: flags.string("input"), quiet: flags.bool("quiet"), platform: flags.string("platform") });
    return 0;
  },
};

/** Loads a docker/OCI archive from a file or stdin. */
export async function runLoad(cli: Cli, opts: { input: string; quiet: boolean; platform: string }): Promise<void> {
  let input: Readable;
  if (opts.input === "") {
    if (cli.in.isTTY) throw invalidArgument("requested load from stdin, but stdin is empty");
    input = cli.in.stream;
  } else input = await openInput(opts.input);
  const o: { quiet?: boolean; platform?: string } = { quiet: opts.quiet || !cli.out.isTTY };
  if (opts.platform) o.platform = opts.platform;
  const res = await cli.client.imageLoad(input, o);
  if (res.json) {
    await displayJsonMessages(decodeJsonStream(res.body), cli.out);
  } else await pipeline(res.body, cli.out.stream, { end: false });
}

export const importCommand: Command = {
  name: "import",
  usage: "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
  short: "Import the contents from a tarball to create a filesystem image",
  aliasPaths: ["image import", "import"],
  args: { min: 1 },
  flags: [
    { long: "change", short: "c", kind: "list", help: "Apply Dockerfile instruction to the created image" },
    { long: "message", short: "m", kind: "string", help: "Set commit message for imported image" },
    PLATFORM_FLAG,
  ],
  async run(cli, { flags, args }) {
    const source = args[0] as string;
    let src: { stream: Readable } | { url: string };
    if (source === "-") src = { stream: cli.in.stream };
    else if (source.startsWith("http://") || source.startsWith("https://")) src = { url: source };
    else src = { stream: await openInput(source) };
    const o: { reference?: string; message?: string; changes?: string[]; platform?: string } = { changes: flags.list("change") };
    if (args[1]) o.reference = args[1];
    if (flags.string("message")) o.message = flags.string("message");
    if (flags.string("platform")) o.platform = flags.string("platform");
    const progress = await cli.client.imageImport(src, o);
    await displayJsonMessages(progress, cli.out);
    return 0;
  },
};
