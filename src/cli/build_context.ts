/**
 * The classic builder's context: a tar of the context directory that honours `.dockerignore`
 * (moby/patternmatcher semantics: `!` exceptions, `**`, last match wins, a match of a parent
 * directory excludes its contents), owned by 0:0, always carrying the Dockerfile and
 * `.dockerignore` themselves.
 */
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import * as tar from "tar-stream";

/** One `.dockerignore` pattern. */
interface Pattern {
  text: string;
  exclusion: boolean;
  re: RegExp;
}

/** Go's filepath.Clean for slash paths. */
export function cleanPath(p: string): string {
  const abs = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
      continue;
    }
    out.push(part);
  }
  const s = out.join("/");
  if (abs) return `/${s}`;
  return s === "" ? "." : s;
}

function globToRegExp(pattern: string): RegExp {
  let re = "^";
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === "*") {
      if (pattern[i + 1] === "*") {
        i += 2;
        if (pattern[i] === "/") {
          // `**/` matches zero or more directories.
          re += "(?:.*/)?";
          i++;
        } else re += ".*";
        continue;
      }
      re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        let cls = pattern.slice(i + 1, end);
        if (cls.startsWith("!") || cls.startsWith("^")) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else if (c === "\\" && i + 1 < pattern.length) {
      i++;
      re += (pattern[i] as string).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    i++;
  }
  return new RegExp(`${re}$`);
}

/** Parses `.dockerignore` text. */
export function parseDockerignore(text: string): Pattern[] {
  const out: Pattern[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    let exclusion = false;
    if (line.startsWith("!")) {
      exclusion = true;
      line = line.slice(1).trim();
    }
    if (line === "") continue;
    let p = cleanPath(line);
    if (p.startsWith("/")) p = p.slice(1) || ".";
    out.push({ text: p, exclusion, re: globToRegExp(p) });
  }
  return out;
}

/** Whether a context-relative path is excluded (the last matching pattern decides). */
export function isExcluded(patterns: readonly Pattern[], relPath: string): boolean {
  const parents: string[] = [];
  const parts = relPath.split("/");
  for (let i = 1; i < parts.length; i++) parents.push(parts.slice(0, i).join("/"));
  let excluded = false;
  for (const p of patterns) {
    const match = p.re.test(relPath) || parents.some((d) => p.re.test(d));
    if (match) excluded = !p.exclusion;
  }
  return excluded;
}

/** Files up to this size are read in one call. */
const SMALL_FILE = 1024 * 1024;

/** Options of `packContext`. */
export interface ContextOptions {
  /** Context-relative paths always sent (the Dockerfile, .dockerignore). */
  keep: string[];
  /** Extra in-memory files (a Dockerfile from outside the context). */
  extra?: { name: string; data: Buffer }[];
}

/** Tars a build context directory. */
export function packContext(dir: string, options: ContextOptions): Readable {
  let patterns: Pattern[] = [];
  try {
    patterns = parseDockerignore(readFileSync(join(dir, ".dockerignore"), "utf8"));
  } catch {
    patterns = [];
  }
  const keep = new Set(options.keep.map((k) => cleanPath(k)));
  const hasExceptions = patterns.some((p) => p.exclusion);
  const pack = tar.pack();
  const entry = (h: Parameters<typeof pack.entry>[0], data?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      if (data !== undefined) pack.entry(h, data, (e) => (e ? reject(e) : resolve()));
      else pack.entry(h, (e) => (e ? reject(e) : resolve()));
    });
  // Metadata and small files are read synchronously: for a context of thousands of small
  // files a trip through the fs thread pool per call costs more than the call itself.
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === "" ? dir : join(dir, rel);
    const names = readdirSync(abs).sort();
    for (const name of names) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const st = lstatSync(join(dir, r));
      const excluded = !keep.has(r) && isExcluded(patterns, r);
      if (excluded && !(st.isDirectory() && hasExceptions)) continue;
      const base = { mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: st.mtime };
      if (st.isDirectory()) {
        if (!excluded) await entry({ ...base, name: `${r}/`, type: "directory" });
        await walk(r);
      } else if (st.isSymbolicLink()) {
        if (!excluded) await entry({ ...base, name: r, type: "symlink", linkname: readlinkSync(join(dir, r)) });
      } else if (st.isFile() && !excluded) {
        if (st.size <= SMALL_FILE) {
          const data = readFileSync(join(dir, r));
          await entry({ ...base, name: r, type: "file", size: data.length }, data);
          continue;
        }
        await new Promise<void>((resolve, reject) => {
          const w = pack.entry({ ...base, name: r, type: "file", size: st.size }, (e) => (e ? reject(e) : resolve()));
          createReadStream(join(dir, r)).on("error", reject).pipe(w);
        });
      }
    }
  };
  (async () => {
    await walk("");
    for (const x of options.extra ?? [])
      await entry({ name: x.name, mode: 0o600, uid: 0, gid: 0, mtime: new Date(), type: "file" }, x.data);
    pack.finalize();
  })().catch((e) => pack.destroy(e as Error));
  return pack as unknown as Readable;
}
