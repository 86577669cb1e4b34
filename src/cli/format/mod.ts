/**
 * Go text/template for berth's `--format` flags, with docker CLI's functions and table output.
 *
 * Templates:
 * - `compile(text, {name?, funcs?}): Template` parses once; `template.execute(data, {missingKey?,
 *   structs?}): string` renders. `render(text, data, options?)` does both.
 * - The language is Go's: `{{.Field}}`, `.A.B`, map keys `.Labels.foo`, `$`, `$x := …`, `$x = …`,
 *   `{{- trim -}}`, pipelines `a | b`, `if`/`else if`/`else`, `with`/`else with`, `range` over
 *   arrays, maps (sorted keys) and ints with `$i, $v :=`, `{{else}}`, `break`, `continue`,
 *   `define`/`template`/`block`, comments, all literal forms, Go truthiness.
 * - Functions: Go's builtins (and or not len index slice print printf println eq ne lt le gt ge
 *   html js urlquery call) and docker's (json split join title lower upper pad truncate).
 * - Data: plain objects and `Map`s are Go maps (missing key → `<no value>`, printed
 *   `map[k:v]`); class instances and `markStruct(obj, "T")` objects are structs (unknown field →
 *   `can't evaluate field X in type T`, printed `{v1 v2}`); a field holding a function is
 *   called like a Go method (with any arguments given); getters just work. Integral numbers
 *   print as ints, others as Go float64 (`%v`). `undefined` is "no value", `null` is `<nil>`.
 * - Errors are InvalidArgument BerthErrors worded like docker's:
 *   `template parsing error: template: :1: unexpected "}" in operand`,
 *   `template parsing error: template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"`.
 *
 * Listings:
 * - `formatRows({format, rows, headers, defaultFormat, quiet?, quietFormat?})` implements
 *   docker's `--format` for list commands: `table` (the default columns), `json` (one object per
 *   line), `table <template>` (header line from `headers` + aligned rows) or a plain template.
 * - `formatTable(format, rows, headers?)` is the same without the keyword resolution.
 * - `TabWriter` / `tabulate(text)` align tab-separated text like Go's text/tabwriter with
 *   docker's settings (minwidth 10, tabwidth 1, padding 3, spaces) by default.
 * - `toJson(value)` is docker's `json` function; `sprintf(format, ...args)` is Go's fmt.Sprintf.
 */
import { sprintf as sprintfModel } from "./_fmt.ts";

export { toJson } from "./_json.ts";
export { markStruct } from "./_value.ts";
export {
  DEFAULT_QUIET_FORMAT,
  type FormatRowsOptions,
  formatRows,
  formatTable,
  isTableFormat,
  JSON_FORMAT,
  JSON_FORMAT_KEY,
  TABLE_FORMAT_KEY,
  templateText,
} from "./table.ts";
export { displayWidth, TabWriter, type TabWriterOptions, tabulate } from "./tabwriter.ts";
export { type CompileOptions, compile, type ExecuteOptions, render, Template, type TemplateFunction } from "./template.ts";

/** Go's fmt.Sprintf over JavaScript values (the `printf` template function). */
export function sprintf(format: string, ...args: unknown[]): string {
  return sprintfModel(format, args, { structs: false });
}
