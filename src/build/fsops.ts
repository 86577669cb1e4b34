/**
 * File operations of COPY and ADD: finding sources in a tree (the build context or another
 * stage's root) without ever leaving it, hashing them for the cache, and copying them into the
 * root file system of the step being built.
 *
 * Source paths are resolved inside their tree: `..` cannot climb above it, absolute paths are
 * taken relative to it, and symlinks are followed the way the container would see them
 * (absolute targets restart at the tree's root). Inside copied directories symlinks are copied
 * as symlinks, never followed. The target root is a mounted snapshot no process runs in, so a
 * path checked here stays as checked.
 */
import { createHash, type Hash } from "node:crypto";
import {
  chmodSync,
  constants,
  createReadStream,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
} from "node:fs";
import { chmod, copyFile, lchown, lstat, mkdir, readdir, readlink, rm, writeFile } from "node:fs/promises";
import { posix } from "node:path";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { invalidArgument, notFound } from "../base/mod.ts";
import { resolveInRoot } from "../runtime/mod.ts";
import type { PatternMatcher } from "./ignore.ts";

/** What COPY needs to know about a source file (a subset of `fs.Stats`, which fits). */
export interface EntryStat {
  /** Type and permission bits, as `st_mode`. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atime: Date;
  mtime: Date;
  isDirectory(): boolean;
  isFile(): boolean;
  isSymbolicLink(): boolean;
}

/**
 * The read side of a source tree. Paths are host-style (`root/rel`), as for the disk, so that
 * the same resolution code serves a directory on disk and the build context's index in
 * memory (context.ts), which never has to be written out when every step hits the cache.
 */
export interface TreeFs {
  lstat(path: string): Promise<EntryStat | undefined>;
  readdir(path: string): Promise<string[]>;
  readlink(path: string): Promise<string>;
  /** `path` (a path in the tree) with symlinks followed inside `root`, as `resolveInRoot`. */
  resolve(root: string, path: string): Promise<string>;
  /** The SHA-256 of a regular file's content. */
  digest(path: string): Promise<Buffer>;
  /** Writes a regular file's content to `dst` (a new file on disk, created with `mode`). */
  copyTo(path: string, dst: string): Promise<void>;
}

async function digestFile(path: string): Promise<Buffer> {
  const f = createHash("sha256");
  for await (const chunk of createReadStream(path)) f.update(chunk as Buffer);
  return f.digest();
}

/** The disk as a `TreeFs`. */
export const diskFs: TreeFs = {
  lstat: (p) => lstat(p).catch(() => undefined),
  readdir: (p) => readdir(p),
  readlink: (p) => readlink(p),
  resolve: (root, p) => resolveInRoot(root, p),
  digest: digestFile,
  // Through the thread pool: a stage's file can be large, and copying it must not stall the daemon.
  copyTo: (p, dst) => copyFile(p, dst, constants.COPYFILE_EXCL),
};

/** A tree to copy from. `ignore` is the context's .dockerignore (none for stages). */
export interface SourceTree {
  root: string;
  ignore?: PatternMatcher | undefined;
  /** Keep owners of copied files (stages); the context's files become root's. */
  keepOwners: boolean;
  /** Where the tree's files are read from (default: the disk). */
  fs?: TreeFs | undefined;
}

/** One matched source: its path relative to the tree and its host path. */
export interface SourceMatch {
  rel: string;
  host: string;
  stat: EntryStat;
}

const WILDCARD = /[*?[]/;

function under(root: string, p: string): boolean {
  const r = posix.resolve(root);
  return p === r || p.startsWith(`${r}/`);
}

/** Go's filepath.Match for one path component. */
export function globMatch(pattern: string, name: string): boolean {
  let re = "^";
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] ?? "";
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < chars.length) re += (chars[++i] ?? "").replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
    else if (c === "[") {
      let j = i + 1;
      let cls = "[";
      if (chars[j] === "^" || chars[j] === "!") {
        cls += "^";
        j++;
      }
      for (; j < chars.length && chars[j] !== "]"; j++) cls += chars[j] === "\\" ? `\\${chars[++j] ?? ""}` : chars[j];
      if (j >= chars.length) throw invalidArgument(`Invalid source pattern "${pattern}": syntax error in pattern`);
      re += `${cls}]`;
      i = j;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`${re}$`, "su").test(name);
}

