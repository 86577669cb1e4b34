/**
 * Getting at a container's files from the host: `docker diff` (the changes of the container's
 * own layer), `docker cp` (stat of a path, a tar of a path, extraction of a tar into a
 * directory), `docker export` (the merged file system) and the layer `docker commit` records.
 *
 * A container's tree is written by its processes, which may be hostile and may still be
 * running. berth never lets the kernel follow a symlink of that tree. Every path is walked
 * here one component at a time: each component is opened relative to the descriptor of the
 * directory before it, with O_NOFOLLOW (as `/proc/self/fd/<fd>/<name>`, Node's stand-in for
 * openat), and symlinks are read and resolved here with the container's root as `/` and `..`
 * stopping at it. A process that swaps a component for a symlink between two steps
 * (CVE-2018-15664) makes the open fail and the step start over; it cannot send it outside the
 * root. Trees are read and removed the same way, descriptor by descriptor. Nothing from the
 * container's file system is executed or loaded (its `/etc/passwd` is only parsed).
 *
 * The root is the running container's own root (`/proc/<pid>/root`, checked to be the
 * container's overlay, so that its volumes and bind mounts are seen as the container sees
 * them), or, for a stopped container, its snapshot mounted at its rootfs directory for the
 * time of the operation (under the container's lifecycle lock, so that no start can mount it
 * at the same time).
 */
import {
  closeSync,
  fchmodSync,
  fchownSync,
  constants as fsc,
  fstatSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  rmdirSync,
  type Stats,
  statfsSync,
  statSync,
  symlinkSync,
  unlinkSync,
} from "node:fs";
import { Readable } from "node:stream";
import { cleanPath, decompress, encodeHeader, END_OF_ARCHIVE, type HeaderSpec, padding, readXattrs, TarReader } from "../archive/mod.ts";
import type { TarHeader, TarSink } from "../archive/mod.ts";
import {
  BerthError,
  canceled,
  conflict,
  type Host,
  internal,
  invalidArgument,
  type Logger,
  messageOf,
  notFound,
  nullLogger,
  writeAllSync,
} from "../base/mod.ts";
import { resolveUserFrom } from "../runtime/mod.ts";
import type { OverlaySnapshotter } from "../snapshot/mod.ts";
import { type MountPoint, MTAB_TARGET } from "./mounts.ts";
import type { ContainerRecord } from "./model.ts";
import type { ContainerService } from "./service.ts";

// ---------------------------------------------------------------- public types

/** Kinds of change in `GET /containers/{id}/changes`, numbered as the Engine API does. */
export const ChangeKind = { Modified: 0, Added: 1, Deleted: 2 } as const;
export type ChangeKind = (typeof ChangeKind)[keyof typeof ChangeKind];

/** One entry of `docker diff`. */
export interface Change {
  Path: string;
  Kind: ChangeKind;
}

/**
 * What `HEAD /containers/{id}/archive` reports in `X-Docker-Container-Path-Stat` (base64 JSON):
 * `mode` is a Go `os.FileMode` (type bits high, permissions low), `mtime` RFC 3339,
 * `linkTarget` the symlink's target fully resolved inside the container.
 */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** Options of `ContainerArchive.extract` (`PUT /containers/{id}/archive`). */
export interface ExtractOptions {
  /** Refuse to replace a directory by a non-directory and the reverse (the docker CLI sets it). */
  noOverwriteDirNonDir?: boolean;
  /** `docker cp -a`: files belong to the container's user instead of the archive's owners. */
  copyUidGid?: boolean;
  signal?: AbortSignal;
}

// ---------------------------------------------------------------- descriptors

const O_DIR = fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW;
// O_NONBLOCK: a node swapped for a FIFO between lstat and open must not block the daemon.
const O_READ = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY;
const O_CREATE = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW;
const MAX_LINKS = 40;
const MAX_RETRIES = 1000;
const CHUNK = 1024 * 1024;
const BATCH = 256 * 1024;
/** Entries of a `cp` into a container (what `applyLayer` allows per layer). */
const MAX_ENTRIES = 1_000_000;

