/**
 * Producing layer tars: a whole directory (`tarDirectory`, for import and the first layer of a
 * build) or an overlayfs upper directory (`diffDirectories`, for commit and build steps), where
 * overlay's whiteouts and opaque markers become the tar conventions of the image spec.
 *
 * Output is deterministic for a given tree: entries in byte order of their names, depth first,
 * no user or group names, whole-second mtimes (optionally clamped to SOURCE_DATE_EPOCH), hard
 * links detected by inode (the first name carries the data, later ones link to it).
 */
import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats, constants as fsc } from "node:fs";
import { Readable } from "node:stream";
import { canceled, type Host, internal, messageOf } from "../base/mod.ts";
import { END_OF_ARCHIVE, type EntryType, encodeHeader, type HeaderSpec, padding } from "./_tar.ts";

/** Options for `tarDirectory` and `diffDirectories`. */
export interface TarOptions {
  /** Runs `getfattr` to include extended attributes; without it none are written. */
  host?: Host;
  /** Clamp every mtime to at most this many seconds since the epoch (reproducible builds). */
  sourceDateEpoch?: number;
  signal?: AbortSignal;
}

const BATCH = 256 * 1024;
const SMALL_FILE = 1024 * 1024;

/** Unquotes a getfattr dump path (`\ooo` octal escapes). */
function unquote(s: Buffer): Buffer {
  if (!s.includes(0x5c)) return s;
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === 0x5c && i + 3 < s.length && /^[0-7]{3}$/.test(s.toString("latin1", i + 1, i + 4))) {
      out.push(Number.parseInt(s.toString("latin1", i + 1, i + 4), 8));
      i += 3;
    } else out.push(c);
  }
  return Buffer.from(out);
}

/**
 * Reads every extended attribute under `dir` with one `getfattr -R` run (Node has no
 * getxattr). Keys are paths relative to `dir`; symlinks are not followed.
 */
export async function readXattrs(host: Host, dir: string, signal?: AbortSignal): Promise<Map<string, Map<string, Buffer>>> {
  const out = new Map<string, Map<string, Buffer>>();
  let r: Awaited<ReturnType<Host["run"]>>;
  try {
    const opts: { allowFailure: boolean; maxOutput: number; signal?: AbortSignal } = { allowFailure: true, maxOutput: 512 * 1024 * 1024 };
    if (signal) opts.signal = signal;
    r = await host.run("getfattr", ["-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", "--", dir], opts);
  } catch (e) {
    throw internal(`Cannot read extended attributes of "${dir}": ${messageOf(e)} (is the attr package installed?)`, { cause: e });
  }
  // RunResult decodes output as UTF-8; paths were quoted by getfattr only below 0x20, so
  // non-UTF-8 names are lossy here (attributes on such files are skipped).
  const prefix = `${dir.replace(/\/+$/, "")}/`;
  let current: Map<string, Buffer> | undefined;
  for (const line of r.stdout.split("\n")) {
    if (line.startsWith("# file: ")) {
      const p = unquote(Buffer.from(line.slice(8), "utf8")).toString("utf8");
      current = undefined;
      if (p.startsWith(prefix)) {
        current = new Map();
        out.set(p.slice(prefix.length), current);
      }
      continue;
    }
    if (!current || !line) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const name = unquote(Buffer.from(line.slice(0, eq), "utf8")).toString("utf8");
    const v = line.slice(eq + 1);
    if (v.startsWith("0x")) current.set(name, Buffer.from(v.slice(2), "hex"));
    else if (v.startsWith('"') && v.endsWith('"')) current.set(name, unquote(Buffer.from(v.slice(1, -1), "utf8")));
  }
  return out;
}

