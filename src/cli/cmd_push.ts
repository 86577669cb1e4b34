import { invalidArgument } from "../base/mod.ts";
import { type Reference, familiarString, parseReference, referenceString } from "../oci/mod.ts";
import { registryAuthForImage, withLoginRetry } from "./auth.ts";
import type { Cli } from "./cli.ts";
import { discardOut } from "./cmd_pull.ts";
import type { Command } from "./command.ts";
import { displayJsonMessages } from "./jsonmessage.ts";

/** Options of `berth push`. */
export interface PushOptions {
  remote: string;
  all: boolean;
  quiet: boolean;
  platform: string;
}

/** Pushes an image as `docker push` does; with `-q` only the reference is printed at the end. */
export async function runPush(cli: Cli, opts: PushOptions): Promise<void> {
  let ref: Reference = parseReference(opts.remote);
  const nameOnly = ref.tag === undefined && ref.digest === undefined;
  if (opts.all && !nameOnly) throw invalidArgument("tag can't be used with --all-tags/-a");
  if (!opts.all && nameOnly) {
    ref = { ...ref, tag: "latest" };
    if (!opts.quiet) await cli.println("Using default tag: latest");
  }
  if (opts.platform) {
    await cli.eprintln(
      "Using --platform pushes only the specified platform manifest of a multi-platform image index.\nOther components, like attestations, will not be included.\nTo push the complete multi-platform image, remove the --platform flag.",
    );
  }
  const registryAuth = await registryAuthForImage(cli, opts.remote);
  const options: { all?: boolean; platform?: string; registryAuth?: string } = { registryAuth };
  if (opts.all) options.all = true;
  if (opts.platform) options.platform = opts.platform;
  const progress = await withLoginRetry(cli, opts.remote, "push", options, (o) => cli.client.imagePush(familiarString(ref), o));
  await displayJsonMessages(progress, opts.quiet ? discardOut() : cli.out);
  if (opts.quiet) await cli.println(referenceString(ref));
}

export const pushCommand: Command = {
  name: "push",
  usage: "[OPTIONS] NAME[:TAG]",
  short: "Upload an image to a registry",
  aliasPaths: ["image push", "push"],
  args: { exact: 1 },
  flags: [
    { long: "all-tags", short: "a", kind: "bool", help: "Push all tags of an image to the repository" },
    { long: "disable-content-trust", kind: "bool", help: "Skip image signing", defaultText: "true" },
    {
      long: "platform",
      kind: "string",
      help: "Push a platform-specific manifest as a single-platform image to the registry.\nImage index won't be pushed, meaning that other manifests, including attestations won't be preserved.\n'os[/arch[/variant]]': Explicit platform (eg. linux/amd64)",
    },
    { long: "quiet", short: "q", kind: "bool", help: "Suppress verbose output" },
  ],
  async run(cli, { flags, args }) {
    await runPush(cli, {
      remote: args[0] as string,
      all: flags.bool("all-tags"),
      quiet: flags.bool("quiet"),
      platform: flags.string("platform"),
    });
    return 0;
  },
};
