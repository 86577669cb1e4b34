/**
 * The build context as received: the uploaded tar is read once, as it streams in, into an
 * index in memory (names, types, modes, sizes, link targets, and each file's SHA-256 computed
 * on the way), and its bytes are kept. Cache keys of COPY and the Dockerfile come from the
 * index, and COPY writes files straight from it into the step's snapshot, so a build whose
 * steps all hit the cache never writes the context to disk, and one that copies writes each
 * file once (into the snapshot) instead of twice (context directory, then snapshot).
 *
 * The index serves only plain trees: directories, regular files, symlinks and hard links to
 * earlier files. Anything else (device nodes, whiteout names, entries reached through a
 * symlinked parent, an entry changing type, a name escaping the root) or a context over
 * `MAX_MEMORY` makes the index give up; the context is then unpacked to disk with
 * `applyLayer`, as it always is for what needs real files (ADD of local archives, RUN
 * `--mount=type=bind` from the context).
 */
import { createHash, type Hash } from "node:crypto";
import { closeSync, constants, openSync, writevSync } from "node:fs";
import { posix } from "node:path";
import { Readable } from "node:stream";
import { applyLayer, cleanPath, type TarHeader, TarReader, type TarSink } from "../archive/mod.ts";
import { type Host, invalidArgument, messageOf, notFound } from "../base/mod.ts";
import type { EntryStat, TreeFs } from "./fsops.ts";

/** Contexts larger than this (uncompressed tar bytes) are unpacked to disk as they arrive. */
export const MAX_MEMORY = 128 * 1024 * 1024;

const MAX_SYMLINKS = 255;

/** An entry's metadata, in the shape of `fs.Stats`. */
class NodeStat implements EntryStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atime: Date;
  mtime: Date;
  constructor(mode: number, uid: number, gid: number, size: number, mtime: Date) {
    this.mode = mode;
    this.uid = uid;
    this.gid = gid;
    this.size = size;
    this.atime = mtime;
    this.mtime = mtime;
  }
  isDirectory(): boolean {
    return (this.mode & constants.S_IFMT) === constants.S_IFDIR;
  }
  isFile(): boolean {
    return (this.mode & constants.S_IFMT) === constants.S_IFREG;
  }
  isSymbolicLink(): boolean {
    return (this.mode & constants.S_IFMT) === constants.S_IFLNK;
  }
}

/** One entry of the index. Hard links share the node of their target. */
interface Node {
  stat: NodeStat;
  children?: Map<string, Node>;
  /** A file's content: views into the received chunks. */
  data?: Buffer[];
  digest?: Buffer;
  link?: string;
}

/** Why the index gave up (internal: turns into unpacking to disk). */
class Unindexable extends Error {}

function dirNode(mode: number, mtime: Date): Node {
  return { stat: new NodeStat(constants.S_IFDIR | (mode & 0o7777), 0, 0, 0, mtime), children: new Map() };
}

/** The context's files in memory, readable as a `TreeFs` under the path `root`. */
export class ContextIndex implements TreeFs {
  readonly root: string;
  #top: Node;

  constructor(root: string, top: Node) {
    this.root = posix.resolve(root);
    this.#top = top;
  }

