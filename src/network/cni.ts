import { mkdir, rm, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { BerthError, ErrorKind, type Host } from "../base/mod.ts";

/** Where Debian's containernetworking-plugins install the plugins. */
export const DEFAULT_CNI_PATH = "/usr/lib/cni";
export const CNI_VERSION = "1.0.0";

/** The part of a CNI result berth reads. */
export interface CniResult {
  cniVersion?: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { interface?: number; address: string; gateway?: string }[];
  routes?: { dst: string; gw?: string }[];
}

/** What a plugin call is about: the container, its network namespace and the interface. */
export interface CniTarget {
  containerId: string;
  netns: string;
  ifname: string;
}

/**
 * Runs one CNI plugin per the CNI spec: the command and target in `CNI_*` variables, the
 * network configuration on stdin, the result (or an error object) on stdout. berth runs
 * one plugin per endpoint (bridge, which also sets the MAC), so there is no chain to pass
 * `prevResult` along.
 */
export async function cniExec(
  host: Host,
  command: "ADD" | "DEL" | "CHECK",
  conf: Record<string, unknown>,
  target: CniTarget,
  options: { path?: string; signal?: AbortSignal } = {},
): Promise<CniResult> {
  const path = options.path ?? DEFAULT_CNI_PATH;
  const type = String(conf.type ?? "");
  if (!/^[a-z0-9-]+$/.test(type)) throw new BerthError(ErrorKind.InvalidArgument, `Invalid CNI plugin type "${type}"`);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: target.containerId,
    CNI_NETNS: target.netns,
    CNI_IFNAME: target.ifname,
    CNI_PATH: path,
  };
  const r = await host.run(`${path}/${type}`, [], {
    env,
    input: JSON.stringify({ cniVersion: CNI_VERSION, ...conf }),
    allowFailure: true,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (r.code !== 0) {
    let msg = r.stderr.trim() || r.stdout.trim();
    try {
      const j = JSON.parse(r.stdout) as { msg?: string; details?: string };
      msg = [j.msg, j.details].filter(Boolean).join(": ") || msg;
    } catch {
      // not a CNI error object
    }
    throw new BerthError(ErrorKind.Internal, `CNI plugin ${type} ${command} failed for ${target.ifname}: ${msg}`, {
      detail: { code: r.code },
    });
  }
  if (command !== "ADD" || !r.stdout.trim()) return {};
  return JSON.parse(r.stdout) as CniResult;
}

/**
 * Creates a network namespace pinned by a bind mount at `path` (what `ip netns add` does, but
 * under berth's exec root): it lives until `unpinNetns`, whether or not a process is in it, so
 * that berthd can set it up before the container starts and tear it down after it exits. Its
 * loopback interface is brought up in the same step (what the CNI loopback plugin does, without
 * a second process).
 */
export async function pinNetns(host: Host, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  await writeFile(path, "", { flag: "a", mode: 0o444 });
  try {
    await host.run("unshare", [`--net=${path}`, "ip", "link", "set", "lo", "up"]);
  } catch (e) {
    await rm(path, { force: true });
    throw e;
  }
}

/** Unmounts and deletes a pinned namespace; a missing one is fine. */
export async function unpinNetns(host: Host, path: string): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return;
  await host.unmount(path, { lazy: true }).catch(() => {});
  await rm(path, { force: true });
}
