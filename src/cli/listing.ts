/**
 * List output (`--format` of ps, images, history, ...) over the format package. `--format json`
 * is encoded here the way docker's formatter contexts marshal themselves: every upper-case
 * field/getter, keys sorted, and HTML characters escaped (their MarshalJSON goes through
 * json.Marshal, which escapes `<`, `>` and `&`).
 */
import { formatTable } from "./format/mod.ts";

function escapeHtml(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** The fields docker's MarshalJSON would emit for a row object: upper-case own fields and getters. */
export function rowFields(row: object): Record<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(row)) if (/^\p{Lu}/u.test(k) && typeof v !== "function") out.set(k, v);
  for (let p = Object.getPrototypeOf(row); p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const name of Object.getOwnPropertyNames(p)) {
      if (out.has(name) || !/^\p{Lu}/u.test(name)) continue;
      const d = Object.getOwnPropertyDescriptor(p, name);
      if (d?.get) out.set(name, d.get.call(row));
    }
  }
  return Object.fromEntries([...out.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

/** Renders rows for a resolved format (`table …`, `json`, or a template), as docker's formatter.Context.Write. */
export function formatList(format: string, rows: readonly object[], headers: Readonly<Record<string, string>>): string {
  if (format === "json") return rows.map((r) => `${escapeHtml(JSON.stringify(rowFields(r)))}\n`).join("");
  return formatTable(format, rows, headers);
}
