/** `berth search`: Docker Hub (or another index) search through the daemon. */
import { encodeRegistryAuth, INDEX_SERVER, type SearchResult } from "../client/mod.ts";
import type { Command } from "./command.ts";
import { ellipsis } from "./display.ts";
import { formatList } from "./listing.ts";
import { filterFlag, formatFlag, parseFilters } from "./opts.ts";

/** One row of the search table; booleans print `[OK]` in tables and true/false in JSON, as docker. */
export class SearchRow {
  readonly #r: SearchResult;
  readonly #trunc: boolean;
  readonly #json: boolean;
  constructor(r: SearchResult, trunc: boolean, json: boolean) {
    this.#r = r;
    this.#trunc = trunc;
    this.#json = json;
  }
  #bool(v: boolean | undefined): string {
    if (this.#json) return v ? "true" : "false";
    return v ? "[OK]" : "";
  }
  get Name(): string {
    return this.#r.name;
  }
  get Description(): string {
    const d = (this.#r.description ?? "").replace(/[\n\r]/g, " ");
    return this.#trunc ? ellipsis(d, 45) : d;
  }
  get StarCount(): string {
    return String(this.#r.star_count ?? 0);
  }
  get IsOfficial(): string {
    return this.#bool(this.#r.is_official);
  }
  get IsAutomated(): string {
    return this.#bool(this.#r.is_automated);
  }
}

/** The registry key a search term goes to (`localhost:5000/foo` searches that registry). */
function indexFor(term: string): string {
  const i = term.indexOf("/");
  if (i > 0) {
    const host = term.slice(0, i);
    if (host.includes(".") || host.includes(":") || host === "localhost") return host;
  }
  return INDEX_SERVER;
}

export const searchCommand: Command = {
  name: "search",
  usage: "[OPTIONS] TERM",
  short: "Search Docker Hub for images",
  args: { exact: 1 },
  flags: [
    filterFlag(),
    formatFlag("Pretty-print search using a Go template"),
    { long: "limit", kind: "int", help: "Max number of search results" },
    { long: "no-trunc", kind: "bool", help: "Don't truncate output" },
  ],
  async run(cli, { flags, args }) {
    const term = args[0] as string;
    if (flags.list("filter").some((f) => f.startsWith("is-automated"))) {
      await cli.eprintln(
        'WARNING: the "is-automated" filter is deprecated, and searching for "is-automated=true" will not yield any results in future.',
      );
    }
    let auth = encodeRegistryAuth(undefined);
    try {
      const c = await cli.configFile().get(indexFor(term));
      if (c.username || c.identityToken) auth = encodeRegistryAuth(c);
    } catch {
      // Search anonymously when the credential store fails.
    }
    const o: { limit?: number; filters?: ReturnType<typeof parseFilters>; registryAuth: string } = {
      registryAuth: auth,
      filters: parseFilters(flags.list("filter")),
    };
    if (flags.has("limit")) o.limit = flags.number("limit", 0);
    const results = (await cli.client.imageSearch(term, o)) ?? [];
    let format = flags.string("format") || "table";
    if (format === "table") format = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}";
    const rows = results.map((r) => new SearchRow(r, !flags.bool("no-trunc"), format === "json"));
    await cli.write(
      formatList(format, rows, {
        Name: "NAME",
        Description: "DESCRIPTION",
        StarCount: "STARS",
        IsOfficial: "OFFICIAL",
        IsAutomated: "AUTOMATED",
      }),
    );
    return 0;
  },
};
