/**
 * The normalised model as `compose config` prints it: YAML (or JSON) with services sorted by
 * name and their keys sorted, resources with their resolved names.
 */
import { stringify } from "yaml";
import type { Project } from "./model.ts";

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

/** The project as a plain object in the order `compose config` prints it. */
export function projectModel(project: Project): Record<string, unknown> {
  const out: Record<string, unknown> = { name: project.name };
  out.services = sortKeys(project.services);
  for (const kind of ["networks", "volumes", "secrets", "configs"] as const) {
    if (Object.keys(project[kind]).length > 0) out[kind] = sortKeys(project[kind]);
  }
  for (const [k, v] of Object.entries(project.extensions)) out[k] = v;
  return out;
}

/** Renders the project as YAML or JSON. */
export function renderConfig(project: Project, format: "yaml" | "json" = "yaml"): string {
  const model = projectModel(project);
  if (format === "json") return `${JSON.stringify(model, null, 2)}\n`;
  return stringify(model, { lineWidth: 0, aliasDuplicateObjects: false, nullStr: "null" });
}
