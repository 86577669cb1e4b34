import { invalidArgument } from "../base/mod.ts";
import type { Platform } from "./types.ts";

/** The platform berth runs on; only linux/amd64 images run here. */
export const hostPlatform: Platform = { os: "linux", architecture: "amd64" };

/** Parses `linux/amd64`, `linux/arm64/v8`, `amd64`. */
export function parsePlatform(s: string): Platform {
  const parts = s.toLowerCase().split("/");
  if (parts.length === 1 && parts[0]) return { os: "linux", architecture: normaliseArch(parts[0]) };
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) throw invalidArgument(`Invalid platform "${s}"`);
  const p: Platform = { os: parts[0], architecture: normaliseArch(parts[1]) };
  if (parts[2]) p.variant = parts[2];
  return p;
}

function normaliseArch(a: string): string {
  if (a === "x86_64" || a === "x86-64") return "amd64";
  if (a === "aarch64") return "arm64";
  return a;
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** Whether a manifest's platform satisfies the wanted one (variant ignored when not asked for). */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || normaliseArch(have.architecture) !== want.architecture) return false;
  if (want.variant && have.variant && want.variant !== have.variant) return false;
  return true;
}