function typeOf(st: Stats): EntryType | undefined {
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

async function* walk(dir: string, overlay: boolean, options: TarOptions): AsyncGenerator<Buffer> {
  const root = dir.replace(/\/+$/, "") || "/";
  const xattrs = options.host ? await readXattrs(options.host, root, options.signal) : new Map<string, Map<string, Buffer>>();
  const epoch = options.sourceDateEpoch;
  const inodes = new Map<string, string>();
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
  const mtimeOf = (st: Stats) => {
    const t = Math.floor(st.mtimeMs / 1000);
    return epoch !== undefined && t > epoch ? epoch : t;
  };
  const attrsOf = (rel: string): Map<string, Buffer> | undefined => {
    const m = xattrs.get(rel);
    if (!m) return undefined;
    const out = new Map<string, Buffer>();
    for (const [k, v] of m) {
      // Overlay bookkeeping and host SELinux labels do not belong in an image.
      if (k.startsWith("trusted.overlay.") || k.startsWith("user.overlay.") || k === "security.selinux") continue;
      out.set(k, v);
    }
    return out.size ? out : undefined;
  };

  // Depth-first, names in byte order; directories are listed before their contents.
  const stack: string[] = [];
  const top = readdirSync(root).sort(byteOrder).reverse();
  for (const n of top) stack.push(n);
  while (stack.length) {
    if (options.signal?.aborted) throw canceled("Creating the layer tar was canceled");
    const rel = stack.pop()!;
    const path = `${root}/${rel}`;
    const st = lstatSync(path);
    const type = typeOf(st);
    if (!type) continue;
    const slash = rel.lastIndexOf("/");
    const parent = slash < 0 ? "" : rel.slice(0, slash + 1);
    const base = rel.slice(slash + 1);
    if (overlay && type === "char" && st.rdev === 0) {
      push(encodeHeader({ name: `${parent}.wh.${base}`, type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: mtimeOf(st) }));
    } else {
      const spec: HeaderSpec = {
        name: type === "dir" ? `${rel}/` : rel,
        type,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: 0,
        mtime: mtimeOf(st),
      };
      const attrs = attrsOf(rel);
      if (attrs) spec.xattrs = attrs;
      if (type === "symlink") spec.linkname = readlinkSync(path);
      if (type === "char" || type === "block") {
        spec.devmajor = devMajor(st.rdev);
        spec.devminor = devMinor(st.rdev);
      }
      let linked = false;
      if (type !== "dir" && st.nlink > 1) {
        const id = `${st.dev}:${st.ino}`;
        const first = inodes.get(id);
        if (first !== undefined) {
          spec.type = "link";
          spec.linkname = first;
          delete spec.xattrs;
          linked = true;
        } else inodes.set(id, rel);
      }
      if (type === "file" && !linked) {
        spec.size = st.size;
        yield* fileEntry(path, spec, push, take);
      } else push(encodeHeader(spec));
      if (type === "dir") {
        if (overlay && xattrs.get(rel)?.get("trusted.overlay.opaque")?.toString() === "y") {
          push(encodeHeader({ name: `${rel}/.wh..wh..opq`, type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: mtimeOf(st) }));
        }
        const names = readdirSync(path).sort(byteOrder);
        for (let i = names.length - 1; i >= 0; i--) stack.push(`${rel}/${names[i]}`);
      }
    }
    if (batched >= BATCH) yield take();
  }
  push(END_OF_ARCHIVE);
  yield take();
}

/** Emits a regular file's header and data; the file must keep the size it had when listed. */
async function* fileEntry(path: string, spec: HeaderSpec, push: (b: Buffer) => void, take: () => Buffer): AsyncGenerator<Buffer> {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const size = fstatSync(fd).size;
    if (size !== spec.size) spec.size = size;
    push(encodeHeader(spec));
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(left, SMALL_FILE));
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, null);
        if (n === 0) throw internal(`Cannot archive "${path}": it shrank while being read`);
        got += n;
      }
      left -= got;
      push(buf);
      if (left > 0) yield take();
    }
    push(padding(size));
  } finally {
    closeSync(fd);
  }
}

/**
 * An uncompressed tar of everything under `dir` (not `dir` itself), deterministic for a given
 * tree. Sockets are skipped.
 */
export function tarDirectory(dir: string, options: TarOptions = {}): Readable {
  return Readable.from(walk(dir, false, options), { objectMode: false });
}

/**
 * A layer tar from an overlayfs upper directory: a character device 0/0 becomes a `.wh.<name>`
 * whiteout and a directory with `trusted.overlay.opaque=y` gets a `.wh..wh..opq` entry after
 * it; overlay's own attributes are left out. The lowers are not read: with overlayfs the upper
 * directory already holds exactly the changes (this is what Docker's overlay2 driver does).
 * Needs `host` to see opaque directories.
 */
export function diffDirectories(upper: string, options: TarOptions = {}): Readable {
  return Readable.from(walk(upper, true, options), { objectMode: false });
}