/** The path of `name` inside the directory open as `fd`, resolved by the kernel without following `name`. */
function at(fd: number, name?: string): string {
  return name ? `/proc/self/fd/${fd}/${name}` : `/proc/self/fd/${fd}`;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

function lstatAt(fd: number, name: string): Stats | undefined {
  try {
    return lstatSync(at(fd, name));
  } catch (e) {
    if (errno(e) === "ENOENT" || errno(e) === "ENOTDIR") return undefined;
    throw e;
  }
}

/** Opens a directory without following a symlink; undefined if the node is not (or no longer) one. */
function openDirAt(fd: number, name: string): number | undefined {
  try {
    return openSync(at(fd, name), O_DIR);
  } catch (e) {
    const c = errno(e);
    if (c === "ELOOP" || c === "ENOTDIR" || c === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * Kernel file systems a running container has mounted (statfs magic numbers): `cp` neither
 * reads nor writes them (reading `/proc/kcore` or `/sys` attributes as root is no copy), as
 * Docker, whose copies see these mount points as empty directories.
 */
const SPECIAL_FS = new Set([
  0x9fa0, // proc
  0x62656572, // sysfs
  0x27e0eb, // cgroup
  0x63677270, // cgroup2
  0x1cd1, // devpts
  0x19800202, // mqueue
  0x64626720, // debugfs
  0x74726163, // tracefs
  0x73636673, // securityfs
  0xcafe4a11, // bpf
  0x65735546, // fusectl
  0x62656570, // configfs
  0x6165676c, // pstore
  0xde5e81e4, // efivarfs
  0x42494e4d, // binfmt_misc
]);

function isSpecialFs(fd: number): boolean {
  try {
    return SPECIAL_FS.has(statfsSync(at(fd)).type);
  } catch {
    return true;
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {}
}

/** A node of the container's tree, found by `locate`. */
interface Location {
  /** The directory holding the node: the root's descriptor or one that `close` releases. */
  dir: number;
  /** The node's name in `dir`; empty when the node is the directory `dir` itself. */
  name: string;
  /** The node's path in the container, symlinks resolved (except a final one not followed). */
  path: string;
  /** lstat of the node; undefined when it does not exist (only with `missingOk`). */
  st: Stats | undefined;
  close(): void;
}

interface LocateOptions {
  /** Follow a symlink in the last component too. */
  follow: boolean;
  /** A missing last component is not an error (`st` is undefined). */
  missingOk?: boolean;
  /** A missing directory on the way ends the walk: the rest of the path is taken by name. */
  partial?: boolean;
  /** Create missing directories on the way and at the end, owned by this user (tar extraction). */
  mkdirs?: { uid: number; gid: number } | undefined;
}

function split(path: string): string[] {
  return path.split("/").filter((p) => p !== "" && p !== ".");
}

/**
 * Resolves `path` inside the tree whose root directory is open as `root`, the way the kernel
 * resolves it for a process chrooted there, but without ever letting the kernel follow a
 * symlink: symlinks are read and their targets walked here (absolute ones from the root), `..`
 * never climbs above the root, and every directory on the way is opened with O_NOFOLLOW
 * relative to the previous one. A component swapped under our feet is walked again.
 */
function locate(root: number, path: string, options: LocateOptions): Location {
  const stack: { fd: number; name: string }[] = [{ fd: root, name: "" }];
  const pending = split(path).reverse();
  let links = 0;
  let retries = 0;
  const release = (keep: number) => {
    for (const s of stack) if (s.fd !== root && s.fd !== keep) closeQuietly(s.fd);
  };
  const pathOf = (name: string) => `/${[...stack.slice(1).map((s) => s.name), ...(name ? [name] : [])].join("/")}`;
  const done = (name: string, st: Stats | undefined): Location => {
    const top = stack[stack.length - 1]!;
    release(top.fd);
    const p = pathOf(name);
    return { dir: top.fd, name, path: p, st, close: () => top.fd !== root && closeQuietly(top.fd) };
  };
  try {
    while (pending.length) {
      const c = pending.pop()!;
      if (c === "..") {
        if (stack.length > 1) closeQuietly(stack.pop()!.fd);
        continue;
      }
      const top = stack[stack.length - 1]!;
      const last = pending.length === 0;
      const st = lstatAt(top.fd, c);
      if (!st) {
        if (options.mkdirs) {
          try {
            mkdirSync(at(top.fd, c), 0o755);
            lchownSync(at(top.fd, c), options.mkdirs.uid, options.mkdirs.gid);
          } catch (e) {
            if (errno(e) !== "EEXIST") throw e;
          }
          pending.push(c);
          continue;
        }
        if (last && options.missingOk) return done(c, undefined);
        if (options.partial) {
          // Resolved as far as it exists; the rest taken by name (Docker's FollowSymlinkInScope).
          const rest: string[] = [];
          for (const p of [c, ...pending.reverse()]) {
            if (p === "..") rest.pop();
            else rest.push(p);
          }
          return done(rest.join("/"), undefined);
        }
        throw notFound(`"${pathOf(c)}": no such file or directory`);
      }
      if (st.isSymbolicLink() && (!last || options.follow)) {
        if (++links > MAX_LINKS) throw invalidArgument(`"${path}": too many levels of symbolic links`);
        const target = readlinkSync(at(top.fd, c));
        if (target.startsWith("/")) {
          release(root);
          stack.length = 1;
        }
        for (const p of split(target).reverse()) pending.push(p);
        continue;
      }
      if (last) return done(c, st);
      if (!st.isDirectory()) throw invalidArgument(`"${pathOf(c)}": not a directory`);
      const fd = openDirAt(top.fd, c);
      if (fd === undefined) {
        // Swapped between lstat and open: look again.
        if (++retries > MAX_RETRIES) throw conflict(`"${path}" keeps changing in the container`);
        pending.push(c);
        continue;
      }
      if (isSpecialFs(fd)) {
        closeQuietly(fd);
        throw invalidArgument(`"${pathOf(c)}": copying from or into kernel file systems (/proc, /sys) is not supported`);
      }
      stack.push({ fd, name: c });
    }
    // The path ends at a directory reached by walking (the root, or a trailing "..").
    return done("", undefined);
  } catch (e) {
    release(root);
    throw e;
  }
}

/** The node a location names, as a directory descriptor (`dir` itself when `name` is empty). */
function openLocatedDir(loc: Location): number {
  if (!loc.name) return loc.dir;
  const fd = openDirAt(loc.dir, loc.name);
  if (fd === undefined) throw conflict(`"${loc.path}" changed in the container while being copied`);
  if (isSpecialFs(fd)) {
    closeQuietly(fd);
    throw invalidArgument(`"${loc.path}": copying from or into kernel file systems (/proc, /sys) is not supported`);
  }
  return fd;
}

function statOf(loc: Location): Stats {
  if (loc.st) return loc.st;
  return fstatSync(loc.dir);
}

/** Removes a node and everything under it, descriptor by descriptor (never through a symlink). */
function removeAt(dir: number, name: string): void {
  const st = lstatAt(dir, name);
  if (!st) return;
  if (!st.isDirectory()) {
    unlinkSync(at(dir, name));
    return;
  }
  const fd = openDirAt(dir, name);
  if (fd === undefined) {
    // Replaced by a non-directory meanwhile: that is what we remove.
    removeAt(dir, name);
    return;
  }
  try {
    for (const n of readdirSync(at(fd))) removeAt(fd, n);
  } finally {
    closeSync(fd);
  }
  rmdirSync(at(dir, name));
}

// ---------------------------------------------------------------- Go's view of a stat

const GO_DIR = 2 ** 31;
const GO_SYMLINK = 2 ** 27;
const GO_DEVICE = 2 ** 26;
const GO_NAMED_PIPE = 2 ** 25;
const GO_SOCKET = 2 ** 24;
const GO_SETUID = 2 ** 23;
const GO_SETGID = 2 ** 22;
const GO_CHAR_DEVICE = 2 ** 21;
const GO_STICKY = 2 ** 20;

/** A Linux `st_mode` as Go's `os.FileMode`, which the docker CLI decodes. */
export function goFileMode(mode: number): number {
  let m = mode & 0o777;
  switch (mode & fsc.S_IFMT) {
    case fsc.S_IFDIR:
      m += GO_DIR;
      break;
    case fsc.S_IFLNK:
      m += GO_SYMLINK;
      break;
    case fsc.S_IFBLK:
      m += GO_DEVICE;
      break;
    case fsc.S_IFCHR:
      m += GO_DEVICE + GO_CHAR_DEVICE;
      break;
    case fsc.S_IFIFO:
      m += GO_NAMED_PIPE;
      break;
    case fsc.S_IFSOCK:
      m += GO_SOCKET;
      break;
  }
  if (mode & 0o4000) m += GO_SETUID;
  if (mode & 0o2000) m += GO_SETGID;
  if (mode & 0o1000) m += GO_STICKY;
  return m;
}

/** Go's `filepath.Base`: the last element, trailing slashes ignored; "/" for the root. */
export function goBase(path: string): string {
  const t = path.replace(/\/+$/, "");
  if (t === "") return path.startsWith("/") ? "/" : ".";
  return t.slice(t.lastIndexOf("/") + 1);
}

/**
 * The path as the daemon resolves it: absolute, cleaned, keeping a trailing `/` or `/.` (which
 * ask for the directory a final symlink points to, and for its contents).
 */
export function containerPath(path: string): string {
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  let abs = `/${parts.join("/")}`;
  if (abs !== "/") {
    if (/(^|\/)\.$/.test(path)) abs += "/.";
    else if (path.endsWith("/")) abs += "/";
  }
  return abs;
}

function followsFinal(abs: string): boolean {
  return abs !== "/" && (abs.endsWith("/") || abs.endsWith("/."));
}

// ---------------------------------------------------------------- tar output

/** Where a tree walk puts its entries and how it treats overlay nodes. */
interface TarWalk {
  /** Name of the walked directory's own entry (`d/`), or undefined for none (export, layers). */
  rootName: string | undefined;
  /** Prefix of the entries below it: `d/` → `d/x`, `./` → `./x`, `/` → `/x`, `` → `x`. */
  prefix: string;
  /** Overlay upper directory: whiteouts become `.wh.` entries, opaque directories `.wh..wh..opq`. */
  overlay?: boolean;
  /** Extended attributes by relative path (layers only). */
  xattrs?: Map<string, Map<string, Buffer>>;
  /** Relative paths left out (mount points runc made). */
  skip?: (rel: string, st: Stats, dirFd: number, name: string) => boolean;
  signal?: AbortSignal | undefined;
  log: Logger;
}

function typeOf(st: Stats): HeaderSpec["type"] | undefined {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "char";
  if (st.isBlockDevice()) return "block";
  if (st.isFIFO()) return "fifo";
  return undefined; // sockets are not archived, as Docker does
}

function devMajor(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
function devMinor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function headerOf(name: string, st: Stats, type: HeaderSpec["type"]): HeaderSpec {
  return { name, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: Math.floor(st.mtimeMs / 1000) };
}

/** Keeps overlay's own attributes and the host's SELinux labels out of archives. */
function layerAttrs(m: Map<string, Buffer> | undefined): Map<string, Buffer> | undefined {
  if (!m) return undefined;
  const out = new Map<string, Buffer>();
  for (const [k, v] of m)
    if (!k.startsWith("trusted.overlay.") && !k.startsWith("user.overlay.") && k !== "security.selinux") out.set(k, v);
  return out.size ? out : undefined;
}

/**
 * A tar of the directory open as `dirFd` (which stays the caller's to close), read
 * descriptor by descriptor. Directories come before their contents, names in byte order; a
 * file that shrinks while read is padded with zeros so the archive stays valid.
 */
async function* tarTree(dirFd: number, walk: TarWalk): AsyncGenerator<Buffer> {
  const keep = dirFd;
  let batch: Buffer[] = [];
  let batched = 0;
  const push = (b: Buffer) => {
    batch.push(b);
    batched += b.length;
  };
  const take = (): Buffer => {
    const b = batch.length === 1 ? batch[0]! : Buffer.concat(batch);
    batch = [];
    batched = 0;
    return b;
  };
  const inodes = new Map<string, string>();
  const opaqueOf = (rel: string) => walk.overlay && walk.xattrs?.get(rel)?.get("trusted.overlay.opaque")?.toString() === "y";
  if (walk.rootName !== undefined) push(encodeHeader(headerOf(walk.rootName, fstatSync(dirFd), "dir")));
  // Depth first with an explicit stack of open directories, so that a deep tree costs no recursion.
  const dirs: { fd: number; rel: string; names: string[] }[] = [];
  const enter = (fd: number, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(at(fd)).sort(byteOrder).reverse();
    } catch (e) {
      if (fd !== keep) closeQuietly(fd);
      throw e;
    }
    dirs.push({ fd, rel, names });
  };
  try {
    enter(dirFd, "");
    while (dirs.length) {
      if (walk.signal?.aborted) throw canceled("Creating the archive was canceled");
      const d = dirs[dirs.length - 1]!;
      const name = d.names.pop();
      if (name === undefined) {
        dirs.pop();
        if (d.fd !== keep) closeQuietly(d.fd);
        continue;
      }
      const rel = d.rel ? `${d.rel}/${name}` : name;
      const entryName = `${walk.prefix}${rel}`;
      const st = lstatAt(d.fd, name);
      if (!st) continue; // removed meanwhile
      const type = typeOf(st);
      if (!type || walk.skip?.(rel, st, d.fd, name)) continue;
      if (walk.overlay && type === "char" && st.rdev === 0) {
        const slash = entryName.lastIndexOf("/");
        const whName = `${entryName.slice(0, slash + 1)}.wh.${entryName.slice(slash + 1)}`;
        push(encodeHeader({ name: whName, type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: Math.floor(st.mtimeMs / 1000) }));
      } else if (type === "dir") {
        const fd = openDirAt(d.fd, name);
        if (fd === undefined) continue; // no longer a directory: left out rather than followed
        const dst = fstatSync(fd);
        const spec = headerOf(`${entryName}/`, dst, "dir");
        const attrs = layerAttrs(walk.xattrs?.get(rel));
        if (attrs) spec.xattrs = attrs;
        push(encodeHeader(spec));
        if (opaqueOf(rel))
          push(encodeHeader({ name: `${entryName}/.wh..wh..opq`, type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: spec.mtime }));
        if (isSpecialFs(fd))
          closeQuietly(fd); // a mount point of /proc or /sys: an empty directory here
        else enter(fd, rel);
      } else if (type === "file") {
        let fd: number;
        try {
          fd = openSync(at(d.fd, name), O_READ);
        } catch (e) {
          if (errno(e) === "ELOOP" || errno(e) === "ENOENT" || errno(e) === "ENXIO") continue;
          throw e;
        }
        try {
          const fst = fstatSync(fd);
          if (!fst.isFile()) continue; // swapped for something else
          let spec = headerOf(entryName, fst, "file");
          const attrs = layerAttrs(walk.xattrs?.get(rel));
          if (attrs) spec.xattrs = attrs;
          if (fst.nlink > 1) {
            const id = `${fst.dev}:${fst.ino}`;
            const first = inodes.get(id);
            if (first !== undefined) {
              spec = { ...headerOf(entryName, fst, "link"), linkname: first };
              push(encodeHeader(spec));
              continue;
            }
            inodes.set(id, entryName);
          }
          spec.size = fst.size;
          push(encodeHeader(spec));
          let left = fst.size;
          let shrank = false;
          while (left > 0) {
            const buf = Buffer.allocUnsafe(Math.min(left, CHUNK));
            let got = 0;
            while (got < buf.length && !shrank) {
              const n = readSync(fd, buf, got, buf.length - got, null);
              if (n === 0) shrank = true;
              got += n;
            }
            if (got < buf.length) buf.fill(0, got);
            left -= buf.length;
            push(buf);
            if (batched >= BATCH) yield take();
          }
          if (shrank) walk.log.warn("A file shrank while it was archived; padded with zeros", { path: entryName });
          push(padding(fst.size));
        } finally {
          closeSync(fd);
        }
      } else {
        const spec = headerOf(entryName, st, type);
        if (type === "symlink") {
          try {
            spec.linkname = readlinkSync(at(d.fd, name));
          } catch (e) {
            if (errno(e) === "ENOENT" || errno(e) === "EINVAL") continue;
            throw e;
          }
        } else if (type === "char" || type === "block") {
          spec.devmajor = devMajor(st.rdev);
          spec.devminor = devMinor(st.rdev);
        }
        const attrs = layerAttrs(walk.xattrs?.get(rel));
        if (attrs) spec.xattrs = attrs;
        push(encodeHeader(spec));
      }
      if (batched >= BATCH) yield take();
    }
    push(END_OF_ARCHIVE);
    yield take();
  } finally {
    for (const d of dirs) if (d.fd !== keep) closeQuietly(d.fd);
  }
}

/** A tar of a single non-directory node. */
function* tarNode(loc: Location, name: string, log: Logger): Generator<Buffer> {
  const st = statOf(loc);
  const type = typeOf(st);
  if (!type) throw invalidArgument(`"${loc.path}" is a socket and cannot be archived`);
  if (type !== "file") {
    const spec = headerOf(name, st, type);
    if (type === "symlink") spec.linkname = readlinkSync(at(loc.dir, loc.name));
    if (type === "char" || type === "block") {
      spec.devmajor = devMajor(st.rdev);
      spec.devminor = devMinor(st.rdev);
    }
    yield Buffer.concat([encodeHeader(spec), END_OF_ARCHIVE]);
    return;
  }
  const fd = openSync(at(loc.dir, loc.name), O_READ);
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile()) throw conflict(`"${loc.path}" changed in the container while being copied`);
    yield encodeHeader({ ...headerOf(name, fst, "file"), size: fst.size });
    let left = fst.size;
    let shrank = false;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(left, CHUNK));
      let got = 0;
      while (got < buf.length && !shrank) {
        const n = readSync(fd, buf, got, buf.length - got, null);
        if (n === 0) shrank = true;
        got += n;
      }
      if (got < buf.length) buf.fill(0, got);
      left -= buf.length;
      yield buf;
    }
    if (shrank) log.warn("A file shrank while it was archived; padded with zeros", { path: loc.path });
    yield Buffer.concat([padding(fst.size), END_OF_ARCHIVE]);
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------- tar input

/**
 * Extracts a tar into a directory of a live tree (`docker cp` into a container). Unlike
 * `applyLayer` it knows no whiteouts and no lowers, merges into what is there, and leaves what
 * it did in place when it fails. Every entry is resolved below the destination with `locate`:
 * a name that climbs out of the destination is refused, a symlink on the way is followed inside
 * the root only, the last component is replaced and never followed.
 */
class TreeExtractor implements TarSink {
  readonly #root: number;
  readonly #dest: string;
  readonly #noOverwrite: boolean;
  readonly #owner: { uid: number; gid: number } | undefined;
  readonly #chown: boolean;
  readonly #log: Logger;
  #entry = "";
  #fd = -1;
  #file: TarHeader | undefined;
  /** Parent directories by destination-relative path: most entries share their parent with the previous one. */
  #parent: { key: string; loc: Location } | undefined;
  #dirTimes: { path: string; mtime: number }[] = [];
  skipped = 0;

  constructor(root: number, dest: string, options: { noOverwrite: boolean; owner: { uid: number; gid: number } | undefined; log: Logger }) {
    this.#root = root;
    this.#dest = dest === "/" ? "" : dest;
    this.#noOverwrite = options.noOverwrite;
    this.#owner = options.owner;
    this.#chown = process.getuid?.() === 0;
    this.#log = options.log;
  }

  #fail(reason: string): never {
    throw invalidArgument(`Cannot extract "${this.#entry}": ${reason}`);
  }

  #ids(h: TarHeader): { uid: number; gid: number } {
    return this.#owner ?? { uid: h.uid, gid: h.gid };
  }

  /** The directory an entry goes in, created (owned by root, as Docker does) where missing. */
  #parentOf(comps: string[]): Location {
    const key = comps.slice(0, -1).join("/");
    if (this.#parent?.key === key) return this.#parent.loc;
    this.#parent?.loc.close();
    this.#parent = undefined;
    const loc = locate(this.#root, `${this.#dest}/${key}`, { follow: true, mkdirs: { uid: 0, gid: 0 } });
    if (loc.name) {
      // The parent is named by its last component: hold the directory itself.
      const st = loc.st;
      if (!st?.isDirectory()) {
        loc.close();
        this.#fail(`"${loc.path}" is not a directory`);
      }
      const fd = openLocatedDir(loc);
      loc.close();
      const held: Location = { dir: fd, name: "", path: loc.path, st: undefined, close: () => closeQuietly(fd) };
      this.#parent = { key, loc: held };
      return held;
    }
    this.#parent = { key, loc };
    return loc;
  }

  entry(h: TarHeader): void {
    this.#entry = h.name;
    try {
      this.#apply(h);
    } catch (e) {
      throw this.#wrap(e);
    }
  }

  #wrap(e: unknown): unknown {
    if (e instanceof BerthError) return e;
    const msg = `Cannot extract "${this.#entry}": ${messageOf(e).replace(/\/proc\/self\/fd\/\d+\/?/g, "")}`;
    const code = errno(e);
    if (code === "EROFS") return invalidArgument(`${msg} (read-only file system)`, { cause: e });
    if (code === "ENOTDIR" || code === "ELOOP" || code === "ENAMETOOLONG" || code === "EISDIR" || code === "EXDEV" || code === "EPERM")
      return invalidArgument(msg, { cause: e });
    if (code === "ENOSPC" || code === "EDQUOT") return internal(msg, { cause: e });
    return internal(msg, { cause: e });
  }

  #apply(h: TarHeader): void {
    const comps = cleanPath(h.name);
    if (comps === null) this.#fail(`the path is outside of the destination "${this.#dest || "/"}"`);
    if (comps.length === 0) return; // the destination itself: left as it is, as Docker does
    const base = comps[comps.length - 1]!;
    const parent = this.#parentOf(comps);
    const dir = parent.dir;
    const path = `${parent.path === "/" ? "" : parent.path}/${base}`;
    const existing = lstatAt(dir, base);
    if (existing) {
      const isDir = existing.isDirectory();
      if (this.#noOverwrite && isDir && h.type !== "dir") this.#fail(`cannot overwrite directory "${path}" with non-directory`);
      if (this.#noOverwrite && !isDir && h.type === "dir") this.#fail(`cannot overwrite non-directory "${path}" with directory`);
      if (!(isDir && h.type === "dir")) this.#removeExisting(comps, dir, base);
    }
    const ids = this.#ids(h);
    switch (h.type) {
      case "dir": {
        try {
          mkdirSync(at(dir, base), 0o700);
        } catch (e) {
          if (errno(e) !== "EEXIST") throw e;
        }
        const fd = openDirAt(dir, base);
        if (fd === undefined) this.#fail(`"${path}" changed while being extracted`);
        try {
          if (this.#chown) fchownSync(fd, ids.uid, ids.gid);
          fchmodSync(fd, h.mode);
        } finally {
          closeSync(fd);
        }
        this.#dirTimes.push({ path, mtime: h.mtime });
        return;
      }
      case "file": {
        this.#fd = this.#create(dir, base);
        this.#file = h;
        return;
      }
      case "symlink": {
        if (!h.linkname) this.#fail("symlink with an empty target");
        this.#replace(dir, base, () => symlinkSync(h.linkname, at(dir, base)));
        if (this.#chown) lchownSync(at(dir, base), ids.uid, ids.gid);
        lutimesSync(at(dir, base), h.mtime, h.mtime);
        return;
      }
      case "link": {
        const target = cleanPath(h.linkname);
        if (target === null || target.length === 0) this.#fail(`hard link target "${h.linkname}" is outside of the destination`);
        const src = locate(this.#root, `${this.#dest}/${target.join("/")}`, { follow: false });
        try {
          if (!src.name) this.#fail(`hard link target "${h.linkname}" is a directory`);
          if (src.st?.isDirectory()) this.#fail(`hard link target "${h.linkname}" is a directory`);
          this.#replace(dir, base, () => linkSync(at(src.dir, src.name), at(dir, base)));
        } finally {
          src.close();
        }
        return;
      }
      default:
        // Device nodes and FIFOs need mknod(2), which Node lacks; `docker cp` of them is rare.
        this.skipped++;
        this.#log.warn("Skipping a device node or FIFO in an archive copied into a container", { entry: h.name });
        return;
    }
  }

  /** Removes what an entry replaces; a cached parent below it would name a deleted directory. */
  #removeExisting(comps: string[], dir: number, base: string): void {
    const key = comps.join("/");
    if (this.#parent && (this.#parent.key === key || this.#parent.key.startsWith(`${key}/`))) {
      this.#parent.loc.close();
      this.#parent = undefined;
    }
    removeAt(dir, base);
  }

  #replace(dir: number, base: string, make: () => void): void {
    try {
      make();
    } catch (e) {
      if (errno(e) !== "EEXIST") throw e;
      removeAt(dir, base);
      make();
    }
  }

  #create(dir: number, base: string): number {
    let fd = -1;
    this.#replace(dir, base, () => {
      fd = openSync(at(dir, base), O_CREATE, 0o600);
    });
    return fd;
  }

  data(chunk: Buffer): void {
    if (this.#fd < 0) return;
    try {
      writeAllSync(this.#fd, chunk);
    } catch (e) {
      throw this.#wrap(e);
    }
  }

  entryEnd(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    const h = this.#file!;
    this.#fd = -1;
    this.#file = undefined;
    try {
      const ids = this.#ids(h);
      // chown first: it clears setuid and setgid, which the chmod then sets.
      if (this.#chown) fchownSync(fd, ids.uid, ids.gid);
      fchmodSync(fd, h.mode);
      futimesSync(fd, h.mtime, h.mtime);
    } catch (e) {
      throw this.#wrap(e);
    } finally {
      closeSync(fd);
    }
  }

  /** Directory times last (creating entries inside changed them), then releases descriptors. */
  finish(): void {
    this.#parent?.loc.close();
    this.#parent = undefined;
    for (const d of this.#dirTimes.reverse()) {
      this.#entry = d.path;
      let loc: Location | undefined;
      try {
        loc = locate(this.#root, d.path, { follow: false, missingOk: true });
        if (!loc.st?.isDirectory() && loc.name) continue;
        const fd = openLocatedDir(loc);
        try {
          futimesSync(fd, d.mtime, d.mtime);
        } finally {
          if (fd !== loc.dir) closeSync(fd);
        }
      } catch (e) {
        this.#log.debug("cannot set a directory's time", { path: d.path, error: messageOf(e) });
      } finally {
        loc?.close();
      }
    }
  }

  abort(): void {
    if (this.#fd >= 0) closeQuietly(this.#fd);
    this.#fd = -1;
    this.#parent?.loc.close();
    this.#parent = undefined;
  }
}

// ---------------------------------------------------------------- overlay diff

/**
 * Mount points runc creates in the container's own layer when the image lacks them, and the
 * files `ensureInitFiles` adds. Docker keeps these in a hidden "-init" layer, so they never show
 * in `diff` nor in committed images; berth leaves them out while they are still what runc or
 * berth made (empty files and directories, the /etc/mtab link).
 */
const PLACEHOLDERS = new Set([
  ".dockerenv",
  "dev",
  "dev/console",
  "dev/pts",
  "dev/shm",
  "dev/mqueue",
  "etc/hostname",
  "etc/hosts",
  "etc/mtab",
  "etc/resolv.conf",
  "proc",
  "sys",
]);

function isPlaceholder(rel: string, st: Stats, dirFd: number, name: string): boolean {
  if (!PLACEHOLDERS.has(rel)) return false;
  if (st.isFile()) return st.size === 0;
  if (st.isSymbolicLink()) {
    // /etc/mtab -> /proc/mounts, which berth adds (as Docker's -init layer does) to images without one.
    try {
      return rel === "etc/mtab" && readlinkSync(at(dirFd, name)) === MTAB_TARGET;
    } catch {
      return false;
    }
  }
  if (st.isDirectory()) {
    try {
      return readdirSync(at(dirFd, name)).length === 0;
    } catch {
      return false;
    }
  }
  return false;
}

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function lstatMaybe(p: string): Stats | undefined {
  try {
    return lstatSync(p, { throwIfNoEntry: false });
  } catch (e) {
    if (errno(e) === "ENOTDIR") return undefined;
    throw e;
  }
}

/**
 * `docker diff` of an overlay upper directory over its lowers (topmost first), with Docker's
 * rules: a whiteout is a deletion; a node no lower shows is an addition, otherwise a
 * modification, except a directory whose size, mode and time match the lower's; the parent of
 * an added or deleted node is reported modified (once, and never the root). Opaque
 * directories hide the lowers below them. The upper is read by descriptors (a running
 * container writes it); the lowers are committed layers and are read by path, each prefix
 * checked to be a directory in that lower first.
 */
function overlayChanges(upperFd: number, lowers: readonly string[], opaque: Set<string>): Change[] {
  const out: Change[] = [];
  /** `recorded`: whether the directory itself was reported (else an added or deleted child reports it). */
  const walk = (fd: number, rel: string, stack: readonly string[], recorded: boolean): void => {
    let parentDone = recorded || rel === "";
    for (const name of readdirSync(at(fd)).sort(byteOrder)) {
      const childRel = rel ? `${rel}/${name}` : name;
      const path = `/${childRel}`;
      const st = lstatAt(fd, name);
      if (!st || isPlaceholder(childRel, st, fd, name)) continue;
      let kind: ChangeKind | undefined;
      let childStack: string[] = [];
      if (isWhiteout(st)) kind = ChangeKind.Deleted;
      else {
        let lower: Stats | undefined;
        for (const l of stack) {
          const ls = lstatMaybe(`${l}/${childRel}`);
          if (!ls) continue;
          if (!isWhiteout(ls)) lower = ls;
          break;
        }
        if (!lower) kind = ChangeKind.Added;
        else if (!(st.isDirectory() && lower.isDirectory())) kind = ChangeKind.Modified;
        else if (st.mode !== lower.mode || st.uid !== lower.uid || st.gid !== lower.gid || opaque.has(childRel)) kind = ChangeKind.Modified;
        else if (st.size !== lower.size || Math.floor(st.mtimeMs) !== Math.floor(lower.mtimeMs)) {
          // Only its time moved. Docker reports that, unless all the directory holds in this
          // layer is a mount point runc made (whose creation moved the time).
          if (!onlyPlaceholders(fd, name, childRel)) kind = ChangeKind.Modified;
        }
        if (st.isDirectory() && kind !== ChangeKind.Added && !opaque.has(childRel)) {
          // The lowers in which this directory is visible: every prefix was a directory in each.
          for (const l of stack) {
            const ls = lstatMaybe(`${l}/${childRel}`);
            if (!ls) continue;
            if (ls.isDirectory()) childStack.push(l);
            else break;
          }
        }
      }
      if ((kind === ChangeKind.Added || kind === ChangeKind.Deleted) && !parentDone) {
        out.push({ Path: `/${rel}`, Kind: ChangeKind.Modified });
        parentDone = true;
      }
      if (kind !== undefined) out.push({ Path: path, Kind: kind });
      if (st.isDirectory()) {
        const childFd = openDirAt(fd, name);
        if (childFd === undefined) continue;
        try {
          if (kind === ChangeKind.Added) childStack = [];
          walk(childFd, childRel, childStack, kind !== undefined);
        } finally {
          closeSync(childFd);
        }
      }
    }
  };
  walk(upperFd, "", lowers, true);
  return out;
}

/** Whether a directory of the upper holds nothing but runc's placeholder mount points. */
function onlyPlaceholders(dirFd: number, name: string, rel: string): boolean {
  const fd = openDirAt(dirFd, name);
  if (fd === undefined) return false;
  try {
    const names = readdirSync(at(fd));
    return (
      names.length > 0 &&
      names.every((n) => {
        const st = lstatAt(fd, n);
        return st !== undefined && isPlaceholder(`${rel}/${n}`, st, fd, n);
      })
    );
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------- the service

/** An open root of a container's tree, released after the operation. */
interface OpenRoot {
  fd: number;
  release(): Promise<void>;
}

/**
 * The container file operations behind `docker diff`, `cp`, `export` and `commit`. Each holds
 * the container's lifecycle lock for its duration (a streamed archive until its last byte).
 */
export class ContainerArchive {
  #containers: ContainerService;
  #snap: OverlaySnapshotter;
  #host: Host;
  #log: Logger;

  constructor(deps: { containers: ContainerService; snapshots: OverlaySnapshotter; host: Host; log?: Logger }) {
    this.#containers = deps.containers;
    this.#snap = deps.snapshots;
    this.#host = deps.host;
    this.#log = deps.log ?? nullLogger;
  }

  /**
   * Opens the root the container's processes see: `/proc/<pid>/root` when it is running and
   * that root is still its overlay (a recycled PID or a process that chrooted elsewhere fails
   * the check and the host-side mount is used), else the snapshot mounted at its rootfs
   * directory until `release`.
   */
  async #openRoot(c: ContainerRecord, view: "container" | "layers"): Promise<OpenRoot> {
    const rootfs = this.#containers.rootfs(c);
    if (c.State.Running) {
      let mounted: Stats | undefined;
      try {
        mounted = statSync(rootfs);
      } catch {
        mounted = undefined;
      }
      if (mounted && c.State.Pid > 0 && view === "container") {
        try {
          const fd = openSync(`/proc/${c.State.Pid}/root`, fsc.O_RDONLY | fsc.O_DIRECTORY);
          const st = fstatSync(fd);
          if (st.dev === mounted.dev && st.ino === mounted.ino) return { fd, release: async () => closeQuietly(fd) };
          closeQuietly(fd);
        } catch {
          // the process is gone: use the mount
        }
      }
      if (mounted && isMountPoint(rootfs, mounted)) {
        const fd = openSync(rootfs, O_DIR);
        return { fd, release: async () => closeQuietly(fd) };
      }
      throw conflict(`Container ${c.Id} is not running`);
    }
    await this.#host.unmount(rootfs).catch(() => {});
    await this.#snap.mount(c.berth.snapshotKey, rootfs);
    let fd: number;
    try {
      fd = openSync(rootfs, O_DIR);
    } catch (e) {
      await this.#host.unmount(rootfs).catch(() => {});
      throw e;
    }
    return {
      fd,
      release: async () => {
        closeQuietly(fd);
        await this.#host.unmount(rootfs).catch(async (e: unknown) => {
          this.#log.warn("unmounting a container's files after a copy failed; detaching", { id: c.Id, error: messageOf(e) });
          await this.#host.unmount(rootfs, { lazy: true }).catch(() => {});
        });
      },
    };
  }

  /** Runs `fn` on the container's open root, under its lock. */
  async #withRoot<T>(ref: string, fn: (root: number, c: ContainerRecord) => Promise<T> | T): Promise<T> {
    return await this.#containers.withLock(ref, async (c) => {
      const root = await this.#openRoot(c, "container");
      try {
        return await fn(root.fd, c);
      } finally {
        await root.release();
      }
    });
  }

  /**
   * Streams what `fn` produces from the container's open root, holding the lock and the root
   * until the stream ends or is destroyed. `fn` runs first and its value comes back with the
   * stream (the stat for the response headers).
   */
  async #streamFromRoot<T>(
    view: "container" | "layers",
    ref: string,
    fn: (root: number, c: ContainerRecord) => { value: T; body: AsyncIterable<Buffer> | Iterable<Buffer> },
  ): Promise<{ value: T; stream: Readable }> {
    return await new Promise((resolve, reject) => {
      this.#containers
        .withLock(ref, async (c) => {
          const root = await this.#openRoot(c, view);
          try {
            const { value, body } = fn(root.fd, c);
            const stream = Readable.from(body, { objectMode: false });
            const ended = new Promise<void>((r) => {
              stream.once("close", () => r());
            });
            resolve({ value, stream });
            await ended;
          } finally {
            await root.release();
          }
        })
        .catch(reject);
    });
  }

  /** `GET /containers/{id}/changes`: the container's own layer against its image. */
  async changes(ref: string): Promise<Change[]> {
    return await this.#containers.withLock(ref, async (c) => {
      const upper = this.#snap.dir(c.berth.snapshotKey);
      const lowers = c.berth.topChainId ? this.#snap.chainDirs(c.berth.topChainId) : [];
      return treeChanges(upper, lowers, await this.#opaqueDirs(c, upper));
    });
  }

  /** Directories of an upper dir marked opaque (relative paths). */
  async #opaqueDirs(c: ContainerRecord, upper: string): Promise<Set<string>> {
    const out = new Set<string>();
    const attrs = await this.#upperXattrs(c, upper).catch(() => new Map<string, Map<string, Buffer>>());
    for (const [rel, m] of attrs) if (m.get("trusted.overlay.opaque")?.toString() === "y") out.add(rel);
    return out;
  }

  /**
   * Extended attributes of a container's upper directory. `getfattr -R` walks by path, which a
   * running container could redirect by swapping a directory for a symlink under it: a running
   * container is frozen for that moment (without events; the walks that follow go by
   * descriptor and need no freeze).
   */
  async #upperXattrs(c: ContainerRecord, upper: string, signal?: AbortSignal): Promise<Map<string, Map<string, Buffer>>> {
    const cur = this.#containers.store.get(c.Id) ?? c;
    // A container that exits meanwhile cannot race us either: a failed freeze is no error.
    const freeze =
      cur.State.Running &&
      !cur.State.Paused &&
      (await this.#containers.runtime.pause(c.Id).then(
        () => true,
        () => false,
      ));
    try {
      return await readXattrs(this.#host, upper, signal);
    } finally {
      if (freeze)
        await this.#containers.runtime
          .resume(c.Id)
          .catch((e: unknown) => this.#log.warn("cannot thaw a container", { id: c.Id, error: messageOf(e) }));
    }
  }

  /** `HEAD /containers/{id}/archive`: the stat the docker CLI plans a copy with. */
  async stat(ref: string, path: string): Promise<PathStat> {
    return await this.#withRoot(ref, (root) => statPath(root, path, ref));
  }

  /**
   * `GET /containers/{id}/archive`: a tar of `path` with Docker's entry names: a directory
   * `/a/d` gives `d/`, `d/...`; `/a/d/.` gives `./`, `./...` (its contents); a file or a
   * symlink (not followed) one entry named after it; `/` gives `/`, `/bin`, ...
   */
  async archive(ref: string, path: string, options: { signal?: AbortSignal } = {}): Promise<{ stat: PathStat; stream: Readable }> {
    const r = await this.#streamFromRoot("container", ref, (root) => {
      const { stat, body } = archiveInTree(root, path, { ref, signal: options.signal, log: this.#log });
      return { value: stat, body };
    });
    return { stat: r.value, stream: r.stream };
  }

  /**
   * `PUT /containers/{id}/archive`: extracts a tar (plain, gzip or zstd) into the directory
   * `path`, which must exist (a final symlink is followed inside the container).
   */
  async extract(ref: string, path: string, body: AsyncIterable<unknown>, options: ExtractOptions = {}): Promise<void> {
    await this.#withRoot(ref, async (root, c) => {
      await extractInTree(root, path, body, {
        ...options,
        ref,
        log: this.#log,
        check: (dest) => checkWritable(c, dest),
        user: c.Config.User ?? "",
      });
    });
  }

  /** `GET /containers/{id}/export`: the container's merged file system as a tar. */
  async export(ref: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const log = this.#log;
    // Docker exports the container's layers only: no volumes, no /proc or /sys of a running one.
    const r = await this.#streamFromRoot("layers", ref, (root) => ({
      value: undefined,
      body: tarTree(root, { rootName: undefined, prefix: "", signal: options.signal, log }),
    }));
    return r.stream;
  }

  /**
   * The container's own layer as an uncompressed layer tar (whiteouts and opaque directories
   * in the image-spec form), for `docker commit`; runc's placeholder mount points are left
   * out. Call under `withLock` with the container paused or stopped.
   */
  async layer(c: ContainerRecord, signal?: AbortSignal): Promise<Readable> {
    const upper = this.#snap.dir(c.berth.snapshotKey);
    const xattrs = await this.#upperXattrs(c, upper, signal);
    const fd = openSync(upper, O_DIR);
    const log = this.#log;
    const body = (async function* () {
      try {
        yield* tarTree(fd, { rootName: undefined, prefix: "", overlay: true, xattrs, skip: isPlaceholder, signal, log });
      } finally {
        closeSync(fd);
      }
    })();
    return Readable.from(body, { objectMode: false });
  }
}

