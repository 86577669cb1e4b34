import { Writable } from "node:stream";
import { invalidArgument } from "../base/mod.ts";
import { type Reference, familiarString, parseReference, referenceString } from "../oci/mod.ts";
import { registryAuthForImage, withLoginRetry } from "./auth.ts";
import type { Cli, OutStream } from "./cli.ts";
import type { Command } from "./command.ts";
import { displayJsonMessages } from "./jsonmessage.ts";
import { PLATFORM_FLAG } from "./opts.ts";

/** Options of `berth pull`. */
export interface PullOptions {
  remote: string;
  all: boolean;
  platform: string;
  quiet: boolean;
}

/** An output that drops everything (docker's `streams.NewOut(io.Discard)`). */
export function discardOut(): OutStream {
  return { stream: new Writable({ write: (_c, _e, cb) => cb() }), isTTY: false };
}

/**
 * Pulls an image as `docker pull` does: `latest` added (and announced) when no tag is given,
 * credentials of the image's registry sent as X-Registry-Auth, progress rendered, then the
 * fully qualified reference printed.
 */
export async function runPull(cli: Cli, opts: PullOptions): Promise<void> {
  let ref: Reference = parseReference(opts.remote);
  const nameOnly = ref.tag === undefined && ref.digest === undefined;
  if (opts.all && !nameOnly) throw invalidArgument("tag can't be used with --all-tags/-a");
  if (!opts.all && nameOnly) {
    ref = { ...ref, tag: "latest" };
    if (!opts.quiet) await cli.println("Using default tag: latest");
  }
  const registryAuth = await registryAuthForImage(cli, opts.remote);
  const options: { all?: boolean; platform?: string; registryAuth?: string } = { registryAuth };
  if (opts.all) options.all = true;
  if (opts.platform) options.platform = opts.platform;
  const progress = await withLoginRetry(cli, opts.remote, "pull", options, (o) => cli.client.imagePull(familiarString(ref), o));
  await displayJsonMessages(progress, opts.quiet ? discardOut() : cli.out);
  await cli.println(referenceString(ref));
}

export const pullCommand: Command = {
  name: "pull",
  usage: "[OPTIONS] NAME[:TAG|@DIGEST]",
  short: "Download an image from a registry",
  aliasPaths: ["image pull", "pull"],
  args: { exact: 1 },
  flags: [
    { long: "all-tags", short: "a", kind: "bool", help: "Download all tagged images in the repository" },
    { long: "disable-content-trust", kind: "bool", help: "Skip image verification", defaultText: "true" },
    PLATFORM_FLAG,
    { long: "quiet", short: "q", kind: "bool", help: "Suppress verbose output" },
  ],
  async run(cli, { flags, args }) {
    await runPull(cli, {
      remote: args[0] as string,
      all: flags.bool("all-tags"),
      platform: flags.string("platform", cli.env.DOCKER_DEFAULT_PLATFORM ?? ""),
      quiet: flags.bool("quiet"),
    });
    return 0;
  },
};
