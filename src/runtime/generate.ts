/**
 * `generateSpec`: the asynchronous front of `buildSpec`. It does what needs the host or the
 * root filesystem — user lookup inside the image, working directory creation, `--device`
 * resolution, host devices for privileged containers, loading a seccomp profile, finding an
 * init — then calls the pure `buildSpec`.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { invalidArgument, notFound } from "../base/mod.ts";
import { type DeviceMapping, type HostInfo, listHostDevices, readHostInfo, resolveDevice } from "./host_info.ts";
import { mkdirInRoot } from "./rootfs.ts";
import { type DockerSeccompProfile, parseSeccompProfile } from "./seccomp.ts";
import { type BuiltSpec, buildSpec, type ContainerSpecInput } from "./spec.ts";
import { type ResolvedUser, resolveUser } from "./user.ts";

/** Inputs of `generateSpec`: `ContainerSpecInput` with unresolved user, devices, seccomp and init. */
export interface GenerateSpecInput extends Omit<ContainerSpecInput, "user" | "host" | "devices" | "hostDevices" | "seccomp" | "init"> {
  /** `--user`: "", "name", "uid", "name:group", "uid:gid". */
  user?: string;
  groupAdd?: string[];
  /** `--device` specifications ("/dev/fuse", "/dev/sda:/dev/xvda:rwm"). */
  devices?: string[];
  /** "unconfined", a Docker-format JSON profile (what the docker CLI sends), or a path to one. Default profile when absent. */
  seccomp?: string;
  /** `--init`: true finds catatonit or tini-static on the host; a string is the init's host path. */
  init?: boolean | string;
  /** Host facts; read from this machine when absent. */
  host?: HostInfo;
}

/** A built spec plus the resolved user (the caller may record it). */
export interface GeneratedSpec extends BuiltSpec {
  user: ResolvedUser;
}

/** Static inits that work in any image, in order of preference. */
const INIT_CANDIDATES = [
  "/usr/bin/catatonit",
  "/usr/libexec/podman/catatonit",
  "/usr/bin/tini-static",
  "/usr/bin/docker-init",
  "/sbin/tini-static",
];

/** The host path of an init usable with `--init`. */
export function findInit(): string {
  const found = INIT_CANDIDATES.find((p) => existsSync(p));
  if (!found) throw notFound("Cannot use --init: no catatonit or tini-static found on the host");
  return found;
}

async function loadSeccomp(value: string | undefined): Promise<DockerSeccompProfile | "unconfined" | undefined> {
  if (value === undefined || value === "" || value === "default" || value === "builtin") return undefined;
  if (value === "unconfined") return "unconfined";
  if (value.trimStart().startsWith("{")) return parseSeccompProfile(value);
  if (!value.startsWith("/")) throw invalidArgument(`Invalid seccomp profile "${value}": not JSON and not an absolute path`);
  let text: string;
  try {
    text = await readFile(value, "utf8");
  } catch (e) {
    throw notFound(`Cannot load seccomp profile "${value}": ${(e as Error).message}`);
  }
  return parseSeccompProfile(text);
}

/** Resolves what needs the host or the rootfs, then builds the spec. */
export async function generateSpec(input: GenerateSpecInput): Promise<GeneratedSpec> {
  const host = input.host ?? readHostInfo();
  const user = await resolveUser(input.rootfs, input.user ?? "", input.groupAdd ?? []);
  const cwd = input.cwd || "/";
  if (cwd !== "/" && cwd.startsWith("/")) await mkdirInRoot(input.rootfs, cwd);
  const devices: DeviceMapping[] = [];
  for (const d of input.devices ?? []) devices.push(...resolveDevice(d));
  const seccomp = await loadSeccomp(input.seccomp);
  const init = input.init === true ? findInit() : typeof input.init === "string" && input.init ? input.init : undefined;
  const { user: _u, groupAdd: _g, devices: _d, seccomp: _s, init: _i, host: _h, ...rest } = input;
  const specInput: ContainerSpecInput = { ...rest, user, host, devices };
  if (seccomp !== undefined) specInput.seccomp = seccomp;
  if (init) specInput.init = init;
  if (input.privileged) specInput.hostDevices = listHostDevices();
  return { ...buildSpec(specInput), user };
}
