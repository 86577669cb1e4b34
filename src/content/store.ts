import { createReadStream, type ReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import {
  type Digest,
  Digester,
  failedPrecondition,
  fsyncDir,
  invalidArgument,
  isNotFound,
  notFound,
  parseDigest,
  splitDigest,
} from "../base/mod.ts";

/** Bytes an ingest gathers before it writes them (see `Ingest.write`). */
const WRITE_BATCH = 1024 * 1024;
/**
 * A large blob is written back to disk as it arrives, a datasync every this many bytes (in the
 * background), so that the fsync of `commit` only waits for the last few MiB: it comes after the
 * last byte, when the pull is otherwise done.
 */
const SYNC_EVERY = 16 * 1024 * 1024;

/** Size and digest of a committed blob. */
export interface BlobInfo {
  digest: Digest;
  size: number;
}

/** What an ingest is expected to produce; the size is checked when known. */
export interface Expected {
  digest: Digest;
  size?: number;
}

/**
 * A content-addressed blob store (containerd's content store, on disk):
 *
 * Blobs live at `blobs/sha256/<hex>` and are immutable. A blob is written through an `Ingest`
 * under `ingest/<ref>/data`, which survives crashes and restarts so that a download can resume
 * at its offset; `commit` verifies size and digest, fsyncs, and renames it into `blobs/`, so a
 * blob is never visible before it is complete and verified. Two ingests of the same digest in
 * one process are serialised by `ingestOnce` so that the data is fetched once.
 *
 * Deleting blobs is the garbage collector's job (`delete`), which knows what is referenced.
 */
export class ContentStore {
  readonly root: string;
  #active = new Map<string, Promise<BlobInfo>>();

  constructor(root: string) {
    this.root = root;
  }

  async init(): Promise<void> {
    await mkdir(join(this.root, "blobs", "sha256"), { recursive: true });
    await mkdir(join(this.root, "ingest"), { recursive: true });
  }

  /** Path of a committed blob; the digest is validated before it is joined. */
  blobPath(d: Digest | string): string {
    const { algorithm, hex } = splitDigest(parseDigest(d));
    return join(this.root, "blobs", algorithm, hex);
  }

  /** Info of a committed blob, or undefined. */
  async info(d: Digest): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.blobPath(d));
      return { digest: d, size: s.size };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async has(d: Digest): Promise<boolean> {
    return (await this.info(d)) !== undefined;
  }

  /** Reads a whole blob; refuses blobs larger than `maxSize`. */
  async readBytes(d: Digest, maxSize = 16 * 1024 * 1024): Promise<Buffer> {
    const info = await this.info(d);
    if (!info) throw notFound(`Blob "${d}" not found`);
    if (info.size > maxSize) throw invalidArgument(`Blob "${d}" is larger than ${maxSize} bytes`);
    return await readFile(this.blobPath(d));
  }

  /** A stream of a committed blob. */
  async reader(d: Digest, options: { start?: number } = {}): Promise<ReadStream> {
    if (!(await this.info(d))) throw notFound(`Blob "${d}" not found`);
    return createReadStream(this.blobPath(d), options.start ? { start: options.start } : {});
  }

  /**
   * Opens (or resumes) an ingest for `expected`. `ref` names the ingest; by default the digest's
   * hex, so that every writer of one digest shares one resumable partial file.
   */
  async ingest(expected: Expected, ref = splitDigest(expected.digest).hex): Promise<Ingest> {
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(ref)) throw invalidArgument(`Invalid ingest ref "${ref}"`);
    const dir = join(this.root, "ingest", ref);
    await mkdir(dir, { recursive: true });
    const dataPath = join(dir, "data");
    const fh = await open(dataPath, "a+");
    const digester = new Digester(splitDigest(expected.digest).algorithm);
    // Resume: rehash what is already there.
    const existing = (await fh.stat()).size;
    if (existing > 0) {
      if (expected.size !== undefined && existing > expected.size) {
        await fh.truncate(0);
      } else {
        const buf = Buffer.allocUnsafe(1024 * 1024);
        let pos = 0;
        while (pos < existing) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, existing - pos), pos);
          if (bytesRead === 0) break;
          digester.update(buf.subarray(0, bytesRead));
          pos += bytesRead;
        }
      }
    }
    return new Ingest(this, dir, fh, digester, expected);
  }

  /**
   * Runs `fn` to fetch `expected` unless the blob exists; concurrent callers for the same
   * digest wait for the first one instead of fetching again.
   */
  async ingestOnce(expected: Expected, fn: (ingest: Ingest) => Promise<void>): Promise<BlobInfo> {
    const have = await this.info(expected.digest);
    if (have) {
      if (expected.size !== undefined && have.size !== expected.size) {
        throw failedPrecondition(`Blob "${expected.digest}" has size ${have.size}, expected ${expected.size}`);
      }
      return have;
    }
    const key = expected.digest;
    const running = this.#active.get(key);
    if (running) return await running;
    const p = (async () => {
      const ing = await this.ingest(expected);
      try {
        await fn(ing);
        return await ing.commit();
      } catch (e) {
        // Nothing written (a 404, or bad bytes reset away): nothing to resume, so leave no ingest.
        if (ing.offset === 0) await ing.abort();
        throw e;
      } finally {
        await ing.close();
      }
    })();
    this.#active.set(key, p);
    try {
      return await p;
    } finally {
      this.#active.delete(key);
    }
  }

  /** Writes a whole stream as a blob, verifying it against `expected` when given. */
  async writeStream(stream: Readable, expected?: Expected): Promise<BlobInfo> {
    if (expected) {
      return await this.ingestOnce(expected, async (ing) => {
        await ing.reset();
        for await (const chunk of stream) await ing.write(chunk as Buffer);
      });
    }
    // Unknown digest: spool to a temp ingest, then move under its computed digest.
    const ref = `tmp-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const dir = join(this.root, "ingest", ref);
    await mkdir(dir, { recursive: true });
    const dataPath = join(dir, "data");
    const fh = await open(dataPath, "w");
    const dg = new Digester();
    try {
      for await (const chunk of stream) {
        const b = chunk as Buffer;
        dg.update(b);
        await fh.write(b);
      }
      await fh.sync();
    } catch (e) {
      await fh.close();
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    await fh.close();
    const info = { digest: dg.digest(), size: dg.size };
    const dest = this.blobPath(info.digest);
    if (!(await this.info(info.digest))) {
      await rename(dataPath, dest);
      await fsyncDir(join(dest, ".."));
    }
    await rm(dir, { recursive: true, force: true });
    return info;
  }

  /** Stores bytes as a blob (manifests, configs); verifies against `expected` when given. */
  async put(bytes: Uint8Array, expected?: Digest): Promise<BlobInfo> {
    const dg = new Digester(expected ? splitDigest(expected).algorithm : "sha256");
    dg.update(bytes);
    const digest = dg.digest();
    if (expected && digest !== expected) throw invalidArgument(`Digest mismatch: expected "${expected}", got "${digest}"`);
    // ingestOnce: two puts of the same bytes at once must not race on one ingest.
    return await this.ingestOnce({ digest, size: bytes.length }, async (ing) => {
      await ing.reset();
      await ing.write(bytes);
    });
  }

  /** Removes a committed blob. Only the garbage collector calls this. */
  async delete(d: Digest): Promise<void> {
    await rm(this.blobPath(d), { force: true });
  }

  /** Every committed blob. */
  async *list(): AsyncIterable<BlobInfo> {
    for (const algorithm of ["sha256", "sha512"]) {
      let names: string[];
      try {
        names = await readdir(join(this.root, "blobs", algorithm));
      } catch (e) {
        if (isNotFound(e)) continue;
        throw e;
      }
      for (const hex of names) {
        const digest = `${algorithm}:${hex}`;
        try {
          const s = await stat(join(this.root, "blobs", algorithm, hex));
          yield { digest: parseDigest(digest), size: s.size };
        } catch {
          // not a blob (stray file): the checker reports it
        }
      }
    }
  }

  /** Names of ingests in progress or abandoned, with their age in ms. */
  async ingests(): Promise<{ ref: string; size: number; ageMs: number }[]> {
    const out: { ref: string; size: number; ageMs: number }[] = [];
    let names: string[] = [];
    try {
      names = await readdir(join(this.root, "ingest"));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    for (const ref of names) {
      try {
        const s = await stat(join(this.root, "ingest", ref, "data"));
        out.push({ ref, size: s.size, ageMs: Date.now() - s.mtimeMs });
      } catch {
        out.push({ ref, size: 0, ageMs: Number.POSITIVE_INFINITY });
      }
    }
    return out;
  }

  /** Removes an ingest and its partial data. */
  async abortIngest(ref: string): Promise<void> {
    if (!/^[A-Za-z0-9_.-]{1,160}$/.test(ref)) throw invalidArgument(`Invalid ingest ref "${ref}"`);
    await rm(join(this.root, "ingest", ref), { recursive: true, force: true });
  }
}

/**
 * A resumable writer of one blob. `offset` is how many bytes are already written (a resumed
 * download asks the registry for the rest with a Range request, or calls `reset` to start over).
 */
export class Ingest {
  readonly expected: Expected;
  #store: ContentStore;
  #dir: string;
  #fh: FileHandle | undefined;
  #digester: Digester;
  /** Chunks accepted (and hashed) but not yet written: written together, `WRITE_BATCH` at a time. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Bytes written since the last background datasync was started, and that datasync. */
  #unsynced = 0;
  #syncing: Promise<void> | undefined;

  constructor(store: ContentStore, dir: string, fh: FileHandle, digester: Digester, expected: Expected) {
    this.#store = store;
    this.#dir = dir;
    this.#fh = fh;
    this.#digester = digester;
    this.expected = expected;
  }

  /** Bytes accepted so far (some may still be on their way to the file; see `write`). */
  get offset(): number {
    return this.#digester.size;
  }

  /** Discards what was written and starts again at offset 0. */
  async reset(): Promise<void> {
    const fh = this.#handle();
    this.#pending = [];
    this.#pendingBytes = 0;
    await fh.truncate(0);
    this.#digester = new Digester(splitDigest(this.expected.digest).algorithm);
  }

  /**
   * Appends `chunk`, which must not change afterwards: chunks are written in batches of about
   * 1 MiB (a registry body comes in chunks of 16-64 KiB, a write and a thread-pool round trip
   * each otherwise). `commit` and `close` write what is left.
   */
  async write(chunk: Uint8Array): Promise<void> {
    this.#handle();
    const size = this.expected.size;
    if (size !== undefined && this.#digester.size + chunk.length > size) {
      throw invalidArgument(`Blob "${this.expected.digest}" is larger than its declared size ${size}`);
    }
    this.#digester.update(chunk);
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#pendingBytes >= WRITE_BATCH) await this.#flush();
  }

  async #flush(): Promise<void> {
    const fh = this.#handle();
    let bufs = this.#pending;
    const n = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    while (bufs.length) {
      let { bytesWritten } = await fh.writev(bufs);
      // A short write (rare on a regular file): go on from where it stopped.
      while (bufs.length && bytesWritten >= (bufs[0]?.length ?? 0)) bytesWritten -= bufs.shift()?.length ?? 0;
      if (bufs.length && bytesWritten > 0) bufs = [(bufs[0] as Uint8Array).subarray(bytesWritten), ...bufs.slice(1)];
    }
    this.#unsynced += n;
    if (this.#unsynced >= SYNC_EVERY && !this.#syncing) {
      this.#unsynced = 0;
      // Only a head start: its outcome does not matter, `commit` syncs (and reports) for real.
      this.#syncing = fh.datasync().then(
        () => {
          this.#syncing = undefined;
        },
        () => {
          this.#syncing = undefined;
        },
      );
    }
  }

  /** Verifies size and digest, makes the blob durable and visible, and removes the ingest. */
  async commit(): Promise<BlobInfo> {
    const fh = this.#handle();
    const size = this.#digester.size;
    const digest = this.#digester.digest();
    const { expected } = this;
    if (expected.size !== undefined && size !== expected.size) {
      await this.abort();
      throw invalidArgument(
        `Blob "${expected.digest}" has size ${size}, expected ${expected.size}: the download is truncated or the size lies`,
      );
    }
    if (digest !== expected.digest) {
      await this.abort();
      throw invalidArgument(`Digest mismatch for blob "${expected.digest}": content hashes to "${digest}"`);
    }
    await this.#flush();
    await this.#syncing;
    await fh.sync();
    await fh.close();
    this.#fh = undefined;
    const dest = this.#store.blobPath(digest);
    await rename(join(this.#dir, "data"), dest);
    await fsyncDir(join(dest, ".."));
    await rm(this.#dir, { recursive: true, force: true });
    return { digest, size };
  }

  /** Drops the partial data. */
  async abort(): Promise<void> {
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.close();
    await rm(this.#dir, { recursive: true, force: true });
  }

  /** Closes the file, keeping the partial data (all of it written) for a later resume. */
  async close(): Promise<void> {
    if (this.#fh && this.#pending.length) await this.#flush().catch(() => {});
    await this.#syncing;
    const fh = this.#fh;
    this.#fh = undefined;
    if (fh) await fh.close().catch(() => {});
  }

  #handle(): FileHandle {
    if (!this.#fh) throw failedPrecondition("Ingest is closed");
    return this.#fh;
  }
}
