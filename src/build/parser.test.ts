/**
 * Golden tests for the Dockerfile front end: every directory under testdata/ holds a
 * Dockerfile and the expected `result` (the parsed nodes, warnings, stages, or the error).
 * `UPDATE_GOLDEN=1 node --test src/build/parser.test.ts` rewrites the results.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { stagesFromNodes } from "./instructions.ts";
import { dumpNode, parseDockerfile } from "./parser.ts";

const dir = new URL("./testdata/", import.meta.url).pathname;
const update = process.env.UPDATE_GOLDEN === "1";

function render(text: string): string {
  const lines: string[] = [];
  try {
    const r = parseDockerfile(text);
    if (r.escape !== "\\") lines.push(`escape ${JSON.stringify(r.escape)}`);
    for (const [k, v] of Object.entries(r.directives)) lines.push(`directive ${k}=${JSON.stringify(v)}`);
    for (const n of r.nodes) lines.push(dumpNode(n));
    for (const w of r.warnings) lines.push(`warning: ${w}`);
    const df = stagesFromNodes(r.nodes, r.escape, r.warnings);
    for (const a of df.metaArgs)
      lines.push(`meta-arg ${a.args.map((x) => (x.value === undefined ? x.key : `${x.key}=${x.value}`)).join(" ")}`);
    for (const s of df.stages) {
      const kinds = s.instructions.map((i) => i.kind).join(",");
      lines.push(
        `stage ${s.index} ${JSON.stringify(s.base)}${s.name ? ` as ${s.name}` : ""}${s.platform ? ` platform=${s.platform}` : ""}: ${kinds}`,
      );
    }
  } catch (e) {
    lines.push(`error: ${(e as Error).message}`);
  }
  return `${lines.join("\n")}\n`;
}

for (const name of readdirSync(dir).sort()) {
  const df = join(dir, name, "Dockerfile");
  if (!existsSync(df)) continue;
  test(`golden ${name}`, () => {
    const got = render(readFileSync(df, "utf8"));
    const resultPath = join(dir, name, "result");
    if (update || !existsSync(resultPath)) writeFileSync(resultPath, got);
    const want = readFileSync(resultPath, "utf8");
    assert.equal(got, want);
    if (name.startsWith("err-")) assert.match(got, /^error: /m, "cases named err-* must fail");
    else assert.doesNotMatch(got, /^error: /m);
  });
}
