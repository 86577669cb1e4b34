/**
 * The layering rule of DESIGN.md as data, shared by `npm run lint` (scripts/check-layers.ts)
 * and the import-graph test (test/unit/layers.test.ts).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

/** Rows bottom-up: a module may import only from rows above it (lower index) or its own folder. */
export const ROWS = [
  "base",
  "oci",
  "content",
  "archive",
  "image",
  "registry",
  "snapshot",
  "runtime",
  "network",
  "volume",
  "build",
  "container",
  "daemon",
  "api",
  "client",
  "cli",
  "compose",
];
/** Client-side folders may import only these (plus the API types). */
const CLIENT_SIDE = new Set(["client", "cli", "compose"]);
const CLIENT_ALLOWED = new Set(["base", "oci", "client", "cli", "compose"]);
/** Folders allowed to import node:child_process directly (the Host seam lives in base/host.ts). */
const CHILD_PROCESS_FILES = new Set(["src/base/host.ts"]);

export interface Violation {
  file: string;
  line: number;
  message: string;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

const IMPORT_RE = /^\s*(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/gm;

/** Finds every import that breaks a rule; `root` is the repository root. */
export function checkLayers(root: string): Violation[] {
  const src = join(root, "src");
  const files = walk(src);
  const out: Violation[] = [];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const rel = relative(root, file);
    const folder = relative(src, file).split("/")[0] ?? "";
    const isTest = file.endsWith(".test.ts");
    const text = readFileSync(file, "utf8");
    const deps: string[] = [];
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2] ?? m[3] ?? "";
      const line = text.slice(0, m.index).split("\n").length;
      if (spec === "node:child_process" || spec === "child_process") {
        if (!CHILD_PROCESS_FILES.has(rel) && !isTest)
          out.push({ file: rel, line, message: "child_process only through the Host seam (src/base/host.ts)" });
        continue;
      }
      if (!spec.startsWith(".")) continue;
      const target = resolve(dirname(file), spec);
      const trel = relative(src, target);
      if (trel.startsWith("..")) continue;
      const tfolder = trel.split("/")[0] ?? "";
      deps.push(relative(root, target));
      if (tfolder === folder) continue;
      const fi = ROWS.indexOf(folder);
      const ti = ROWS.indexOf(tfolder);
      if (ti < 0 || fi < 0) {
        out.push({ file: rel, line, message: `unknown layer "${tfolder}"` });
        continue;
      }
      if (CLIENT_SIDE.has(folder) && !CLIENT_ALLOWED.has(tfolder) && !(tfolder === "api" && trel.startsWith("api/types"))) {
        out.push({ file: rel, line, message: `client-side "${folder}" may not import engine layer "${tfolder}"` });
      } else if (!CLIENT_SIDE.has(folder) && ti > fi) {
        out.push({ file: rel, line, message: `"${folder}" may not import from higher layer "${tfolder}"` });
      }
      const base = trel.split("/").pop() ?? "";
      if (base.startsWith("_")) out.push({ file: rel, line, message: `"${trel}" is private to src/${tfolder}` });
      else if (!isTest && trel !== `${tfolder}/mod.ts` && !trel.startsWith("api/types")) {
        out.push({ file: rel, line, message: `import "${tfolder}" through its mod.ts, not "${trel}"` });
      }
    }
    graph.set(rel, deps);
  }
  // cycles between folders
  const folderEdges = new Map<string, Set<string>>();
  for (const [f, deps] of graph) {
    const a = f.split("/")[1] ?? "";
    for (const d of deps) {
      const b = d.split("/")[1] ?? "";
      if (a !== b) {
        if (!folderEdges.has(a)) folderEdges.set(a, new Set());
        folderEdges.get(a)?.add(b);
      }
    }
  }
  const seen = new Set<string>();
  const stack = new Set<string>();
  const visit = (n: string, path: string[]) => {
    if (stack.has(n)) {
      out.push({ file: `src/${n}`, line: 0, message: `import cycle: ${[...path, n].join(" -> ")}` });
      return;
    }
    if (seen.has(n)) return;
    seen.add(n);
    stack.add(n);
    for (const m of folderEdges.get(n) ?? []) visit(m, [...path, n]);
    stack.delete(n);
  };
  for (const n of folderEdges.keys()) visit(n, []);
  return out;
}
