import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { checkLayers } from "../../scripts/layers.ts";

test("the import graph follows the layering rules of DESIGN.md", () => {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  assert.deepEqual(checkLayers(root), []);
});
