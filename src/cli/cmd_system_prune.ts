/** `berth system prune`: containers, networks, (volumes), images and build cache in one go. */
import { isNotFound } from "../base/mod.ts";
import { DaemonError } from "../client/mod.ts";
import { StatusError } from "./cli.ts";
import { pruneImages } from "./cmd_image_misc.ts";
import type { Command } from "./command.ts";
import { filterFlag, parseFilters } from "./opts.ts";
import { confirm } from "./prompt.ts";
import { humanSize } from "./units.ts";

export const systemPruneCommand: Command = {
  name: "prune",
  usage: "[OPTIONS]",
  short: "Remove unused data",
  args: "none",
  flags: [
    { long: "all", short: "a", kind: "bool", help: "Remove all unused images not just dangling ones" },
    filterFlag('Provide filter values (e.g. "label=<key>=<value>")', null),
    { long: "force", short: "f", kind: "bool", help: "Do not prompt for confirmation" },
    { long: "volumes", kind: "bool", help: "Prune anonymous volumes" },
  ],
  async run(cli, { flags }) {
    const all = flags.bool("all");
    const volumes = flags.bool("volumes");
    const lines = ["  - all stopped containers", "  - all networks not used by at least one container"];
    if (volumes) lines.push("  - all anonymous volumes not used by at least one container");
    lines.push(all ? "  - all images without at least one container associated to them" : "  - all dangling images");
    lines.push(all ? "  - all build cache" : "  - unused build cache");
    if (
      !flags.bool("force") &&
      !(await confirm(cli, `WARNING! This will remove:\n${lines.join("\n")}\n\nAre you sure you want to continue?`))
    ) {
      throw new StatusError(1, "");
    }
    const filterValues = flags.list("filter");
    let reclaimed = 0;
    const c = await cli.client.containersPrune(parseFilters(filterValues));
    if ((c.ContainersDeleted ?? []).length) await cli.println(`Deleted Containers:\n${(c.ContainersDeleted ?? []).join("\n")}\n`);
    reclaimed += c.SpaceReclaimed ?? 0;
    try {
      const n = await cli.client.networksPrune(parseFilters(filterValues));
      if ((n.NetworksDeleted ?? []).length) await cli.println(`Deleted Networks:\n${(n.NetworksDeleted ?? []).join("\n")}\n`);
    } catch (e) {
      // A daemon without network routes still prunes the rest.
      if (!(e instanceof DaemonError && isNotFound(e))) throw e;
    }
    if (volumes) {
      const v = await cli.client.volumesPrune(parseFilters(filterValues));
      if ((v.VolumesDeleted ?? []).length) await cli.println(`Deleted Volumes:\n${(v.VolumesDeleted ?? []).join("\n")}\n`);
      reclaimed += v.SpaceReclaimed ?? 0;
    }
    const i = await pruneImages(cli, { all, force: true, filters: filterValues });
    if (i?.output) await cli.println(i.output);
    reclaimed += i?.reclaimed ?? 0;
    try {
      const b = await cli.client.buildPrune({ all, filters: parseFilters(filterValues) });
      if ((b.CachesDeleted ?? []).length) await cli.println(`Deleted build cache objects:\n${(b.CachesDeleted ?? []).join("\n")}\n`);
      reclaimed += b.SpaceReclaimed ?? 0;
    } catch (e) {
      if (!(e instanceof DaemonError && isNotFound(e))) throw e;
    }
    await cli.println(`Total reclaimed space: ${humanSize(reclaimed)}`);
    return 0;
  },
};
