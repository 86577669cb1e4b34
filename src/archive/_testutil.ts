/**
 * Test helpers for the archive folder: tars built with an independent writer (tar-stream),
 * a sandbox with a sentinel directory outside the unpack roots, and tree fingerprints.
 */
import { createHash } from "node:crypto";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import tarStream from "tar-stream";

export const IS_ROOT = process.getuid?.() === 0;

/** One entry for `tarOf`. */
export interface TestEntry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo";
  data?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

/** An uncompressed tar of `entries`, written by tar-stream. */
export async function tarOf(entries: TestEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? (e.name.endsWith("/") ? "directory" : "file");
    const header: Partial<tarStream.Header> & { name: string } = {
      name: e.name,
      type,
      mode: e.mode ?? (type === "directory" ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? new Date(1_600_000_000_000),
    };
    if (e.linkname !== undefined) header.linkname = e.linkname;
    if (e.devmajor !== undefined) header.devmajor = e.devmajor;
    if (e.devminor !== undefined) header.devminor = e.devminor;
    if (e.pax) header.pax = e.pax;
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === "file") pack.entry(header, e.data ?? "", cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A one-chunk (or `chunk`-sized pieces) stream of a buffer. */
export function streamOf(buf: Buffer, chunk = 0): Readable {
  if (!chunk) return Readable.from([buf], { objectMode: false });
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  return Readable.from(parts, { objectMode: false });
}

/** A fingerprint of everything under `dir`: names, types, modes, owners, times, link targets, contents. */
export function treeHash(dir: string): string {
  const h = createHash("sha256");
  const visit = (p: string, rel: string) => {
    const st = lstatSync(p);
    h.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0${st.mtimeMs}\0${st.size}\0${st.rdev}\0`);
    if (st.isSymbolicLink()) h.update(readlinkSync(p));
    else if (st.isFile()) h.update(readFileSync(p));
    else if (st.isDirectory()) for (const n of readdirSync(p).sort()) visit(join(p, n), `${rel}/${n}`);
  };
  visit(dir, ".");
  return h.digest("hex");
}

/** A temporary directory with an `outside` sentinel tree and fresh unpack roots. */
export class Sandbox {
  readonly base: string;
  readonly outside: string;
  #n = 0;
  constructor() {
    this.base = mkdtempSync(join(tmpdir(), "berth-archive-"));
    this.outside = join(this.base, "outside");
    mkdirSync(join(this.outside, ".ssh"), { recursive: true, mode: 0o700 });
    mkdirSync(join(this.outside, "dir"), { mode: 0o750 });
    writeFileSync(join(this.outside, "secret"), "top secret\n", { mode: 0o600 });
    writeFileSync(join(this.outside, ".ssh", "authorized_keys"), "ssh-ed25519 AAAA legit\n", { mode: 0o600 });
    writeFileSync(join(this.outside, "dir", "file"), "inside dir\n", { mode: 0o640 });
  }
  /** A new empty directory to unpack into. */
  root(): string {
    const d = join(this.base, `root${++this.#n}`, "fs");
    mkdirSync(d, { recursive: true, mode: 0o755 });
    return d;
  }
  sentinel(): string {
    return treeHash(this.outside);
  }
  cleanup(): void {
    // Layers may leave read-only directories; without root they block removal.
    const visit = (dir: string) => {
      try {
        chmodSync(dir, 0o700);
        for (const n of readdirSync(dir)) if (lstatSync(join(dir, n)).isDirectory()) visit(join(dir, n));
      } catch {}
    };
    if (!IS_ROOT) visit(this.base);
    rmSync(this.base, { recursive: true, force: true });
  }
}

export function fileHash(p: string): string {
  return createHash("sha256").update(readFileSync(p)).digest("hex");
}