  #node(path: string): Node | undefined {
    const p = posix.resolve(path);
    if (p === this.root) return this.#top;
    if (!p.startsWith(`${this.root}/`)) return undefined;
    let cur: Node | undefined = this.#top;
    for (const part of p.slice(this.root.length + 1).split("/")) {
      cur = cur?.children?.get(part);
      if (!cur) return undefined;
    }
    return cur;
  }

  async lstat(path: string): Promise<EntryStat | undefined> {
    return this.#node(path)?.stat;
  }

  async readdir(path: string): Promise<string[]> {
    const n = this.#node(path);
    if (!n?.children) throw notFound(`Cannot list "${path}": not a directory in the build context`);
    return [...n.children.keys()];
  }

  async readlink(path: string): Promise<string> {
    const n = this.#node(path);
    if (n?.link === undefined) throw notFound(`Cannot read the link "${path}" in the build context`);
    return n.link;
  }

  /** `resolveInRoot` over the index: `..` stops at the root, absolute link targets restart there. */
  async resolve(root: string, path: string): Promise<string> {
    const rootClean = posix.resolve(root);
    const pending = posix.normalize(`/${path}`).split("/").filter(Boolean);
    const done: string[] = [];
    let hops = 0;
    while (pending.length) {
      const part = pending.shift() ?? "";
      if (part === ".") continue;
      if (part === "..") {
        done.pop();
        continue;
      }
      const n = this.#node(posix.join(rootClean, ...done, part));
      if (n?.link !== undefined) {
        if (++hops > MAX_SYMLINKS) throw invalidArgument(`Cannot resolve "${path}": too many levels of symbolic links`);
        if (n.link.startsWith("/")) done.length = 0;
        pending.unshift(...n.link.split("/").filter(Boolean));
        continue;
      }
      done.push(part);
    }
    return posix.join(rootClean, ...done);
  }

  async digest(path: string): Promise<Buffer> {
    const n = this.#node(path);
    if (!n?.digest) throw notFound(`"${path}" is not a file in the build context`);
    return n.digest;
  }

  async copyTo(path: string, dst: string): Promise<void> {
    const n = this.#node(path);
    if (!n?.data) throw notFound(`"${path}" is not a file in the build context`);
    const fd = openSync(dst, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      let rest = n.data;
      // writev takes at most IOV_MAX buffers and may write less than asked.
      while (rest.length) {
        const batch = rest.slice(0, 1024);
        let wrote = writevSync(fd, batch);
        let i = 0;
        while (i < batch.length && wrote >= (batch[i]?.length ?? 0)) wrote -= batch[i++]?.length ?? 0;
        rest = i < batch.length ? [(batch[i] as Buffer).subarray(wrote), ...batch.slice(i + 1), ...rest.slice(1024)] : rest.slice(1024);
      }
    } finally {
      closeSync(fd);
    }
  }

  /** A regular file's content (following symlinks inside the context); undefined when missing. */
  async readFile(path: string, maxBytes: number): Promise<string | undefined> {
    const n = this.#node(await this.resolve(this.root, path));
    if (!n) return undefined;
    if (!n.data) throw invalidArgument(`Cannot read "${path}" in the build context: not a regular file`);
    if (n.stat.size > maxBytes) throw invalidArgument(`Cannot read "${path}" in the build context: larger than ${maxBytes} bytes`);
    return Buffer.concat(n.data).toString("utf8");
  }
}

/** Builds the index from tar entries; throws `Unindexable` for what it does not serve. */
class IndexSink implements TarSink {
  top = dirNode(0o700, new Date(0));
  #file: { node: Node; hash: Hash } | undefined;

  entry(h: TarHeader): void {
    const comps = cleanPath(h.name);
    if (comps === null) throw new Unindexable("path escapes the root");
    if (comps.length === 0) return; // the root: its metadata is not the context's
    const base = comps[comps.length - 1] ?? "";
    if (base.startsWith(".wh.")) throw new Unindexable("whiteout name");
    let parent = this.top;
    for (const c of comps.slice(0, -1)) {
      let next = parent.children?.get(c);
      if (!next) {
        // A parent no entry named: what MkdirAll would make.
        next = dirNode(0o755, new Date(0));
        parent.children?.set(c, next);
      }
      if (!next.children) throw new Unindexable("parent is not a directory");
      parent = next;
    }
    const have = parent.children?.get(base);
    const mtime = new Date(Math.max(0, h.mtime) * 1000);
    switch (h.type) {
      case "dir": {
        if (have && !have.children) throw new Unindexable("type change");
        const stat = new NodeStat(constants.S_IFDIR | (h.mode & 0o7777), h.uid, h.gid, 0, mtime);
        if (have) have.stat = stat;
        else parent.children?.set(base, { stat, children: new Map() });
        return;
      }
      case "file": {
        if (have?.children) throw new Unindexable("type change");
        const node: Node = { stat: new NodeStat(constants.S_IFREG | (h.mode & 0o7777), h.uid, h.gid, h.size, mtime), data: [] };
        parent.children?.set(base, node);
        this.#file = { node, hash: createHash("sha256") };
        return;
      }
      case "symlink": {
        if (have?.children) throw new Unindexable("type change");
        if (!h.linkname) throw new Unindexable("empty symlink");
        parent.children?.set(base, {
          stat: new NodeStat(constants.S_IFLNK | 0o777, h.uid, h.gid, h.linkname.length, mtime),
          link: h.linkname,
        });
        return;
      }
      case "link": {
        if (have?.children) throw new Unindexable("type change");
        const lc = cleanPath(h.linkname);
        if (lc === null || lc.length === 0) throw new Unindexable("bad hard link");
        let target: Node | undefined = this.top;
        for (const c of lc) target = target?.children?.get(c);
        if (!target?.data) throw new Unindexable("hard link to a missing file");
        parent.children?.set(base, target);
        return;
      }
      default:
        throw new Unindexable(`${h.type} entry`);
    }
  }

