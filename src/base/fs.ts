import { randomBytes } from "node:crypto";
import { writeSync } from "node:fs";
import { open, rename, rm, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";

/**
 * Writes a file atomically: temp file in the same directory, fsync, rename, fsync the directory.
 * With `durable: false` the fsyncs are left out: readers never see a partial file, and the file
 * survives a crash of the process but not necessarily of the machine (for state that a machine
 * crash makes moot anyway, such as a running container's bundle).
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode = 0o644,
  options: { durable?: boolean } = {},
): Promise<void> {
  const durable = options.durable !== false;
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.tmp-${randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, "w", mode);
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  if (durable) await fsyncDir(dir);
}

/** fsync a directory so that a rename in it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes all of `chunk` to `fd` (writeSync may write less than asked). */
export function writeAllSync(fd: number, chunk: Uint8Array): void {
  let off = 0;
  while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
}
