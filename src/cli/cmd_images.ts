import type { ImageSummary } from "../client/mod.ts";
import { familiarName, parseReference } from "../oci/mod.ts";
import type { Cli } from "./cli.ts";
import type { Command } from "./command.ts";
import { formatList } from "./listing.ts";
import { addFilter, filterFlag, formatFlag, parseFilters, shortId } from "./opts.ts";
import { goTimeString, humanSize, humanSizeWithPrecision, timeAgo } from "./units.ts";

const DEFAULT_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const DEFAULT_TABLE_DIGEST =
  "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";

/** Column titles of image listings. */
export const IMAGE_HEADERS: Record<string, string> = {
  ID: "IMAGE ID",
  Repository: "REPOSITORY",
  Tag: "TAG",
  Digest: "DIGEST",
  CreatedSince: "CREATED",
  CreatedAt: "CREATED AT",
  Size: "SIZE",
  Containers: "CONTAINERS",
  VirtualSize: "SIZE",
  SharedSize: "SHARED SIZE",
  UniqueSize: "UNIQUE SIZE",
};

/** One row of `berth images`: the fields docker's image formatter offers to templates. */
export class ImageRow {
  readonly #img: ImageSummary;
  readonly #trunc: boolean;
  readonly #repo: string;
  readonly #tag: string;
  readonly #digest: string;
  constructor(img: ImageSummary, trunc: boolean, repo: string, tag: string, digest: string) {
    this.#img = img;
    this.#trunc = trunc;
    this.#repo = repo;
    this.#tag = tag;
    this.#digest = digest;
  }
  get ID(): string {
    return this.#trunc ? shortId(this.#img.Id) : this.#img.Id;
  }
  get Repository(): string {
    return this.#repo;
  }
  get Tag(): string {
    return this.#tag;
  }
  get Digest(): string {
    return this.#digest;
  }
  get CreatedSince(): string {
    if (!this.#img.Created) return "";
    return timeAgo(this.#img.Created);
  }
  get CreatedAt(): string {
    return goTimeString(new Date(this.#img.Created * 1000));
  }
  get Size(): string {
    return humanSizeWithPrecision(this.#img.Size, 3);
  }
  get Containers(): string {
    return this.#img.Containers === -1 ? "N/A" : String(this.#img.Containers);
  }
  get VirtualSize(): string {
    return humanSize(this.#img.Size);
  }
  get SharedSize(): string {
    return this.#img.SharedSize === -1 ? "N/A" : humanSize(this.#img.SharedSize);
  }
  get UniqueSize(): string {
    if (this.#img.Size === -1 || this.#img.SharedSize === -1) return "N/A";
    return humanSize(this.#img.Size - this.#img.SharedSize);
  }
}

function isDangling(img: ImageSummary): boolean {
  const tags = img.RepoTags ?? [];
  const digests = img.RepoDigests ?? [];
  if (tags.length === 0 && digests.length === 0) return true;
  return tags.length === 1 && tags[0] === "<none>:<none>" && digests.length === 1 && digests[0] === "<none>@<none>";
}

/** Expands images into rows, one per repository:tag (and digest), as docker's imageFormat does. */
export function imageRows(images: ImageSummary[], options: { trunc: boolean; digest: boolean; formatHasDigest: boolean }): ImageRow[] {
  const rows: ImageRow[] = [];
  const needDigest = options.digest || options.formatHasDigest;
  for (const img of images) {
    if (isDangling(img)) {
      rows.push(new ImageRow(img, options.trunc, "<none>", "<none>", "<none>"));
      continue;
    }
    const repoTags = new Map<string, string[]>();
    const repoDigests = new Map<string, string[]>();
    for (const s of img.RepoTags ?? []) {
      try {
        const r = parseReference(s);
        if (r.tag === undefined) continue;
        const name = familiarName(r);
        repoTags.set(name, [...(repoTags.get(name) ?? []), r.tag]);
      } catch {
        // docker skips references it cannot parse
      }
    }
    for (const s of img.RepoDigests ?? []) {
      try {
        const r = parseReference(s);
        if (r.digest === undefined) continue;
        const name = familiarName(r);
        repoDigests.set(name, [...(repoDigests.get(name) ?? []), r.digest]);
      } catch {
        // skipped as above
      }
    }
    for (const [repo, tags] of repoTags) {
      let digests = repoDigests.get(repo) ?? [];
      repoDigests.delete(repo);
      if (!needDigest) digests = [];
      for (const tag of tags) {
        if (digests.length === 0) rows.push(new ImageRow(img, options.trunc, repo, tag, "<none>"));
        else for (const d of digests) rows.push(new ImageRow(img, options.trunc, repo, tag, d));
      }
    }
    for (const [repo, digests] of repoDigests) {
      if (options.digest) for (const d of digests) rows.push(new ImageRow(img, options.trunc, repo, "<none>", d));
      else rows.push(new ImageRow(img, options.trunc, repo, "<none>", ""));
    }
  }
  return rows;
}

/** docker's NewImageFormat: the template for a `--format` value. */
export function imageFormat(source: string, quiet: boolean, digest: boolean): string {
  if (source === "table") {
    if (quiet) return "{{.ID}}";
    return digest ? DEFAULT_TABLE_DIGEST : DEFAULT_TABLE;
  }
  if (source === "raw") {
    if (quiet) return "image_id: {{.ID}}";
    return digest
      ? "repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n"
      : "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n";
  }
  let f = source;
  if (f.startsWith("table") && digest && !f.includes("{{.Digest}}")) f += "\t{{.Digest}}";
  return f;
}

/** Options of `berth images`. */
export interface ImagesOptions {
  matchName: string;
  quiet: boolean;
  all: boolean;
  noTrunc: boolean;
  showDigests: boolean;
  format: string;
  filters: string[];
  calledAs: string;
}

/** Lists images as `docker images` does. */
export async function runImages(cli: Cli, opts: ImagesOptions): Promise<void> {
  const filters = parseFilters(opts.filters);
  if (opts.matchName) addFilter(filters, "reference", opts.matchName);
  const images = await cli.client.imageList({ all: opts.all, filters });
  let format = opts.format;
  if (!format) {
    const fromConfig = cli.configFile().data.imagesFormat;
    format = fromConfig && !opts.quiet ? fromConfig : "table";
  }
  const tmpl = imageFormat(format, opts.quiet, opts.showDigests);
  const rows = imageRows(images, { trunc: !opts.noTrunc, digest: opts.showDigests, formatHasDigest: tmpl.includes("{{.Digest}}") });
  await cli.write(formatList(tmpl, rows, IMAGE_HEADERS));
  const ambiguous = ["build", "history", "import", "inspect", "list", "load", "ls", "prune", "pull", "push", "rm", "save", "tag"];
  if (opts.matchName && images.length === 0 && opts.calledAs === "images" && ambiguous.includes(opts.matchName)) {
    await cli.eprintln(`\nNo images found matching "${opts.matchName}": did you mean "docker image ${opts.matchName}"?`);
  }
}

const imagesFlags: Command["flags"] = [
  { long: "all", short: "a", kind: "bool", help: "Show all images (default hides intermediate images)" },
  { long: "digests", kind: "bool", help: "Show digests" },
  filterFlag(),
  formatFlag(),
  { long: "no-trunc", kind: "bool", help: "Don't truncate output" },
  { long: "quiet", short: "q", kind: "bool", help: "Only show image IDs" },
  { long: "tree", kind: "bool", help: "List multi-platform images as a tree (EXPERIMENTAL)" },
];

function imagesRun(calledAs: string): Command["run"] {
  return async (cli, { flags, args }) => {
    await runImages(cli, {
      matchName: args[0] ?? "",
      quiet: flags.bool("quiet"),
      all: flags.bool("all"),
      noTrunc: flags.bool("no-trunc"),
      showDigests: flags.bool("digests"),
      format: flags.string("format"),
      filters: flags.list("filter"),
      calledAs,
    });
    return 0;
  };
}

export const imagesCommand: Command = {
  name: "images",
  usage: "[OPTIONS] [REPOSITORY[:TAG]]",
  short: "List images",
  aliasPaths: ["image ls", "image list", "images"],
  args: { max: 1 },
  flags: imagesFlags,
  run: imagesRun("images"),
};

export const imageLsCommand: Command = { ...imagesCommand, name: "ls", aliases: ["list"], run: imagesRun("ls") };
