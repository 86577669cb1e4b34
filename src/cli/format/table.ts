/**
 * docker's list formatting (cli/command/formatter): a `--format` value is either the keyword
 * `table` (the command's default columns), `json` (one JSON object per line), `table <template>`
 * (a header row rendered from the column titles, then one row per item, aligned by a TabWriter
 * with docker's settings) or a plain template rendered once per item.
 */
import { invalidArgument } from "../../base/mod.ts";
import { HEADER_FUNCS } from "./_funcs.ts";
import { TabWriter } from "./tabwriter.ts";
import { compile, type ExecuteOptions } from "./template.ts";

/** docker's format keywords. */
export const TABLE_FORMAT_KEY = "table";
export const JSON_FORMAT_KEY = "json";
/** The template docker uses for `--format json`. */
export const JSON_FORMAT = "{{json .}}";
/** The template docker uses for `--quiet` listings. */
export const DEFAULT_QUIET_FORMAT = "{{.ID}}";

/** True when docker would render the format as a table (it starts with "table"). */
export function isTableFormat(format: string): boolean {
  return format.startsWith(TABLE_FORMAT_KEY);
}

/**
 * The template text docker executes for a format: without the `table` prefix, `json` replaced by
 * `{{json .}}`, surrounding spaces trimmed and the two-character sequences `\t` and `\n` turned
 * into a tab and a newline (shells pass them literally).
 */
export function templateText(format: string): string {
  let f = format;
  if (isTableFormat(f)) f = f.slice(TABLE_FORMAT_KEY.length);
  else if (f === JSON_FORMAT_KEY) f = JSON_FORMAT;
  f = f.replace(/^ +| +$/g, "");
  return f.replace(/\\t|\\n/g, (m) => (m === "\\t" ? "\t" : "\n"));
}

/**
 * Renders rows with a docker format (`table …`, `json` or a template), exactly as docker's
 * formatter.Context.Write does. A table gets a header line rendered from `headers` (column
 * titles by field name, e.g. `{ID: "CONTAINER ID"}`) with docker's header functions, and is
 * aligned with `TabWriter` (minwidth 10, padding 3). Every row ends with a newline.
 */
export function formatTable(
  format: string,
  rows: Iterable<unknown>,
  headers?: Readonly<Record<string, string>>,
  options?: ExecuteOptions,
): string {
  const tmpl = compile(templateText(format));
  const body: string[] = [];
  for (const row of rows) body.push(`${tmpl.execute(row, options)}\n`);
  if (!isTableFormat(format)) return body.join("");
  // docker ignores errors while rendering the header and keeps what was produced.
  const header = tmpl.run({ ...headers }, { funcOverrides: HEADER_FUNCS }).output;
  const tw = new TabWriter({ minWidth: 10, tabWidth: 1, padding: 3, padChar: " " });
  tw.write(`${header}\n`);
  for (const line of body) tw.write(line);
  return tw.flush();
}

/** Options for `formatRows`. */
export interface FormatRowsOptions extends ExecuteOptions {
  /** The user's `--format` value; empty or absent means "table". */
  format?: string | undefined;
  /** The items to render (objects, class instances with getters/methods, …). */
  rows: Iterable<unknown>;
  /** Column titles by field name, used to render a table's header line. */
  headers?: Readonly<Record<string, string>>;
  /** The command's default table, used for the keyword `table`, e.g. "table {{.ID}}\t{{.Image}}". */
  defaultFormat?: string;
  /** `--quiet`: the keyword `table` renders `quietFormat` instead (custom formats win, as in docker). */
  quiet?: boolean;
  /** Template for `--quiet`; default `{{.ID}}`. */
  quietFormat?: string;
}

/**
 * Renders a listing the way docker's list commands do: resolves the `table` keyword to the
 * command's default (or the quiet format), then `formatTable`.
 *
 * ```ts
 * formatRows({
 *   format: opts.format,
 *   rows: containers.map(toRow),
 *   headers: { ID: "CONTAINER ID", Image: "IMAGE", Names: "NAMES" },
 *   defaultFormat: "table {{.ID}}\t{{.Image}}\t{{.Names}}",
 *   quiet: opts.quiet,
 * });
 * ```
 */
export function formatRows(options: FormatRowsOptions): string {
  let format = options.format || TABLE_FORMAT_KEY;
  if (format === TABLE_FORMAT_KEY) {
    if (options.quiet) format = options.quietFormat ?? DEFAULT_QUIET_FORMAT;
    else if (options.defaultFormat) format = options.defaultFormat;
    else throw invalidArgument('No default table format given for the "table" format');
  }
  const exec: ExecuteOptions = {};
  if (options.missingKey) exec.missingKey = options.missingKey;
  if (options.structs !== undefined) exec.structs = options.structs;
  return formatTable(format, options.rows, options.headers, exec);
}
