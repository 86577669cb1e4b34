/**
 * Applying a layer tar onto a directory, the way overlayfs will later show it.
 *
 * A layer is unpacked into its own empty directory (the snapshot's upper dir) while the layers
 * below it are given as read-only `lowers`, topmost first. Entries may reach "through" what the
 * lowers hold: a parent directory that only a lower layer has is copied up (created here with
 * the lower's owner, mode and mtime), a symlink in a lower layer is followed, a whiteout names a
 * lower file. Every entry path is resolved here, component by component, inside the root:
 *
 * - Entry names are cleaned lexically; a name whose `..` climbs above the root is refused, an
 *   absolute name is taken relative to the root (`/etc/passwd` lands in `<root>/etc/passwd`).
 * - Parent components that are symlinks (in this layer or a lower one) are followed the way the
 *   kernel follows them inside a chroot: absolute targets restart at the root, `..` stops at the
 *   root. A write "through" a symlink therefore always lands inside the root.
 * - The last component is never followed: a file, directory or link replaces whatever node is
 *   there (a symlink replaced by a directory is replaced, not traversed).
 * - Hard link targets resolve the same way and must exist inside the root; a target that only a
 *   lower layer has is copied up first (what overlayfs does on link(2)).
 * - Whiteouts become overlayfs whiteouts: `a/.wh.b` is a character device 0/0 at `a/b` (only
 *   when a lower layer has `a/b`), `a/.wh..wh..opq` is `trusted.overlay.opaque=y` on `a`.
 *   `trusted.overlay.*` attributes carried in the tar itself are dropped.
 *
 * Nothing outside the root is written, read through a symlink, chmod-ed or chown-ed: all
 * operations use paths whose every directory component was created or checked by this code,
 * final components are opened with O_NOFOLLOW or changed with l* calls. Within one apply this
 * code is the only writer of the root, so a checked path stays checked.
 *
 * File system work is synchronous: each decompressed chunk is applied in one go (typically
 * hundreds of microseconds), which avoids a thread-pool round trip per file and is several times
 * faster for layers of many small files. Decompression and the diff ID's sha256 run on a worker
 * thread meanwhile (_inflate.ts), which hands the tar bytes over in shared memory. Device
 * nodes and extended attributes, which Node cannot create, are made at the end by one `tar`
 * and a few `setfattr` runs through the Host seam.
 */
import {
  chmodSync,
  closeSync,
  copyFileSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  type Stats,
  symlinkSync,
  unlinkSync,
  utimesSync,
} from "node:fs";
import {
  BerthError,
  canceled,
  type Digest,
  ErrorKind,
  type Host,
  internal,
  invalidArgument,
  type Logger,
  messageOf,
  nullLogger,
  writeAllSync,
} from "../base/mod.ts";
import { InflateJob } from "./_inflate.ts";
import type { Compression } from "./compress.ts";
import { DEFAULT_LIMITS, END_OF_ARCHIVE, encodeHeader, type TarHeader, TarReader, type TarSink } from "./_tar.ts";

/** Options for `applyLayer`. */
export interface ApplyOptions {
  /** Directories of the layers below, topmost first, in overlayfs format (read only). */
  lowers?: readonly string[];
  /** Runs `tar` and `setfattr` for device nodes, whiteouts and extended attributes. */
  host: Host;
  signal?: AbortSignal;
  /** Cap on the uncompressed size in bytes (default 64 GiB). */
  maxSize?: number;
  /** Cap on the number of entries (default 1,000,000). */
  maxEntries?: number;
  /** Name of the layer in error messages, usually its blob digest. */
  layerName?: string;
  /** Expected diff ID; a mismatch fails the apply (and removes the target). */
  diffId?: Digest;
  /** Apply owners from the tar (default: when running as root). */
  chown?: boolean;
  logger?: Logger;
}

/** What `applyLayer` found. */
export interface ApplyResult {
  /** sha256 of the uncompressed tar. */
  diffId: Digest;
  /** Uncompressed size in bytes. */
  size: number;
  compression: Compression;
  entries: number;
}

export const DEFAULT_MAX_SIZE = 64 * 1024 ** 3;

const PATH_MAX = 4096;
const MAX_LINKS = 40;
const O_FILE = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW;
const O_DIR = fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW;
const NO_LOWERS: readonly number[] = [];
const TIME_LIMIT = 2 ** 40;
/** Linux XATTR_SIZE_MAX. */
const XATTR_VALUE_MAX = 64 * 1024;
const XATTR_TOTAL_MAX = 64 * 1024 * 1024;

interface DirMeta {
  mode: number;
  mtime: number | undefined;
  /** The mode the directory was created with (after umask); -1 when unknown. */
  created: number;
}

