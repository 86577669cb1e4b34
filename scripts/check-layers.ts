import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkLayers } from "./layers.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const v = checkLayers(root);
for (const x of v) console.error(`${x.file}:${x.line}: ${x.message}`);
if (v.length) {
  console.error(`${v.length} layering violation(s)`);
  process.exit(1);
}
