/**
 * Safe access to files inside a container's root filesystem from the host. Every path is
 * resolved component by component inside the root: a symlink is followed as the container
 * would see it (absolute targets re-rooted, `..` stopping at the root), never out of it
 * (SECURITY.md items 19-21). Files are opened with O_NOFOLLOW|O_NONBLOCK, must be regular, and
 * are read to a bound; the opened descriptor's real path is checked to be under the root, which
 * catches a component swapped for a symlink between resolution and open.
 */
import { constants } from "node:fs";
import { lstat, mkdir, open, readlink } from "node:fs/promises";
import { posix } from "node:path";
import { BerthError, ErrorKind, invalidArgument } from "../base/mod.ts";

const MAX_SYMLINKS = 40;

/**
 * Resolves `path` (as seen inside the container) to a host path under `root`, following
 * symlinks inside the root. Components that do not exist are kept as they are.
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const rootClean = posix.resolve(root);
  const pending = posix.normalize(`/${path}`).split("/").filter(Boolean);
  const done: string[] = [];
  let hops = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      done.pop();
      continue;
    }
    const host = posix.join(rootClean, ...done, part);
    let st: Awaited<ReturnType<typeof lstat>> | undefined;
    try {
      st = await lstat(host);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink()) {
      if (++hops > MAX_SYMLINKS) throw invalidArgument(`Cannot resolve "${path}" in the container: too many levels of symbolic links`);
      const target = await readlink(host);
      if (target.startsWith("/")) done.length = 0;
      pending.unshift(...target.split("/").filter(Boolean));
      continue;
    }
    done.push(part);
  }
  return posix.join(rootClean, ...done);
}

function under(root: string, p: string): boolean {
  const r = posix.resolve(root);
  return p === r || p.startsWith(r.endsWith("/") ? r : `${r}/`);
}

/**
 * Reads a regular file inside the root, at most `maxBytes`. Returns undefined when it does not
 * exist; throws when it is not a regular file, escapes the root or is larger than the bound.
 */
export async function readFileInRoot(root: string, path: string, maxBytes = 4 * 1024 * 1024): Promise<string | undefined> {
  const host = await resolveInRoot(root, path);
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new BerthError(ErrorKind.InvalidArgument, `Cannot read "${path}" in the container: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw invalidArgument(`Cannot read "${path}" in the container: not a regular file`);
    const real = await readlink(`/proc/self/fd/${fh.fd}`);
    if (!under(root, real)) throw invalidArgument(`Cannot read "${path}" in the container: path escapes the root`);
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let len = 0;
    while (len < buf.length) {
      const { bytesRead } = await fh.read(buf, len, buf.length - len, len);
      if (bytesRead === 0) break;
      len += bytesRead;
    }
    if (len > maxBytes) throw invalidArgument(`Cannot read "${path}" in the container: larger than ${maxBytes} bytes`);
    return buf.subarray(0, len).toString("utf8");
  } finally {
    await fh.close();
  }
}

/**
 * Creates a directory (and its parents) inside the root, as root:root 0755, for a working
 * directory that the image does not have. An existing non-directory is an error.
 */
export async function mkdirInRoot(root: string, path: string): Promise<void> {
  const host = await resolveInRoot(root, path);
  if (!under(root, host)) throw invalidArgument(`Cannot create "${path}" in the container: path escapes the root`);
  try {
    const st = await lstat(host);
    if (st.isDirectory()) return;
    throw invalidArgument(`Cannot create working directory "${path}": not a directory`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR") throw invalidArgument(`Cannot create working directory "${path}": a parent is not a directory`);
    if (code !== "ENOENT") throw e;
  }
  // Create one component at a time, re-resolving, so that no component is a symlink out.
  const rel = posix.relative(posix.resolve(root), host).split("/").filter(Boolean);
  let cur = posix.resolve(root);
  for (const part of rel) {
    const next = posix.join(cur, part);
    try {
      const st = await lstat(next);
      if (!st.isDirectory()) throw invalidArgument(`Cannot create working directory "${path}": "${part}" is not a directory`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      await mkdir(next, { mode: 0o755 });
    }
    cur = next;
  }
}
