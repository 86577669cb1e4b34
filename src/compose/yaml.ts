/**
 * YAML parsing for Compose files: YAML 1.2 core schema with `<<` merge keys, anchors (bounded
 * alias expansion), duplicate keys rejected, and the `!reset` / `!override` tags of the Compose
 * merge rules. Errors name the file, line and column.
 */
import { parseDocument, type Tags, YAMLMap, YAMLSeq } from "yaml";
import { invalidArgument } from "../base/mod.ts";
import { OverrideTag, ResetTag } from "./merge.ts";

/**
 * Integers with a leading zero are octal, as Compose's YAML library reads them (`mode: 0440`).
 * YAML 1.2 alone would read them as decimal.
 */
const OCTAL_INT = {
  identify: (v: unknown) => typeof v === "number",
  default: true,
  tag: "tag:yaml.org,2002:int",
  format: "OCT",
  test: /^0[0-7]+$/,
  resolve: (s: string) => Number.parseInt(s, 8),
};

const TAGS: Tags = [
  { tag: "!reset", identify: (v) => v instanceof ResetTag, resolve: () => new ResetTag() },
  { tag: "!reset", collection: "seq", nodeClass: YAMLSeq, identify: (v) => v instanceof ResetTag, resolve: () => new ResetTag() },
  { tag: "!reset", collection: "map", nodeClass: YAMLMap, identify: (v) => v instanceof ResetTag, resolve: () => new ResetTag() },
  { tag: "!override", identify: (v) => v instanceof OverrideTag, resolve: (s: string) => new OverrideTag(s) },
  {
    tag: "!override",
    collection: "seq",
    nodeClass: YAMLSeq,
    identify: (v) => v instanceof OverrideTag,
    resolve: (s) => new OverrideTag(s.toJSON()),
  },
  {
    tag: "!override",
    collection: "map",
    nodeClass: YAMLMap,
    identify: (v) => v instanceof OverrideTag,
    resolve: (s) => new OverrideTag(s.toJSON()),
  },
];

/** Parses one Compose file's text into plain values; `where` names the file in errors. */
export function parseComposeYaml(text: string, where: string): unknown {
  const doc = parseDocument(text, {
    merge: true,
    customTags: (tags) => [OCTAL_INT, ...TAGS, ...tags],
    uniqueKeys: true,
    prettyErrors: true,
    strict: true,
  });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = e?.linePos?.[0];
    const at = pos ? `:${pos.line}:${pos.col}` : "";
    const msg = (e?.message ?? "invalid YAML").split("\n")[0] ?? "";
    throw invalidArgument(`${where}${at}: ${msg.replace(/ at line \d+, column \d+:?$/, "")}`, { detail: { file: where } });
  }
  try {
    return doc.toJS({ maxAliasCount: 10000 });
  } catch (e) {
    throw invalidArgument(`${where}: ${(e as Error).message}`, { detail: { file: where } });
  }
}