function isMountPoint(path: string, st: Stats): boolean {
  try {
    const parent = statSync(`${path}/..`);
    return parent.dev !== st.dev || parent.ino === st.ino;
  } catch {
    return false;
  }
}

/** `docker cp` into a read-only root file system only reaches writable mounts, as Docker checks. */
function checkWritable(c: ContainerRecord, dest: string): void {
  const mounts = (c.Mounts ?? []) as MountPoint[];
  let best: MountPoint | undefined;
  for (const m of mounts) {
    const d = m.Destination?.replace(/\/+$/, "") || "/";
    if (dest === d || dest.startsWith(`${d === "/" ? "" : d}/`)) {
      if (!best || d.length > (best.Destination?.length ?? 0)) best = m;
    }
  }
  if (best) {
    if (best.RW === false) throw invalidArgument("mounted volume is marked read-only");
    return;
  }
  if (c.HostConfig.ReadonlyRootfs) throw invalidArgument("container rootfs is marked read-only");
}

/** Reads a small regular file of the tree (the container's passwd and group), or undefined. */
function readSmallFile(root: number, path: string, max = 4 * 1024 * 1024): string | undefined {
  let loc: Location;
  try {
    loc = locate(root, path, { follow: true });
  } catch {
    return undefined;
  }
  try {
    if (!loc.st?.isFile()) return undefined;
    const fd = openSync(at(loc.dir, loc.name), O_READ);
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.size > max) return undefined;
      const buf = Buffer.alloc(st.size);
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, null);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got).toString("utf8");
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  } finally {
    loc.close();
  }
}

