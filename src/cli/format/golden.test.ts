import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { compile, formatTable, tabulate } from "./mod.ts";

/**
 * Golden cases computed by Go's own text/template and text/tabwriter with docker's functions
 * (testdata/gen.go). Go decodes the JSON fixtures with integral numbers as ints and string-only
 * arrays as []string, like docker's typed structs.
 */
interface Case {
  name: string;
  template?: string;
  fixture?: string;
  data?: unknown;
  missingKey?: "default" | "error";
  tab?: string;
  table?: string;
  rows?: unknown[];
  headers?: Record<string, string>;
  output?: string;
  error?: string;
  /** Where berth deliberately differs from Go 1.19 (the harness's Go), and why. */
  deviation?: { output?: string; error?: string; reason: string };
}

const golden = JSON.parse(readFileSync(new URL("./testdata/golden.json", import.meta.url), "utf8")) as {
  fixtures: Record<string, unknown>;
  cases: Case[];
};

function run(c: Case): string {
  if (c.template !== undefined) {
    const data = c.fixture ? golden.fixtures[c.fixture] : c.data;
    return compile(c.template).execute(data, c.missingKey ? { missingKey: c.missingKey } : {});
  }
  if (c.tab !== undefined) return tabulate(c.tab);
  return formatTable(c.table!, c.rows ?? [], c.headers);
}

for (const c of golden.cases) {
  test(`golden: ${c.name}`, () => {
    const want = c.deviation ?? c;
    if (want.error !== undefined) {
      assert.throws(
        () => run(c),
        (err: Error) => {
          assert.equal(err.message, `template parsing error: ${want.error}`);
          return true;
        },
      );
    } else {
      assert.equal(run(c), want.output);
    }
  });
}
