/**
 * `berth cp`: copies between a container (GET/PUT/HEAD /containers/{id}/archive) and the local
 * filesystem with `cp -a`-like semantics (docker's archive.CopyTo rules), or streams a tar
 * from/to `-`. Local extraction resolves every path inside the destination and refuses to
 * write through symlinks.
 */
import { createReadStream } from "node:fs";
import { lstat, mkdir, readdir, readlink, rm, stat, symlink, utimes, chmod } from "node:fs/promises";
import { createWriteStream } from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { isNotFound } from "../base/mod.ts";
import type { PathStat } from "../client/mod.ts";
import { type Cli, StatusError } from "./cli.ts";
import type { Command } from "./command.ts";
import { humanSizeWithPrecision } from "./units.ts";

const MODE_DIR = 2 ** 31;
const MODE_SYMLINK = 2 ** 27;

/** docker's splitCpArg: `container:path`, or a local path. */
export function splitCpArg(arg: string): { container: string; path: string } {
  if (arg.startsWith("/")) return { container: "", path: arg };
  const i = arg.indexOf(":");
  if (i < 0 || arg.startsWith(".")) return { container: "", path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

/** Makes a local path absolute, keeping a trailing `/` or `/.` (archive.PreserveTrailingDotOrSeparator). */
export function resolveLocalPath(p: string, cwd = process.cwd()): string {
  let abs = resolve(cwd, p);
  if ((p.endsWith("/.") || p === ".") && !abs.endsWith("/.")) abs = `${abs === "/" ? "" : abs}/.`;
  else if (p.endsWith("/") && !abs.endsWith("/")) abs += "/";
  return abs;
}

function isDirStat(s: PathStat): boolean {
  return (s.mode & MODE_DIR) !== 0;
}

function cleanName(name: string): string {
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) throw new StatusError(1, `Refusing to extract "${name}": path escapes the destination`);
  return parts.join("/");
}

/** Resolves `rel` under `root` without passing through a symlink; creates missing parents. */
async function safeTarget(root: string, rel: string): Promise<string> {
  const parts = rel.split("/");
  let cur = root;
  for (const p of parts.slice(0, -1)) {
    cur = join(cur, p);
    const st = await lstat(cur).catch(() => undefined);
    if (!st) await mkdir(cur, { mode: 0o755 });
    else if (st.isSymbolicLink()) throw new StatusError(1, `Refusing to extract through symlink "${cur}"`);
    else if (!st.isDirectory()) throw new StatusError(1, `Cannot extract into "${cur}": not a directory`);
  }
  return join(root, rel);
}

/**
 * Extracts a tar into `destDir`, renaming the archive's top-level entry `fromRoot` to `toRoot`
 * ("" puts its contents directly into `destDir`). Returns the number of bytes of file content.
 */
export async function extractTar(input: Readable, destDir: string, rename?: { fromRoot?: string; toRoot: string }): Promise<number> {
  const ex = tar.extract();
  let total = 0;
  const dirTimes: [string, Date][] = [];
  const done = pipeline(input, ex);
  // When extraction stops early (a refused entry), the pipeline's own error is not the news.
  done.catch(() => {});
  for await (const entry of ex) {
    const h = entry.header;
    let name = cleanName(h.name);
    // Without an explicit root, the archive's first top-level component is the one renamed.
    if (rename && rename.fromRoot === undefined) rename.fromRoot = name.split("/")[0] ?? "";
    if (rename?.fromRoot !== undefined && (name === rename.fromRoot || name.startsWith(`${rename.fromRoot}/`))) {
      name = rename.toRoot + name.slice(rename.fromRoot.length);
      name = cleanName(name);
    }
    if (name === "") {
      // The root itself when copying contents: nothing to create.
      entry.resume();
      continue;
    }
    const target = await safeTarget(destDir, name);
    const mode = (h.mode ?? 0o644) & 0o7777;
    const existing = await lstat(target).catch(() => undefined);
    switch (h.type) {
      case "directory":
        if (existing && !existing.isDirectory()) await rm(target, { recursive: true, force: true });
        if (!existing?.isDirectory()) await mkdir(target, { mode });
        else await chmod(target, mode);
        if (h.mtime) dirTimes.push([target, h.mtime]);
        entry.resume();
        break;
      case "symlink":
        if (existing) await rm(target, { recursive: true, force: true });
        await symlink(h.linkname ?? "", target);
        entry.resume();
        break;
      case "file":
      case "contiguous-file":
      case undefined:
      case null:
        if (existing && (existing.isDirectory() || existing.isSymbolicLink())) await rm(target, { recursive: true, force: true });
        await pipeline(entry, createWriteStream(target, { mode }));
        await chmod(target, mode);
        if (h.mtime) await utimes(target, h.mtime, h.mtime);
        total += h.size ?? 0;
        break;
      default:
        // Hard links, devices and FIFOs are skipped: cp to the host keeps regular content only.
        entry.resume();
    }
  }
  await done;
  for (const [p, t] of dirTimes.reverse()) await utimes(p, t, t).catch(() => {});
  return total;
}

/** Packs a local path as a tar whose top-level entry is `rootName` ("" packs the directory's contents). */
export function packPath(src: string, rootName: string, options: { followLink: boolean }): { stream: Readable; size: Promise<number> } {
  const pack = tar.pack();
  let total = 0;
  const add = async (path: string, name: string, top: boolean): Promise<void> => {
    const st = top && options.followLink ? await stat(path) : await lstat(path);
    const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
    if (st.isDirectory()) {
      if (name !== "")
        await new Promise<void>((res, rej) => pack.entry({ ...base, name: `${name}/`, type: "directory" }, (e) => (e ? rej(e) : res())));
      for (const child of (await readdir(path)).sort()) await add(join(path, child), name === "" ? child : `${name}/${child}`, false);
    } else if (st.isSymbolicLink()) {
      const target = await readlink(path);
      await new Promise<void>((res, rej) => pack.entry({ ...base, name, type: "symlink", linkname: target }, (e) => (e ? rej(e) : res())));
    } else if (st.isFile()) {
      total += st.size;
      await new Promise<void>((res, rej) => {
        const w = pack.entry({ ...base, name, type: "file", size: st.size }, (e) => (e ? rej(e) : res()));
        createReadStream(path).on("error", rej).pipe(w);
      });
    }
  };
  const size = (async () => {
    await add(src, rootName, true);
    pack.finalize();
    return total;
  })();
  size.catch((e) => pack.destroy(e));
  return { stream: pack as unknown as Readable, size };
}

function progressSize(n: number): string {
  return humanSizeWithPrecision(n, 3);
}

async function copyFromContainer(
  cli: Cli,
  container: string,
  srcPath: string,
  dstPath: string,
  opts: { followLink: boolean; quiet: boolean },
): Promise<void> {
  let src = srcPath;
  if (opts.followLink) {
    const st = await cli.client.containerStatPath(container, src);
    if ((st.mode & MODE_SYMLINK) !== 0) src = st.linkTarget.startsWith("/") ? st.linkTarget : join(dirname(src), st.linkTarget);
  }
  const { body, stat: srcStat } = await cli.client.containerGetArchive(container, src);
  if (dstPath === "-") {
    await pipeline(body, cli.out.stream, { end: false });
    return;
  }
  const dst = resolveLocalPath(dstPath);
  const srcIsDir = isDirStat(srcStat);
  const dstStat = await stat(dst).catch(() => undefined);
  const srcContents = srcIsDir && (srcPath.endsWith("/.") || srcPath === ".");
  let destDir: string;
  let rename: { toRoot: string } | undefined;
  if (dstStat?.isDirectory()) {
    destDir = dst;
    if (srcContents) rename = { toRoot: "" };
  } else if (dstStat) {
    if (srcIsDir) throw new StatusError(1, "cannot copy a directory to a file");
    destDir = dirname(dst);
    rename = { toRoot: basename(dst) };
  } else {
    if (dst.endsWith(sep) && !srcIsDir) throw new StatusError(1, `no such directory`);
    destDir = dirname(dst.replace(/\/+$/, ""));
    const parent = await stat(destDir).catch(() => undefined);
    if (!parent) throw new StatusError(1, `lstat ${destDir}: no such file or directory`);
    rename = { toRoot: basename(dst.replace(/\/+$/, "")) };
  }
  const n = await extractTar(body, destDir, rename);
  if (!opts.quiet) await cli.eprintln(`Successfully copied ${progressSize(n)} to ${dstPath}`);
}

async function copyToContainer(
  cli: Cli,
  container: string,
  srcPath: string,
  dstPath: string,
  opts: { followLink: boolean; copyUIDGID: boolean; quiet: boolean },
): Promise<void> {
  let dstStat: PathStat | undefined;
  try {
    dstStat = await cli.client.containerStatPath(container, dstPath);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  // A symlink at the destination is followed, as docker does.
  if (dstStat && (dstStat.mode & MODE_SYMLINK) !== 0 && dstStat.linkTarget) {
    const target = dstStat.linkTarget.startsWith("/") ? dstStat.linkTarget : join(dirname(dstPath), dstStat.linkTarget);
    try {
      dstStat = await cli.client.containerStatPath(container, target);
      dstPath = target;
    } catch (e) {
      if (!isNotFound(e)) throw e;
      dstStat = undefined;
    }
  }
  const putOptions = { noOverwriteDirNonDir: true, copyUIDGID: opts.copyUIDGID };
  if (srcPath === "-") {
    if (!dstStat || !isDirStat(dstStat)) throw new StatusError(1, `destination "${container}:${dstPath}" must be a directory`);
    await cli.client.containerPutArchive(container, dstPath, cli.in.stream, putOptions);
    return;
  }
  const src = resolveLocalPath(srcPath);
  const localSrc = src.endsWith("/.") ? src.slice(0, -2) || "/" : src.replace(/(.)\/+$/, "$1");
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = opts.followLink ? await stat(localSrc) : await lstat(localSrc);
  } catch {
    throw new StatusError(1, `lstat ${localSrc}: no such file or directory`);
  }
  const srcIsDir = st.isDirectory();
  let destDir: string;
  let rootName: string;
  if (dstStat && isDirStat(dstStat)) {
    destDir = dstPath;
    rootName = srcIsDir && src.endsWith("/.") ? "" : basename(localSrc);
  } else if (dstStat) {
    if (srcIsDir) throw new StatusError(1, "cannot copy a directory to a file");
    destDir = dirname(dstPath);
    rootName = basename(dstPath);
  } else {
    if (dstPath.endsWith("/") && !srcIsDir) throw new StatusError(1, `no such directory`);
    const trimmed = dstPath.replace(/(.)\/+$/, "$1");
    destDir = dirname(trimmed);
    rootName = basename(trimmed);
  }
  const { stream, size } = packPath(localSrc, rootName, { followLink: opts.followLink });
  await cli.client.containerPutArchive(container, destDir, stream, putOptions);
  const n = await size;
  if (!opts.quiet) await cli.eprintln(`Successfully copied ${progressSize(n)} to ${container}:${dstPath}`);
}

export const cpCommand: Command = {
  name: "cp",
  usage: "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
  short:
    "Copy files/folders between a container and the local filesystem\n\nUse '-' as the source to read a tar archive from stdin\nand extract it to a directory destination in a container.\nUse '-' as the destination to stream a tar archive of a\ncontainer source to stdout.",
  aliasPaths: ["container cp", "cp"],
  args: { exact: 2 },
  flags: [
    { long: "archive", short: "a", kind: "bool", help: "Archive mode (copy all uid/gid information)" },
    { long: "follow-link", short: "L", kind: "bool", help: "Always follow symbol link in SRC_PATH" },
    {
      long: "quiet",
      short: "q",
      kind: "bool",
      help: "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached",
    },
  ],
  async run(cli, { flags, args }) {
    const src = splitCpArg(args[0] as string);
    const dst = splitCpArg(args[1] as string);
    if (src.path === "") throw new StatusError(1, "source can not be empty");
    if (dst.path === "") throw new StatusError(1, "destination can not be empty");
    const quiet = flags.has("quiet") ? flags.bool("quiet") : !cli.out.isTTY;
    if (src.container && dst.container) throw new StatusError(1, "copying between containers is not supported");
    if (src.container) {
      await copyFromContainer(cli, src.container, src.path, dst.path, { followLink: flags.bool("follow-link"), quiet });
    } else if (dst.container) {
      await copyToContainer(cli, dst.container, src.path, dst.path, {
        followLink: flags.bool("follow-link"),
        copyUIDGID: flags.bool("archive"),
        quiet,
      });
    } else throw new StatusError(1, "must specify at least one container source");
    return 0;
  },
};