/** Options of `archiveInTree`. */
export interface ArchiveOptions {
  /** The container as the user named it, for Docker's "Could not find the file" wording. */
  ref?: string;
  signal?: AbortSignal | undefined;
  log?: Logger;
}

/**
 * A tar of `path` in the tree whose root directory is open as `root`, with Docker's entry
 * names: a directory `/a/d` gives `d/`, `d/...`; `/a/d/.` gives `./`, `./...` (its contents);
 * a file or a symlink (not followed) one entry named after it; `/` gives `/`, `/bin`, ...
 * Returns the stat for `X-Docker-Container-Path-Stat` and the tar, which reads the tree as it
 * is consumed (and releases what it holds when it ends or is abandoned).
 */
export function archiveInTree(root: number, path: string, options: ArchiveOptions = {}): { stat: PathStat; body: AsyncIterable<Buffer> } {
  const log = options.log ?? nullLogger;
  const abs = containerPath(path);
  const loc = locateForCopy(root, path, options.ref ?? "");
  let stat: PathStat;
  let st: Stats;
  try {
    st = statOf(loc);
    stat = pathStat(root, abs, st);
    if (!st.isDirectory() && followsFinal(abs)) throw invalidArgument(`"${path}": not a directory`);
  } catch (e) {
    loc.close();
    throw e;
  }
  const base = goBase(abs);
  if (!st.isDirectory()) {
    const body = (async function* () {
      try {
        yield* tarNode(loc, base, log);
      } finally {
        loc.close();
      }
    })();
    return { stat, body };
  }
  let fd: number;
  try {
    fd = openLocatedDir(loc);
  } catch (e) {
    loc.close();
    throw e;
  }
  const name = base === "/" ? "/" : `${base}/`;
  const body = (async function* () {
    try {
      yield* tarTree(fd, { rootName: name, prefix: name, signal: options.signal, log });
    } finally {
      if (fd !== loc.dir) closeQuietly(fd);
      loc.close();
    }
  })();
  return { stat, body };
}