  data(chunk: Buffer): void {
    if (!this.#file) return;
    this.#file.node.data?.push(chunk);
    this.#file.hash.update(chunk);
  }

  entryEnd(): void {
    if (!this.#file) return;
    this.#file.node.digest = this.#file.hash.digest();
    this.#file = undefined;
  }
}

/** Options of `receiveContext`. */
export interface ReceiveOptions {
  host: Host;
  signal?: AbortSignal | undefined;
  /** Override of `MAX_MEMORY` (tests). */
  maxMemory?: number;
}

/**
 * A received build context: the index when it could be built, and `materialize` to have the
 * files on disk at `dir` (once; later calls wait for the first).
 */
export class ReceivedContext {
  readonly dir: string;
  readonly index: ContextIndex | undefined;
  #chunks: Buffer[];
  #host: Host;
  #signal: AbortSignal | undefined;
  #onDisk: Promise<void> | undefined;

  constructor(dir: string, index: ContextIndex | undefined, chunks: Buffer[], options: ReceiveOptions, onDisk?: Promise<void>) {
    this.dir = dir;
    this.index = index;
    this.#chunks = chunks;
    this.#host = options.host;
    this.#signal = options.signal;
    this.#onDisk = onDisk;
  }

  /** Whether the files are (or are being) unpacked on disk. */
  get onDisk(): boolean {
    return this.#onDisk !== undefined;
  }

  /** Unpacks the context into `dir` with `applyLayer` (paths resolved inside it, size caps). */
  materialize(): Promise<void> {
    this.#onDisk ??= (async () => {
      const chunks = this.#chunks;
      this.#chunks = [];
      await unpack(Readable.from(chunks), this.dir, this.#host, this.#signal);
    })();
    return this.#onDisk;
  }
}

async function unpack(tar: Readable, dir: string, host: Host, signal: AbortSignal | undefined): Promise<void> {
  const opts: Parameters<typeof applyLayer>[2] = { host, layerName: "build context" };
  if (signal) opts.signal = signal;
  try {
    await applyLayer(tar, dir, opts);
  } catch (e) {
    throw invalidArgument(`Cannot read the build context: ${messageOf(e)}`, { cause: e });
  }
}

/**
 * Reads a context tar (already decompressed, complete with its end-of-archive blocks) into an
 * index, or, when the index gives up or the context outgrows memory, unpacks it into `dir`.
 */
export async function receiveContext(tar: AsyncIterable<Buffer>, dir: string, options: ReceiveOptions): Promise<ReceivedContext> {
  const max = options.maxMemory ?? MAX_MEMORY;
  const sink = new IndexSink();
  const reader = new TarReader(sink);
  const chunks: Buffer[] = [];
  let size = 0;
  let why = "";
  const it = tar[Symbol.asyncIterator]();
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    const c = r.value;
    chunks.push(c);
    size += c.length;
    try {
      reader.push(c);
    } catch (e) {
      if (e instanceof Unindexable) why = e.message;
      else throw invalidArgument(`Cannot read the build context: ${messageOf(e)}`, { cause: e });
    }
    if (!why && size > max) why = `larger than ${max} bytes`;
    if (why) {
      // Unpack what came and what is still coming, as the context always was.
      async function* rest(): AsyncGenerator<Buffer> {
        yield* chunks;
        for (;;) {
          const n = await it.next();
          if (n.done) return;
          yield n.value;
        }
      }
      const done = unpack(Readable.from(rest()), dir, options.host, options.signal);
      await done;
      return new ReceivedContext(dir, undefined, [], options, done);
    }
  }
  try {
    reader.end();
  } catch (e) {
    throw invalidArgument(`Cannot read the build context: ${messageOf(e)}`, { cause: e });
  }
  return new ReceivedContext(dir, new ContextIndex(dir, sink.top), chunks, options);
}

/** The context of a build whose body was a bare Dockerfile: no files. */
export function emptyContext(dir: string, options: ReceiveOptions): ReceivedContext {
  return new ReceivedContext(dir, new ContextIndex(dir, dirNode(0o700, new Date(0))), [], options);
}