function notInContext(src: string): Error {
  return notFound(`failed to compute cache key: "${src}" not found: not found in build context or excluded by .dockerignore`);
}

/**
 * Finds the files a COPY/ADD source names (a path or a glob). Throws NotFound when nothing
 * matches, InvalidArgument for a path outside the tree.
 */
export async function resolveSources(tree: SourceTree, src: string): Promise<SourceMatch[]> {
  const normal = posix.normalize(src);
  if (normal === ".." || normal.startsWith("../")) throw invalidArgument(`forbidden path outside the build context: ${src}`);
  const clean = posix.normalize(`/${src}`);
  const rootAbs = posix.resolve(tree.root);
  const ignored = (rel: string) => rel !== "" && tree.ignore?.matches(rel) === true;
  const fs = tree.fs ?? diskFs;
  if (!WILDCARD.test(clean)) {
    const host = await fs.resolve(rootAbs, clean);
    if (!under(rootAbs, host)) throw invalidArgument(`forbidden path outside the build context: ${src}`);
    const rel = posix.relative(rootAbs, host);
    const st = await fs.lstat(host);
    if (!st || ignored(rel)) throw notInContext(src);
    return [{ rel, host, stat: st }];
  }
  // Expand component by component: literal parts resolve (symlinks in scope), globs list.
  let current: { rel: string; host: string }[] = [{ rel: "", host: rootAbs }];
  const parts = clean.split("/").filter(Boolean);
  for (const part of parts) {
    const next: { rel: string; host: string }[] = [];
    for (const c of current) {
      if (!WILDCARD.test(part)) {
        const host = await fs.resolve(rootAbs, posix.join("/", c.rel, part));
        if (!under(rootAbs, host)) continue;
        if (await fs.lstat(host)) next.push({ rel: posix.relative(rootAbs, host), host });
        continue;
      }
      const st = await fs.lstat(c.host);
      if (!st?.isDirectory()) continue;
      for (const name of (await fs.readdir(c.host)).sort()) {
        if (!globMatch(part, name)) continue;
        const host = await fs.resolve(rootAbs, posix.join("/", c.rel, name));
        if (!under(rootAbs, host)) continue;
        next.push({ rel: posix.relative(rootAbs, host), host });
      }
    }
    current = next;
  }
  const out: SourceMatch[] = [];
  const seen = new Set<string>();
  for (const c of current) {
    // Two globbed paths can reach one file through a symlink: copy it once.
    if (ignored(c.rel) || seen.has(c.rel)) continue;
    seen.add(c.rel);
    const st = await fs.lstat(c.host);
    if (st) out.push({ rel: c.rel, host: c.host, stat: st });
  }
  if (out.length === 0) throw notInContext(src);
  return out;
}

/** A file or directory found while walking a source, relative to the match. */
interface WalkEntry {
  sub: string;
  host: string;
  stat: EntryStat;
}

/**
 * Sorts names in UTF-8 byte order. UTF-16 order is the same as long as no name has a
 * character from U+D800 up (surrogates sort below U+E000..U+FFFF there): the common case
 * needs no conversion.
 */