/** Options of `extractInTree`. */
export interface TreeExtractOptions extends ExtractOptions {
  ref?: string;
  log?: Logger;
  /** The container's `User`, for `copyUidGid` (looked up in the tree's /etc/passwd and /etc/group). */
  user?: string;
  /** Vetoes the resolved destination (read-only root file system, read-only volume). */
  check?: (dest: string) => void;
}

/**
 * Extracts a tar (plain, gzip or zstd) into the directory `path` of the tree open as `root`
 * (a final symlink of `path` is followed inside the tree). Entries cannot leave the
 * destination by name, and symlinks on their way resolve inside the tree; what was extracted
 * before an error stays, as with Docker.
 */
export async function extractInTree(
  root: number,
  path: string,
  body: AsyncIterable<unknown>,
  options: TreeExtractOptions = {},
): Promise<void> {
  const log = options.log ?? nullLogger;
  let loc: Location;
  try {
    loc = locate(root, containerPath(path), { follow: true });
  } catch (e) {
    if (e instanceof BerthError && e.kind === "NotFound")
      throw notFound(`Could not find the file ${path} in container ${options.ref ?? ""}`);
    throw e;
  }
  const dest = loc.path;
  const isDir = statOf(loc).isDirectory();
  loc.close();
  if (!isDir) throw invalidArgument("extraction point is not a directory");
  options.check?.(dest);
  let owner: { uid: number; gid: number } | undefined;
  if (options.copyUidGid && options.user) {
    const u = resolveUserFrom(options.user, [], readSmallFile(root, "/etc/passwd"), readSmallFile(root, "/etc/group"));
    owner = { uid: u.uid, gid: u.gid };
  }
  const x = new TreeExtractor(root, dest, { noOverwrite: options.noOverwriteDirNonDir === true, owner, log });
  const reader = new TarReader(x, { maxEntries: MAX_ENTRIES });
  try {
    const opts: { signal?: AbortSignal } = {};
    if (options.signal) opts.signal = options.signal;
    for await (const chunk of decompress(body, opts)) {
      reader.push(chunk);
      if (options.signal?.aborted) throw canceled("The copy into the container was canceled");
    }
    reader.end();
    x.finish();
  } catch (e) {
    x.abort();
    throw e;
  }
}

