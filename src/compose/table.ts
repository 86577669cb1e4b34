/**
 * Text output helpers shared by compose commands: aligned tables as docker's tabwriter prints
 * them (three spaces between columns), human durations (`2 minutes ago`), port lists, and a
 * minimal `{{.Field}}` template for `--format` when the CLI gives no template engine.
 */
import type { PortSummary } from "../client/mod.ts";

/** Aligns rows in columns; the last column is not padded. */
export function table(rows: string[][]): string {
  if (rows.length === 0) return "";
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, [...c].length);
    });
  }
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c + " ".repeat((widths[i] ?? 0) - [...c].length + 3)))
        .join("")
        .replace(/\s+$/, ""),
    )
    .join("\n")
    .concat("\n");
}

/** docker's go-units HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(ms / 3600000 + 0.5);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3600000 / 24 / 365)} years`;
}

/** Ports as `docker ps` shows them: `0.0.0.0:8080->80/tcp, 443/tcp`. */
export function formatPorts(ports: PortSummary[] | null | undefined): string {
  const out: string[] = [];
  const seen = new Set<string>();
  const sorted = [...(ports ?? [])].sort((a, b) => a.PrivatePort - b.PrivatePort || (a.PublicPort ?? 0) - (b.PublicPort ?? 0));
  for (const p of sorted) {
    let s: string;
    if (p.PublicPort) {
      const ip = p.IP ?? "";
      s = `${ip.includes(":") ? `[${ip}]` : ip}:${p.PublicPort}->${p.PrivatePort}/${p.Type}`;
    } else s = `${p.PrivatePort}/${p.Type}`;
    if (!seen.has(s)) {
      seen.add(s);
      out.push(s);
    }
  }
  return out.join(", ");
}

/** Truncates with an ellipsis as docker's formatter does. */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  return `${chars.slice(0, max - 1).join("")}…`;
}

/**
 * Expands a simple Go template: `{{.Field}}`, `{{.A.B}}`, `{{json .}}`, `{{json .Field}}`,
 * `\t` and `\n`. Used when the CLI did not hand in its full template engine.
 */
export function simpleTemplate(template: string, value: unknown): string {
  const t = template.replace(/\\t/g, "\t").replace(/\\n/g, "\n");
  return t.replace(/\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}/g, (_m, json: string | undefined, path: string) => {
    let v: unknown = value;
    for (const p of path.split(".").filter(Boolean)) v = v && typeof v === "object" ? (v as Record<string, unknown>)[p] : undefined;
    if (json) return JSON.stringify(v ?? null);
    if (v === undefined || v === null) return "<no value>";
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  });
}