/** A node Node.js cannot create: made by `tar` at the end of the apply. */
interface NodeSpec {
  kind: "c" | "b" | "p";
  major: number;
  minor: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number | undefined;
  whiteout: boolean;
}

const WHITEOUT: NodeSpec = { kind: "c", major: 0, minor: 0, mode: 0, uid: 0, gid: 0, mtime: undefined, whiteout: true };

interface LowerHit {
  path: string;
  st: Stats;
}

function lstatMaybe(p: string): Stats | undefined {
  try {
    return lstatSync(p, { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw e;
  }
}

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

function parentOf(key: string): string {
  const i = key.lastIndexOf("/");
  return i < 0 ? "" : key.slice(0, i);
}

function join(parent: string, name: string): string {
  return parent ? `${parent}/${name}` : name;
}

function clampTime(t: number): number {
  return Number.isFinite(t) ? Math.max(-TIME_LIMIT, Math.min(TIME_LIMIT, t)) : 0;
}

/** Linux `dev_t` → major/minor (glibc's encoding). */
function devMajor(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
function devMinor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

/**
 * Cleans an entry name lexically: empty and `.` components go, `..` removes the previous
 * component. Returns null when `..` would climb above the root. A leading `/` is dropped.
 */
export function cleanPath(name: string): string[] | null {
  const parts = name.split("/");
  let clean = true;
  for (const p of parts) {
    if (p === "" || p === "." || p === "..") {
      clean = false;
      break;
    }
  }
  if (clean) return parts;
  const out: string[] = [];
  for (const p of parts) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (!out.length) return null;
      out.pop();
    } else out.push(p);
  }
  return out;
}

/** Quotes a path the way getfattr dumps it (and setfattr --restore reads it). */
function quoteAttrPath(p: string): Buffer {
  const b = Buffer.from(p, "utf8");
  let needs = false;
  for (const c of b) if (c < 32 || c === 0x5c) needs = true;
  if (!needs) return b;
  const out: number[] = [];
  for (const c of b) {
    if (c < 32 || c === 0x5c) for (const d of `\\${c.toString(8).padStart(3, "0")}`) out.push(d.charCodeAt(0));
    else out.push(c);
  }
  return Buffer.from(out);
}

/** Builds `setfattr --restore` input for a set of paths and attributes. */
export function attrRestoreScript(entries: Iterable<[string, Iterable<[string, Buffer]>]>): Buffer {
  const parts: Buffer[] = [];
  for (const [path, attrs] of entries) {
    parts.push(Buffer.from("# file: "), quoteAttrPath(path), Buffer.from("\n"));
    for (const [name, value] of attrs) parts.push(quoteAttrPath(name), Buffer.from(`=0x${value.toString("hex")}\n`));
    parts.push(Buffer.from("\n"));
  }
  return Buffer.concat(parts);
}

/** The file system half of an apply: receives tar entries and writes them under the root. */
class LayerWriter implements TarSink {
  readonly #root: string;
  readonly #lowers: readonly string[];
  readonly #allLowers: readonly number[];
  readonly #chown: boolean;
  /** Owner every node created here gets without a chown; -1 when it cannot be relied on. */
  readonly #ownUid: number;
  readonly #ownGid: number;
  /** The process umask: bits that creation strips from a mode and only a chmod restores. */
  readonly #umask: number;
  /** Whether the mode a directory gets at creation is known (an umask without owner bits). */
  readonly #exactDirModes: boolean;
  readonly #layer: string;
  readonly #host: Host;
  readonly #log: Logger;
  #entry = "";
  /** Keys (root-relative paths) known to be real directories in the root, reached without symlinks. */
  #dirs = new Set<string>([""]);
  /** Per directory key: indexes of the lowers where it is a visible directory. */
  #stacks = new Map<string, readonly number[]>();
  /** Directories made opaque in this layer (lower content hidden). */
  #opaque = new Set<string>();
  /** Directories that need `trusted.overlay.opaque=y` because a lower layer has them. */
  #opaqueAttr = new Set<string>();
  #dirMeta = new Map<string, DirMeta>();
  #nodes = new Map<string, NodeSpec>();
  #xattrs = new Map<string, Map<string, Buffer>>();
  #xattrBytes = 0;
  #fd = -1;
  #file: TarHeader | undefined;
  /** The open file needs an fchmod after its chown (special bits, or bits the umask stripped). */
  #fileChmod = false;

  constructor(
    root: string,
    options: { lowers: readonly string[]; chown: boolean; layer: string; host: Host; logger: Logger; rootStat: Stats; umask: number },
  ) {
    this.#root = root;
    this.#lowers = options.lowers;
    this.#allLowers = options.lowers.map((_, i) => i);
    this.#chown = options.chown;
    // New nodes belong to the process's (effective = file system) uid and gid. Under a setgid
    // directory they would take its group instead (and new directories its setgid bit): then
    // every node gets an explicit chown. Directories made here get special bits only in finish.
    const setgidRoot = (options.rootStat.mode & 0o2000) !== 0;
    this.#ownUid = process.geteuid?.() ?? -1;
    this.#ownGid = setgidRoot ? -1 : (process.getegid?.() ?? -1);
    this.#umask = options.umask;
    this.#exactDirModes = (options.umask & 0o700) === 0 && !setgidRoot;
    this.#layer = options.layer;
    this.#host = options.host;
    this.#log = options.logger;
  }

  // ------------------------------------------------------------ TarSink

  entry(h: TarHeader): void {
    this.#entry = h.name;
    try {
      this.#apply(h);
    } catch (e) {
      throw this.#wrap(e);
    }
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
      // chown first: it clears setuid/setgid, which the chmod then sets. The file was created
      // with its permission bits, so most files need neither call.
      if (this.#needsChown(h.uid, h.gid)) fchownSync(fd, h.uid, h.gid);
      if (this.#fileChmod) fchmodSync(fd, h.mode);
      const t = clampTime(h.mtime);
      futimesSync(fd, t, t);
    } catch (e) {
      throw this.#wrap(e);
    } finally {
      closeSync(fd);
    }
  }

  /** Releases what a failed apply holds (the caller removes the root). */
  abort(): void {
    if (this.#fd >= 0) {
      try {
        closeSync(this.#fd);
      } catch {}
      this.#fd = -1;
    }
  }

  // ------------------------------------------------------------ entries

  #fail(reason: string): never {
    throw invalidArgument(`Cannot unpack layer "${this.#layer}": entry "${this.#entry}": ${reason}`, {
      detail: { layer: this.#layer, entry: this.#entry },
    });
  }

  #wrap(e: unknown): unknown {
    if (e instanceof BerthError) return e;
    const code = errno(e);
    const msg = `Cannot unpack layer "${this.#layer}": entry "${this.#entry}": ${messageOf(e).replace(this.#root, "<root>")}`;
    const detail = { layer: this.#layer, entry: this.#entry, code };
    if (code === "ENAMETOOLONG" || code === "ELOOP" || code === "ENOTDIR") return invalidArgument(msg, { cause: e, detail });
    return internal(msg, { cause: e, detail });
  }

  #real(key: string): string {
    return key ? `${this.#root}/${key}` : this.#root;
  }

  #apply(h: TarHeader): void {
    const comps = cleanPath(h.name);
    if (comps === null) this.#fail("path escapes the root");
    if (!comps.length) return; // the root itself: its metadata belongs to the snapshot
    const base = comps[comps.length - 1]!;
    if (base.startsWith(".wh.")) {
      this.#whiteout(comps, base);
      return;
    }
    const parent = this.#resolveDir(comps, comps.length - 1);
    const key = join(parent, base);
    const real = this.#real(key);
    if (real.length >= PATH_MAX) this.#fail("path is longer than PATH_MAX");
    switch (h.type) {
      case "dir":
        this.#dir(h, parent, base, key, real);
        return;
      case "file": {
        // Created with its final permission bits (O_CREAT gives a writable descriptor even for
        // a read-only mode); a chmod in entryEnd only when the umask strips bits or the mode
        // has setuid, setgid or sticky bits (creation drops none of them, but chown would).
        this.#fd = this.#create(key, real, h.mode & 0o777);
        this.#fileChmod = (h.mode & (0o7000 | this.#umask)) !== 0;
        this.#file = h;
        this.#setXattrs(key, h.xattrs);
        return;
      }
      case "symlink": {
        if (!h.linkname) this.#fail("symlink with an empty target");
        this.#replaceable(key, real, () => symlinkSync(h.linkname, real));
        if (this.#needsChown(h.uid, h.gid)) lchownSync(real, h.uid, h.gid);
        const t = clampTime(h.mtime);
        lutimesSync(real, t, t);
        this.#setXattrs(key, h.xattrs);
        return;
      }
      case "link":
        this.#hardlink(h, key, real);
        return;
      case "char":
      case "block":
      case "fifo": {
        closeSync(this.#create(key, real, 0o600));
        this.#nodes.set(key, {
          kind: h.type === "char" ? "c" : h.type === "block" ? "b" : "p",
          major: h.devmajor,
          minor: h.devminor,
          mode: h.mode,
          uid: h.uid,
          gid: h.gid,
          mtime: clampTime(h.mtime),
          whiteout: false,
        });
        this.#setXattrs(key, h.xattrs);
        return;
      }
    }
  }

  /** Runs `make` (which creates a node at `real`), replacing what is there on EEXIST. */
  #replaceable(key: string, real: string, make: () => void): void {
    try {
      make();
    } catch (e) {
      if (errno(e) !== "EEXIST") throw e;
      this.#remove(key, lstatSync(real));
      make();
    }
  }

  /** Creates a regular file (never through a symlink), replacing what is there. */
  #create(key: string, real: string, mode: number): number {
    let fd = -1;
    this.#replaceable(key, real, () => {
      fd = openSync(real, O_FILE, mode);
    });
    return fd;
  }

  #dir(h: TarHeader, parent: string, base: string, key: string, real: string): void {
    const mode = this.#dirCreateMode(h.mode);
    let created = this.#exactDirModes ? mode : -1;
    try {
      mkdirSync(real, mode);
    } catch (e) {
      if (errno(e) !== "EEXIST") throw e;
      const st = lstatSync(real);
      if (!st.isDirectory()) {
        this.#remove(key, st);
        mkdirSync(real, mode);
        // The node this directory replaces hid a lower directory: keep it hidden.
        this.#opaqueIfLowerDir(parent, base, key);
      } else created = this.#dirMeta.get(key)?.created ?? -1;
    }
    this.#dirs.add(key);
    if (this.#needsChown(h.uid, h.gid)) lchownSync(real, h.uid, h.gid);
    this.#dirMeta.set(key, { mode: h.mode, mtime: clampTime(h.mtime), created });
    this.#setXattrs(key, h.xattrs);
  }

  #hardlink(h: TarHeader, key: string, real: string): void {
    const lc = cleanPath(h.linkname);
    if (lc === null) this.#fail(`hard link target "${h.linkname}" escapes the root`);
    if (!lc.length) this.#fail("hard link to the root directory");
    const sparent = this.#resolveDir(lc, lc.length - 1);
    const sbase = lc[lc.length - 1]!;
    if (sbase.startsWith(".wh.")) this.#fail(`hard link to a whiteout "${h.linkname}"`);
    const skey = join(sparent, sbase);
    if (skey === key) this.#fail("hard link to itself");
    const sreal = this.#real(skey);
    let st = lstatMaybe(sreal);
    if (!st) {
      const hit = this.#lowerLookup(sparent, sbase);
      if (!hit) this.#fail(`hard link target "${h.linkname}" does not exist`);
      if (hit.st.isDirectory()) this.#fail(`hard link to a directory "${h.linkname}"`);
      this.#copyUp(skey, sreal, hit);
      st = lstatSync(sreal);
    }
    if (st.isDirectory()) this.#fail(`hard link to a directory "${h.linkname}"`);
    const pending = this.#nodes.get(skey);
    if (pending?.whiteout) this.#fail(`hard link target "${h.linkname}" does not exist`);
    if (pending) {
      // The target is a device node still to be made: make this one the same way.
      closeSync(this.#create(key, real, 0o600));
      this.#nodes.set(key, { ...pending });
      return;
    }
    // link(2) does not follow a symlink target: a hard link to a symlink links the symlink.
    this.#replaceable(key, real, () => linkSync(sreal, real));
  }

  /** Copies a node that only a lower layer has into the root (overlayfs copy-up). */
  #copyUp(key: string, real: string, hit: LowerHit): void {
    const st = hit.st;
    if (st.isFile()) {
      copyFileSync(hit.path, real, fsc.COPYFILE_EXCL);
      if (this.#chown) lchownSync(real, st.uid, st.gid);
      chmodSync(real, st.mode & 0o7777);
      utimesSync(real, st.atime, st.mtime);
    } else if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(hit.path), real);
      if (this.#chown) lchownSync(real, st.uid, st.gid);
      lutimesSync(real, st.atime, st.mtime);
    } else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
      closeSync(this.#create(key, real, 0o600));
      this.#nodes.set(key, {
        kind: st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : "p",
        major: devMajor(st.rdev),
        minor: devMinor(st.rdev),
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        mtime: st.mtimeMs / 1000,
        whiteout: false,
      });
    } else this.#fail(`cannot hard link to "${key}": unsupported file type`);
  }

  #whiteout(comps: string[], base: string): void {
    if (base === ".wh..wh..opq") {
      const dir = this.#resolveDir(comps, comps.length - 1);
      this.#markOpaque(dir);
      return;
    }
    // Other `.wh..wh.` names are aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): ignored, as Docker does.
    if (base.startsWith(".wh..wh.")) return;
    const name = base.slice(4);
    if (name === "" || name === "." || name === "..") this.#fail("invalid whiteout name");
    const parent = this.#resolveDir(comps, comps.length - 1);
    const key = join(parent, name);
    const real = this.#real(key);
    if (real.length >= PATH_MAX) this.#fail("path is longer than PATH_MAX");
    const st = lstatMaybe(real);
    if (st) this.#remove(key, st);
    // A whiteout only matters if a lower layer shows something there.
    if (this.#lowerLookup(parent, name)) {
      closeSync(this.#create(key, real, 0o600));
      this.#nodes.set(key, WHITEOUT);
    }
  }

  #markOpaque(key: string): void {
    if (this.#opaque.has(key)) return;
    const hasLower = this.#lowerStack(key).length > 0;
    this.#opaque.add(key);
    this.#stacks.clear();
    if (hasLower) this.#opaqueAttr.add(key);
  }

  #opaqueIfLowerDir(parent: string, base: string, key: string): void {
    if (this.#lowerLookup(parent, base)?.st.isDirectory()) this.#markOpaque(key);
  }

  #setXattrs(key: string, xattrs: Map<string, Buffer> | undefined): void {
    if (!xattrs) return;
    let m = this.#xattrs.get(key);
    for (const [name, value] of xattrs) {
      // Overlay's own attributes would let a layer forge whiteouts, redirects or opaque dirs.
      if (name.startsWith("trusted.overlay.") || name.startsWith("user.overlay.")) continue;
      if (!name || name.includes("\n") || name.includes("=")) continue;
      if (value.length > XATTR_VALUE_MAX) this.#fail(`extended attribute "${name}" is larger than ${XATTR_VALUE_MAX} bytes`);
      // Attributes are held until the end of the layer: bound what a layer can make us keep.
      this.#xattrBytes += name.length + value.length;
      if (this.#xattrBytes > XATTR_TOTAL_MAX) this.#fail(`the layer's extended attributes exceed ${XATTR_TOTAL_MAX} bytes`);
      if (!m) this.#xattrs.set(key, (m = new Map()));
      m.set(name, value);
    }
  }

  /** Removes a node of the root that a new entry replaces, and forgets what was known below it. */
  #remove(key: string, st: Stats): void {
    const real = this.#real(key);
    if (st.isDirectory()) {
      rmSync(real, { recursive: true, force: true });
      const prefix = `${key}/`;
      const under = (k: string) => k === key || k.startsWith(prefix);
      for (const k of this.#dirs) if (under(k)) this.#dirs.delete(k);
      for (const k of this.#dirMeta.keys()) if (under(k)) this.#dirMeta.delete(k);
      for (const k of this.#nodes.keys()) if (under(k)) this.#nodes.delete(k);
      for (const k of this.#xattrs.keys()) if (under(k)) this.#xattrs.delete(k);
      for (const k of this.#opaqueAttr) if (under(k)) this.#opaqueAttr.delete(k);
      let changed = false;
      for (const k of this.#opaque) {
        if (under(k)) {
          this.#opaque.delete(k);
          changed = true;
        }
      }
      if (changed) this.#stacks.clear();
    } else {
      unlinkSync(real);
      this.#nodes.delete(key);
      this.#xattrs.delete(key);
    }
  }

  // ------------------------------------------------------------ resolution

  /**
   * Resolves the directory made of the first `n` components (an entry's parent) to a key of a
   * real directory in the root, creating or copying up what is missing and following symlinks
   * inside the root. Never returns a key outside the root: `..` stops at the root and absolute
   * symlink targets restart at it.
   */
  #resolveDir(comps: string[], n: number): string {
    if (n === 0) return "";
    const direct = n === comps.length ? comps.join("/") : comps.slice(0, n).join("/");
    if (this.#dirs.has(direct)) return direct;
    const stack: string[] = [];
    for (let i = n - 1; i >= 0; i--) stack.push(comps[i]!);
    let cur = "";
    let links = 0;
    while (stack.length) {
      const c = stack.pop()!;
      if (c === "" || c === ".") continue;
      if (c === "..") {
        cur = parentOf(cur);
        continue;
      }
      const next = join(cur, c);
      if (this.#dirs.has(next)) {
        cur = next;
        continue;
      }
      const real = this.#real(next);
      if (real.length >= PATH_MAX) this.#fail("path is longer than PATH_MAX");
      let link: string;
      const st = lstatMaybe(real);
      if (st) {
        if (st.isDirectory()) {
          this.#dirs.add(next);
          cur = next;
          continue;
        }
        if (st.isSymbolicLink()) link = readlinkSync(real);
        else if (this.#nodes.get(next)?.whiteout) {
          // Deleted earlier in this layer and now needed as a directory: a new, opaque one.
          this.#remove(next, st);
          this.#mkdirFresh(next);
          this.#opaqueIfLowerDir(cur, c, next);
          cur = next;
          continue;
        } else this.#fail(`"${next}" is not a directory`);
      } else {
        const hit = this.#opaque.has(cur) ? undefined : this.#lowerLookup(cur, c);
        if (!hit) {
          this.#mkdirFresh(next);
          cur = next;
          continue;
        }
        if (hit.st.isDirectory()) {
          this.#mkdirCopyUp(next, hit.st);
          cur = next;
          continue;
        }
        if (hit.st.isSymbolicLink()) link = readlinkSync(hit.path);
        else this.#fail(`"${next}" is not a directory`);
      }
      if (++links > MAX_LINKS) this.#fail("too many levels of symbolic links");
      // Resolve the symlink as the container will see it: absolute targets start at the root.
      if (link.startsWith("/")) cur = "";
      const parts = link.split("/");
      for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i]!);
      if (stack.length > PATH_MAX * (MAX_LINKS + 1)) this.#fail("path is longer than PATH_MAX");
    }
    return cur;
  }

  /** A parent directory no layer has (what MkdirAll would make). */
  #mkdirFresh(key: string): void {
    const mode = this.#dirCreateMode(0o755);
    mkdirSync(this.#real(key), mode);
    this.#dirs.add(key);
    this.#dirMeta.set(key, { mode: 0o755, mtime: undefined, created: this.#exactDirModes ? mode : -1 });
  }

  /** A parent directory that a lower layer has: same owner, mode and mtime. */
  #mkdirCopyUp(key: string, st: Stats): void {
    const real = this.#real(key);
    const mode = this.#dirCreateMode(st.mode);
    mkdirSync(real, mode);
    if (this.#needsChown(st.uid, st.gid)) lchownSync(real, st.uid, st.gid);
    this.#dirs.add(key);
    this.#dirMeta.set(key, { mode: st.mode & 0o7777, mtime: st.mtimeMs / 1000, created: this.#exactDirModes ? mode : -1 });
  }

  /**
   * The lowers in which the directory `key` is visible (a directory in each, not hidden by a
   * whiteout or a non-directory in a layer above, nor by an opaque marker of this layer).
   * Every prefix of `key` was checked to be a real directory in those lowers, so looking one
   * component further never follows a symlink of a lower layer.
   */
  #lowerStack(key: string): readonly number[] {
    if (!this.#lowers.length || this.#opaque.has(key)) return NO_LOWERS;
    if (key === "") return this.#allLowers;
    const cached = this.#stacks.get(key);
    if (cached) return cached;
    const ps = this.#lowerStack(parentOf(key));
    const s: number[] = [];
    for (const i of ps) {
      const st = lstatMaybe(`${this.#lowers[i]}/${key}`);
      if (!st) continue;
      if (st.isDirectory()) s.push(i);
      else break;
    }
    this.#stacks.set(key, s);
    return s;
  }

  /** The node `name` in directory `parent` as the lowers show it (undefined if absent or whited out). */
  #lowerLookup(parent: string, name: string): LowerHit | undefined {
    for (const i of this.#lowerStack(parent)) {
      const path = `${this.#lowers[i]}/${join(parent, name)}`;
      const st = lstatMaybe(path);
      if (!st) continue;
      if (isWhiteout(st)) return undefined;
      return { path, st };
    }
    return undefined;
  }

  // ------------------------------------------------------------ finish

  /** Makes device nodes and whiteouts, sets extended attributes, then directory modes and times. */
  async finish(signal: AbortSignal | undefined): Promise<void> {
    // Nodes, opaque markers and the attributes of other paths do not depend on each other, so
    // their helper processes run side by side; attributes of a device node wait for the node.
    const onNodes = new Map<string, Map<string, Buffer>>();
    const others = new Map<string, Map<string, Buffer>>();
    for (const [k, m] of this.#xattrs) (this.#nodes.has(k) ? onNodes : others).set(k, m);

    const first = await Promise.allSettled([this.#makeNodes(signal), this.#setOpaque(signal), this.#restoreXattrs(others, signal)]);
    for (const r of first) if (r.status === "rejected") throw r.reason;
    await this.#restoreXattrs(onNodes, signal);
    for (const [key, m] of this.#dirMeta) {
      const real = this.#real(key);
      if (m.created === m.mode) {
        // Already the right mode: only the times, by path without following a final symlink.
        if (m.mtime !== undefined) lutimesSync(real, m.mtime, m.mtime);
        continue;
      }
      const fd = openSync(real, O_DIR);
      try {
        fchmodSync(fd, m.mode);
        if (m.mtime !== undefined) futimesSync(fd, m.mtime, m.mtime);
      } finally {
        closeSync(fd);
      }
    }
  }

  /** Whether a node this apply created must be chown-ed to get `uid`:`gid`. */
  #needsChown(uid: number, gid: number): boolean {
    return this.#chown && (uid !== this.#ownUid || gid !== this.#ownGid);
  }

  /**
   * The mode a directory is created with: its permission bits, always writable and searchable
   * by its owner while the layer is written (without root, a read-only directory of the layer
   * would stop its own entries); what the umask strips. `finish` sets the final mode when it
   * differs, and special bits only there (a setgid directory would change the group of
   * everything created in it).
   */
  #dirCreateMode(mode: number): number {
    return ((mode & 0o777) | 0o700) & ~(this.#umask & 0o077);
  }

  async #run(cmd: string, args: string[], input: Buffer | undefined, signal: AbortSignal | undefined, strict: boolean) {
    try {
      const opts: { input?: Buffer; signal?: AbortSignal; allowFailure: boolean } = { allowFailure: !strict };
      if (input) opts.input = input;
      if (signal) opts.signal = signal;
      return await this.#host.run(cmd, args, opts);
    } catch (e) {
      if (e instanceof BerthError && e.kind === ErrorKind.NotFound) {
        const pkg = cmd === "setfattr" ? "attr" : cmd;
        throw internal(`Cannot unpack layer "${this.#layer}": "${cmd}" is needed and was not found (install the ${pkg} package)`, {
          cause: e,
        });
      }
      throw internal(`Cannot unpack layer "${this.#layer}": ${messageOf(e)}`, { cause: e });
    }
  }

  async #makeNodes(signal: AbortSignal | undefined): Promise<void> {
    if (!this.#nodes.size) return;
    // One GNU tar makes them all, each in place of its placeholder (--unlink-first), from an
    // archive of just these nodes with paths relative to the root, whose every directory is
    // one this apply made or checked. Owners, modes and times are set below, as for any node.
    const parts: Buffer[] = [];
    for (const [key, n] of this.#nodes) {
      const type = n.kind === "c" ? "char" : n.kind === "b" ? "block" : "fifo";
      const mode = n.whiteout ? 0 : 0o600;
      parts.push(encodeHeader({ name: key, type, mode, uid: 0, gid: 0, size: 0, mtime: 0, devmajor: n.major, devminor: n.minor }));
    }
    parts.push(END_OF_ARCHIVE);
    const args = ["-x", "-f", "-", "-C", this.#root, "--unlink-first", "--no-same-owner", "--no-same-permissions", "--no-recursion"];
    await this.#run("tar", args, Buffer.concat(parts), signal, true);
    for (const [key, n] of this.#nodes) {
      if (n.whiteout) continue;
      const real = this.#real(key);
      this.#entry = key;
      try {
        if (this.#chown) lchownSync(real, n.uid, n.gid);
        chmodSync(real, n.mode);
        if (n.mtime !== undefined) lutimesSync(real, n.mtime, n.mtime);
      } catch (e) {
        throw this.#wrap(e);
      }
    }
  }

  async #setOpaque(signal: AbortSignal | undefined): Promise<void> {
    if (!this.#opaqueAttr.size) return;
    const y = Buffer.from("y");
    const script = attrRestoreScript(
      [...this.#opaqueAttr].map((k) => [this.#real(k), [["trusted.overlay.opaque", y]]] as [string, [string, Buffer][]]),
    );
    await this.#run("setfattr", ["-h", "--restore=-"], script, signal, true);
  }

  async #restoreXattrs(xattrs: Map<string, Map<string, Buffer>>, signal: AbortSignal | undefined): Promise<void> {
    if (xattrs.size) {
      const script = attrRestoreScript([...xattrs].map(([k, m]) => [this.#real(k), m] as [string, Map<string, Buffer>]));
      const r = await this.#run("setfattr", ["-h", "--restore=-"], script, signal, false);
      // Like containerd, attributes the file system does not support are skipped with a warning.
      if (r.code !== 0)
        this.#log.warn("Some extended attributes could not be set", { layer: this.#layer, error: r.stderr.trim().slice(0, 2000) });
    }
  }
}

/**
 * Applies a layer blob (gzip, zstd or uncompressed tar, detected from its first bytes) onto
 * `target`, an existing empty directory, and returns its diff ID (sha256 of the uncompressed
 * tar, computed in the same pass) and uncompressed size. `lowers` are the unpacked layers
 * below, topmost first. On any error — a malformed or hostile archive, a size or entry cap, a
 * diff ID mismatch, cancellation — `target` is removed entirely and the error names the layer
 * and, where there is one, the entry.
 */
export async function applyLayer(stream: AsyncIterable<unknown>, target: string, options: ApplyOptions): Promise<ApplyResult> {
  const layer = options.layerName ?? target;
  const signal = options.signal;
  let root: string;
  let rootStat: Stats;
  try {
    root = realpathSync(target);
    rootStat = lstatSync(root);
    if (!rootStat.isDirectory()) throw invalidArgument(`Cannot unpack layer "${layer}": "${target}" is not a directory`);
    if (readdirSync(root).length) throw invalidArgument(`Cannot unpack layer "${layer}": "${target}" is not empty`);
  } catch (e) {
    if (e instanceof BerthError) throw e;
    throw invalidArgument(`Cannot unpack layer "${layer}": ${messageOf(e)}`, { cause: e });
  }
  const maxSize = options.maxSize ?? DEFAULT_MAX_SIZE;
  const writer = new LayerWriter(root, {
    lowers: (options.lowers ?? []).map((l) => l.replace(/\/+$/, "") || "/"),
    chown: options.chown ?? process.getuid?.() === 0,
    layer,
    host: options.host,
    logger: options.logger ?? nullLogger,
    rootStat,
    umask: currentUmask(),
  });
  const reader = new TarReader(writer, { maxEntries: options.maxEntries ?? DEFAULT_LIMITS.maxEntries });
  // Decompression and the diff ID's sha256 run on a worker thread (_inflate.ts); this thread
  // parses the tar and writes the files, from views of the worker's output that are only
  // valid until the next chunk: each is consumed synchronously.
  const job = new InflateJob(stream);
  const onAbort = () => job.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  let size = 0;
  try {
    if (signal?.aborted) throw canceled(`Unpacking layer "${layer}" was canceled`);
    for await (const chunk of job.chunks()) {
      size += chunk.length;
      if (size > maxSize)
        throw invalidArgument(`Cannot unpack layer "${layer}": it is larger than the limit of ${maxSize} bytes uncompressed`);
      reader.push(chunk);
      if (signal?.aborted) throw canceled(`Unpacking layer "${layer}" was canceled`);
    }

    const { diffId, compression } = await job.result();
    reader.end();
    if (signal?.aborted) throw canceled(`Unpacking layer "${layer}" was canceled`);
    if (options.diffId !== undefined && diffId !== options.diffId) {
      throw invalidArgument(`Cannot unpack layer "${layer}": its content hashes to "${diffId}", but "${options.diffId}" was expected`);
    }
    await writer.finish(signal);
    return { diffId, size, compression, entries: reader.entries };
  } catch (e) {
    await job.close();
    writer.abort();
    removeTree(root);
    throw layerError(e, layer, signal);
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * The process umask, read from /proc (process.umask() can only read it by changing it, which
 * races with other threads creating files). Unknown: every bit, so that modes are always set
 * explicitly.
 */
function currentUmask(): number {
  try {
    const m = /^Umask:\s+([0-7]+)$/m.exec(readFileSync("/proc/self/status", "latin1"));
    if (m?.[1]) return Number.parseInt(m[1], 8) & 0o777;
  } catch {}
  return 0o777;
}

/**
 * Removes a failed unpack. Without root, a read-only directory of the layer blocks removal of
 * its entries: make directories writable (never following symlinks) and try again.
 */
function removeTree(root: string): void {
  try {
    rmSync(root, { recursive: true, force: true });
    return;
  } catch (e) {
    if (errno(e) !== "EACCES" && errno(e) !== "EPERM") throw e;
  }
  const visit = (dir: string) => {
    try {
      chmodSync(dir, 0o700);
      for (const n of readdirSync(dir)) {
        const p = `${dir}/${n}`;
        if (lstatMaybe(p)?.isDirectory()) visit(p);
      }
    } catch {}
  };
  visit(root);
  rmSync(root, { recursive: true, force: true });
}

function layerError(e: unknown, layer: string, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted && !(e instanceof BerthError && e.kind === ErrorKind.Canceled)) {
    return canceled(`Unpacking layer "${layer}" was canceled`, { cause: e });
  }
  if (e instanceof BerthError) {
    if (e.message.startsWith("Cannot unpack layer") || e.message.startsWith("Unpacking layer")) return e;
    const m = e.message;
    return new BerthError(e.kind, `Cannot unpack layer "${layer}": ${m.charAt(0).toLowerCase()}${m.slice(1)}`, {
      cause: e,
      detail: { layer, ...e.detail },
    });
  }
  return internal(`Cannot unpack layer "${layer}": ${messageOf(e)}`, { cause: e, detail: { layer } });
}
