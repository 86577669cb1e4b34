/**
 * Seccomp profiles in Docker's format (the one `--security-opt seccomp=profile.json` takes) and
 * their conversion to the OCI `linux.seccomp` section for one container: rules are kept or
 * dropped by the container's capabilities, the host architecture and the kernel version.
 */
import { readFileSync } from "node:fs";
import { invalidArgument } from "../base/mod.ts";
import type { LinuxSeccomp, SeccompArg, SeccompSyscall } from "./spec_types.ts";

/** Conditions of a Docker profile rule. */
export interface SeccompFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

/** One rule of a Docker-format profile. */
export interface DockerSeccompRule {
  name?: string;
  names?: string[];
  action: string;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  includes?: SeccompFilter;
  excludes?: SeccompFilter;
  comment?: string;
}

/** A Docker-format seccomp profile. */
export interface DockerSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures: string[] | null }[];
  flags?: string[];
  syscalls?: DockerSeccompRule[];
  comment?: string;
}

let cachedDefault: DockerSeccompProfile | undefined;

/** berth's default profile (src/runtime/seccomp_default.json). */
export function defaultSeccompProfile(): DockerSeccompProfile {
  cachedDefault ??= parseSeccompProfile(readFileSync(new URL("./seccomp_default.json", import.meta.url), "utf8"));
  return cachedDefault;
}

/** Parses and checks a Docker-format profile (the JSON text a client sends). */
export function parseSeccompProfile(text: string): DockerSeccompProfile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalidArgument(`Cannot load seccomp profile: ${(e as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw invalidArgument("Cannot load seccomp profile: not a JSON object");
  const p = raw as DockerSeccompProfile;
  if (typeof p.defaultAction !== "string" || !p.defaultAction.startsWith("SCMP_ACT_")) {
    throw invalidArgument(`Cannot load seccomp profile: invalid defaultAction "${String(p.defaultAction)}"`);
  }
  if (p.architectures && p.archMap) throw invalidArgument("Cannot load seccomp profile: both architectures and archMap are set");
  for (const r of p.syscalls ?? []) {
    if (typeof r.action !== "string" || !r.action.startsWith("SCMP_ACT_")) {
      throw invalidArgument(`Cannot load seccomp profile: invalid action "${String(r.action)}"`);
    }
    if (r.name && r.names?.length) throw invalidArgument("Cannot load seccomp profile: a rule has both name and names");
  }
  return p;
}

/** Docker's architecture names (Go's GOARCH) to libseccomp's. */
const GOARCH_TO_SCMP: Record<string, string> = {
  amd64: "SCMP_ARCH_X86_64",
  "386": "SCMP_ARCH_X86",
  arm64: "SCMP_ARCH_AARCH64",
  arm: "SCMP_ARCH_ARM",
  s390x: "SCMP_ARCH_S390X",
  ppc64le: "SCMP_ARCH_PPC64LE",
  riscv64: "SCMP_ARCH_RISCV64",
  mips64: "SCMP_ARCH_MIPS64",
  mips64le: "SCMP_ARCH_MIPSEL64",
};

/** Go's architecture name for Node's `process.arch`. */
export function goArch(nodeArch: string = process.arch): string {
  const m: Record<string, string> = {
    x64: "amd64",
    ia32: "386",
    arm64: "arm64",
    arm: "arm",
    s390x: "s390x",
    ppc64: "ppc64le",
    riscv64: "riscv64",
  };
  return m[nodeArch] ?? nodeArch;
}

/** Compares dotted kernel versions ("5.15.0-91" >= "4.8"). */
export function kernelAtLeast(kernel: string, min: string): boolean {
  const parse = (v: string) => v.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const a = parse(kernel);
  const b = parse(min);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/** Context in which a Docker profile is evaluated. */
export interface SeccompContext {
  /** The container's final capability set (`CAP_*`). */
  capabilities: readonly string[];
  /** Go-style architecture of the host (`amd64`). */
  arch: string;
  /** Host kernel release (`uname -r`). */
  kernel: string;
}

function matches(filter: SeccompFilter | undefined, ctx: SeccompContext, mode: "include" | "exclude"): boolean {
  if (!filter) return mode === "include";
  const caps = new Set(ctx.capabilities);
  if (mode === "include") {
    if (filter.caps?.length && !filter.caps.every((c) => caps.has(c))) return false;
    if (filter.arches?.length && !filter.arches.includes(ctx.arch)) return false;
    if (filter.minKernel && !kernelAtLeast(ctx.kernel, filter.minKernel)) return false;
    return true;
  }
  // An exclude filter drops the rule when any of its conditions holds.
  if (filter.caps?.some((c) => caps.has(c))) return true;
  if (filter.arches?.includes(ctx.arch)) return true;
  if (filter.minKernel && kernelAtLeast(ctx.kernel, filter.minKernel)) return true;
  return false;
}

/** Converts a Docker-format profile to the OCI section for a container. */
export function seccompToOci(profile: DockerSeccompProfile, ctx: SeccompContext): LinuxSeccomp {
  const out: LinuxSeccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  if (profile.architectures?.length) out.architectures = [...profile.architectures];
  else if (profile.archMap?.length) {
    const native = GOARCH_TO_SCMP[ctx.arch];
    const entry = profile.archMap.find((a) => a.architecture === native);
    if (entry) out.architectures = [entry.architecture, ...(entry.subArchitectures ?? [])];
  }
  if (profile.flags?.length) out.flags = [...profile.flags];
  const syscalls: SeccompSyscall[] = [];
  for (const rule of profile.syscalls ?? []) {
    if (!matches(rule.includes, ctx, "include")) continue;
    if (rule.excludes && matches(rule.excludes, ctx, "exclude")) continue;
    const names = rule.names?.length ? rule.names : rule.name ? [rule.name] : [];
    if (!names.length) continue;
    const s: SeccompSyscall = { names: [...names], action: rule.action };
    if (rule.errnoRet !== undefined) s.errnoRet = rule.errnoRet;
    if (rule.args?.length) s.args = rule.args.map((a) => ({ ...a }));
    syscalls.push(s);
  }
  out.syscalls = syscalls;
  return out;
}