/**
 * `docker diff` of an overlay upper directory over its lowers (topmost first); `opaque` holds
 * the upper's directories marked `trusted.overlay.opaque=y` (relative paths).
 */
export function treeChanges(upper: string, lowers: readonly string[], opaque: Set<string> = new Set()): Change[] {
  const fd = openSync(upper, O_DIR);
  try {
    return overlayChanges(fd, lowers, opaque);
  } finally {
    closeSync(fd);
  }
}

/** Locates a path to copy (a final symlink followed only after a trailing `/` or `/.`), with Docker's wording when it is missing. */
function locateForCopy(root: number, path: string, id: string): Location {
  const abs = containerPath(path);
  try {
    return locate(root, abs, { follow: followsFinal(abs) });
  } catch (e) {
    if (e instanceof BerthError && e.kind === "NotFound") throw notFound(`Could not find the file ${path} in container ${id}`);
    throw e;
  }
}

/** The stat `HEAD /archive` reports for a located node; a symlink's target is resolved inside the root. */
function pathStat(root: number, abs: string, st: Stats): PathStat {
  let linkTarget = "";
  if (st.isSymbolicLink()) {
    const t = locate(root, abs, { follow: true, missingOk: true, partial: true });
    linkTarget = t.path;
    t.close();
  }
  return { name: goBase(abs), size: st.size, mode: goFileMode(st.mode), mtime: st.mtime.toISOString(), linkTarget };
}

/** The stat of a container path, as `HEAD /archive` reports it. */
function statPath(root: number, path: string, id: string): PathStat {
  const loc = locateForCopy(root, path, id);
  try {
    return pathStat(root, containerPath(path), statOf(loc));
  } finally {
    loc.close();
  }
}