export function byteOrder(names: string[]): string[] {
  if (!names.some((n) => /[\uD800-\uFFFF]/.test(n))) return names.sort();
  return names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** Walks a match depth-first (names in byte order), skipping what the ignore rules exclude. */
async function* walk(tree: SourceTree, m: SourceMatch, excludes?: PatternMatcher): AsyncGenerator<WalkEntry> {
  yield { sub: "", host: m.host, stat: m.stat };
  if (!m.stat.isDirectory()) return;
  const fs = tree.fs ?? diskFs;
  const stack: string[] = [""];
  while (stack.length) {
    const sub = stack.pop() ?? "";
    const dir = sub ? `${m.host}/${sub}` : m.host;
    const names = byteOrder(await fs.readdir(dir));
    const dirs: string[] = [];
    for (const name of names) {
      const s = sub ? `${sub}/${name}` : name;
      const rel = m.rel ? `${m.rel}/${s}` : s;
      const host = `${m.host}/${s}`;
      const st = await fs.lstat(host);
      if (!st) throw notFound(`"${rel}" vanished while it was read`);
      const skip = (tree.ignore?.matches(rel) ?? false) || (excludes?.matches(s) ?? false);
      if (skip) {
        const exceptions = (tree.ignore?.hasExclusions ?? false) || (excludes?.hasExclusions ?? false);
        if (st.isDirectory() && exceptions) dirs.push(s);
        continue;
      }
      yield { sub: s, host, stat: st };
      if (st.isDirectory()) dirs.push(s);
    }
    for (let i = dirs.length - 1; i >= 0; i--) stack.push(dirs[i] ?? "");
  }
}

/**
 * Adds what a COPY of `m` depends on to `h`: names, types, modes, sizes, contents, link
 * targets and (for stages) owners; not modification times.
 */
export async function hashMatch(tree: SourceTree, m: SourceMatch, h: Hash, excludes?: PatternMatcher): Promise<void> {
  const fs = tree.fs ?? diskFs;
  h.update(`match\0${m.rel}\0`);
  for await (const e of walk(tree, m, excludes)) {
    const st = e.stat;
    const kind = st.isDirectory() ? "d" : st.isFile() ? "f" : st.isSymbolicLink() ? "l" : "o";
    h.update(`${kind}\0${e.sub}\0${(st.mode & 0o7777).toString(8)}\0`);
    if (tree.keepOwners) h.update(`${st.uid}:${st.gid}\0`);
    if (kind === "f") {
      h.update(`${st.size}\0`);
      h.update(await fs.digest(e.host));
    } else if (kind === "l") h.update(await fs.readlink(e.host));
  }
}

/** Owner and mode overrides of COPY/ADD. */
export interface CopyOptions {
  chown?: { uid: number; gid: number } | undefined;
  chmod?: number | undefined;
  excludes?: PatternMatcher | undefined;
}

/**
 * Creates a directory and missing parents inside `root` (a container path; symlinks resolved
 * in scope). New directories get mode 0755 and `owner`. Returns the host path.
 */
export async function mkdirAllInRoot(root: string, path: string, owner?: { uid: number; gid: number }): Promise<string> {
  const rootAbs = posix.resolve(root);
  const host = await resolveInRoot(rootAbs, path);
  if (!under(rootAbs, host)) throw invalidArgument(`Cannot create "${path}": path escapes the root`);
  const rel = posix.relative(rootAbs, host).split("/").filter(Boolean);
  let cur = rootAbs;
  for (const part of rel) {
    const next = `${cur}/${part}`;
    const st = await lstat(next).catch(() => undefined);
    if (!st) {
      await mkdir(next, { mode: 0o755 });
      await chmod(next, 0o755);
      if (owner) await lchown(next, owner.uid, owner.gid);
    } else if (!st.isDirectory()) throw invalidArgument(`Cannot create directory "${path}": "${part}" is not a directory`);
    cur = next;
  }
  return host;
}

/** Whether `path` (a container path) is an existing directory in `root`. */
export async function isDirInRoot(root: string, path: string): Promise<boolean> {
  const host = await resolveInRoot(root, path);
  if (!under(posix.resolve(root), host)) return false;
  return (await lstat(host).catch(() => undefined))?.isDirectory() === true;
}

/**
 * Copies one node (recursively for directories) to `target`, a host path whose parent is
 * checked. The writes are synchronous: a COPY of a thousand small files is thousands of
 * metadata calls, each far cheaper than a trip through libuv's thread pool; the loop yields
 * to the event loop every few dozen entries so that the daemon stays responsive.
 */
async function copyNode(tree: SourceTree, m: SourceMatch, target: string, o: CopyOptions): Promise<void> {
  const fs = tree.fs ?? diskFs;
  const dirTimes: { path: string; stat: EntryStat }[] = [];
  let n = 0;
  for await (const e of walk(tree, m, o.excludes)) {
    if (++n % 64 === 0) await yieldToLoop();
    const dst = e.sub ? `${target}/${e.sub}` : target;
    const st = e.stat;
    const uid = o.chown ? o.chown.uid : tree.keepOwners ? st.uid : 0;
    const gid = o.chown ? o.chown.gid : tree.keepOwners ? st.gid : 0;
    const mode = o.chmod ?? st.mode & 0o7777;
    const have = lstatSync(dst, { throwIfNoEntry: false });
    if (st.isDirectory()) {
      // The destination directory itself keeps its metadata (or that of its creation).
      if (e.sub === "") continue;
      if (have && !have.isDirectory()) rmSync(dst, { force: true });
      if (!have?.isDirectory()) mkdirSync(dst, { mode: 0o700 });
      lchownSync(dst, uid, gid);
      chmodSync(dst, mode);
      dirTimes.push({ path: dst, stat: st });
      continue;
    }
    if (have?.isDirectory())
      throw invalidArgument(`cannot copy to non-directory: cannot replace directory "${e.sub || m.rel}" with a file`);
    if (have) rmSync(dst, { force: true });
    if (st.isSymbolicLink()) {
      symlinkSync(await fs.readlink(e.host), dst);
      lchownSync(dst, uid, gid);
      lutimesSync(dst, st.atime, st.mtime);
    } else if (st.isFile()) {
      await fs.copyTo(e.host, dst);
      lchownSync(dst, uid, gid);
      chmodSync(dst, mode);
      utimesSync(dst, st.atime, st.mtime);
    }
    // FIFOs, sockets and devices are not copied, as Docker does not.
  }
  for (const d of dirTimes.reverse()) utimesSync(d.path, d.stat.atime, d.stat.mtime);
}

/**
 * Copies matched sources to `dest` (a container path, already absolute) inside `root` with
 * Docker's rules: a directory's contents go into `dest`; files go to `dest/<name>` when `dest`
 * is a directory (it ends in `/`, several sources were given, or it exists as one), else to
 * `dest` itself. `parents` keeps each source's path under `dest`.
 */
export async function copyInto(
  root: string,
  tree: SourceTree,
  matches: SourceMatch[],
  dest: string,
  options: CopyOptions & { destIsDir: boolean; parents?: boolean },
): Promise<void> {
  const destDir = options.destIsDir || (await isDirInRoot(root, dest));
  for (const m of matches) {
    let targetPath: string;
    if (options.parents) targetPath = posix.join(dest, m.rel);
    else if (m.stat.isDirectory()) targetPath = dest;
    else targetPath = destDir ? posix.join(dest, posix.basename(m.rel || m.host)) : dest;
    const parent = await mkdirAllInRoot(root, posix.dirname(targetPath), options.chown);
    let target: string;
    if (m.stat.isDirectory()) target = await mkdirAllInRoot(root, targetPath, options.chown);
    else {
      // The last component is never followed: a symlink there is replaced.
      target = `${parent}/${posix.basename(targetPath)}`;
      if (posix.basename(targetPath) === "" || targetPath === "/") throw invalidArgument(`Cannot copy a file to "${dest}"`);
    }
    await copyNode(tree, m, target, options);
  }
}

/** Writes an inline file (a heredoc of COPY/ADD) inside `root`. */
export async function writeInline(root: string, path: string, data: string, options: CopyOptions): Promise<void> {
  const parent = await mkdirAllInRoot(root, posix.dirname(path), options.chown);
  const target = `${parent}/${posix.basename(path)}`;
  const have = await lstat(target).catch(() => undefined);
  if (have?.isDirectory()) throw invalidArgument(`Cannot write "${path}": it is a directory`);
  if (have) await rm(target, { force: true });
  await writeFile(target, data, { mode: 0o600, flag: "wx" });
  await chmod(target, options.chmod ?? 0o644);
  if (options.chown) await lchown(target, options.chown.uid, options.chown.gid);
}

/** Parses `--chmod` (octal only, as the classic builder). */
export function parseChmod(v: string | undefined): number | undefined {
  if (v === undefined || v === "") return undefined;
  if (!/^[0-7]{3,4}$/.test(v)) throw invalidArgument(`invalid chmod parameter: "${v}": it must be an octal number`);
  return Number.parseInt(v, 8);
}
