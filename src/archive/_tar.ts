/**
 * A streaming tar reader and a header writer, written for berth rather than borrowed: the reader
 * must keep binary PAX values (`SCHILY.xattr.security.capability` is raw bytes, which UTF-8
 * decoding would destroy), stop exactly at the end-of-archive marker so trailing data can be
 * refused, bound every buffered header, and hand file data through without a stream object per
 * entry. Paths are never touched here: the reader only decodes, `apply.ts` decides where
 * things land.
 */
import { invalidArgument, notImplemented } from "../base/mod.ts";

/** The kinds of entry berth unpacks; everything else in a tar is metadata or refused. */
export type EntryType = "file" | "link" | "symlink" | "char" | "block" | "dir" | "fifo";

/** One decoded entry, with PAX and GNU long-name records already applied. */
export interface TarHeader {
  name: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow (0 for every type but `file`). */
  size: number;
  /** Modification time in seconds since the epoch (may be fractional, from PAX). */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from `SCHILY.xattr.*` records, values as raw bytes. */
  xattrs: Map<string, Buffer> | undefined;
}

/** Receives entries from a `TarReader`, synchronously, in archive order. */
export interface TarSink {
  entry(header: TarHeader): void;
  /** A piece of the current `file` entry's data (a view into the input; copy to keep). */
  data(chunk: Buffer): void;
  /** The current entry is complete. Called for every entry, after its data. */
  entryEnd(): void;
}

/** Bounds the reader enforces while decoding. */
export interface TarLimits {
  /** Largest PAX or GNU long-name record body, in bytes. */
  maxHeaderSize: number;
  /** Longest entry or link name, in bytes (PATH_MAX). */
  maxNameLength: number;
  /** Most entries (each file, directory, link, ...). */
  maxEntries: number;
}

export const DEFAULT_LIMITS: TarLimits = { maxHeaderSize: 1 << 20, maxNameLength: 4096, maxEntries: 1_000_000 };

const BLOCK = 512;
const ZEROS = Buffer.alloc(64 * 1024);
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes a name field: UTF-8 where valid; otherwise each byte as Latin-1 (lossless, rare). */
function decodeName(b: Buffer): string {
  for (let i = 0; i < b.length; i++) {
    if (b[i]! >= 0x80) {
      try {
        return utf8.decode(b);
      } catch {
        return b.toString("latin1");
      }
    }
  }
  return b.toString("latin1");
}

function field(block: Buffer, start: number, len: number): Buffer {
  const f = block.subarray(start, start + len);
  const nul = f.indexOf(0);
  return nul === -1 ? f : f.subarray(0, nul);
}

/** Parses a numeric header field: octal text, or GNU base-256 when the high bit is set. */
function num(block: Buffer, start: number, len: number, what: string): number {
  const first = block[start]!;
  if (first & 0x80) {
    if (first === 0xff) throw invalidArgument(`Invalid tar header: negative ${what}`);
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + block[start + i]!;
      if (v > Number.MAX_SAFE_INTEGER) throw invalidArgument(`Invalid tar header: ${what} too large`);
    }
    return v;
  }
  let v = 0;
  let seen = false;
  for (let i = start; i < start + len; i++) {
    const c = block[i]!;
    if (c === 0) break;
    if (c === 0x20) {
      if (seen) break;
      continue;
    }
    if (c < 0x30 || c > 0x37) throw invalidArgument(`Invalid tar header: bad ${what} field`);
    v = v * 8 + (c - 0x30);
    seen = true;
  }
  return v;
}

function checksumOk(block: Buffer): boolean {
  let stored: number;
  try {
    stored = num(block, 148, 8, "checksum");
  } catch {
    return false;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return stored === unsigned || stored === signed;
}

function isZero(b: Buffer): boolean {
  for (let off = 0; off < b.length; off += ZEROS.length) {
    const n = Math.min(ZEROS.length, b.length - off);
    if (b.compare(ZEROS, 0, n, off, off + n) !== 0) return false;
  }
  return true;
}

function parseDecimal(v: string, what: string, allowFraction = false): number {
  const re = allowFraction ? /^-?[0-9]{1,19}(\.[0-9]{0,19})?$/ : /^[0-9]{1,19}$/;
  if (!re.test(v)) throw invalidArgument(`Invalid PAX record: bad ${what} "${v.slice(0, 40)}"`);
  const n = Number(v);
  if (!Number.isFinite(n) || (!allowFraction && !Number.isSafeInteger(n)))
    throw invalidArgument(`Invalid PAX record: ${what} out of range`);
  return n;
}

interface Pax {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  xattrs?: Map<string, Buffer>;
}

/** Decodes PAX records (`<len> <key>=<value>\n`), keeping values as bytes until interpreted. */
function parsePax(buf: Buffer): Pax {
  const pax: Pax = {};
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    if (sp === -1 || sp - i > 20) throw invalidArgument("Invalid PAX record: missing length");
    const lenText = buf.toString("latin1", i, sp);
    if (!/^[0-9]+$/.test(lenText)) throw invalidArgument("Invalid PAX record: bad length");
    const len = Number(lenText);
    const end = i + len;
    if (len <= sp - i + 1 || end > buf.length || buf[end - 1] !== 0x0a) throw invalidArgument("Invalid PAX record: bad length");
    const rec = buf.subarray(sp + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw invalidArgument("Invalid PAX record: missing key");
    const key = rec.toString("utf8", 0, eq);
    const value = rec.subarray(eq + 1);
    switch (key) {
      case "path":
        pax.path = decodeName(value);
        break;
      case "linkpath":
        pax.linkpath = decodeName(value);
        break;
      case "size":
        pax.size = parseDecimal(value.toString("latin1"), "size");
        break;
      case "uid":
        pax.uid = parseDecimal(value.toString("latin1"), "uid");
        break;
      case "gid":
        pax.gid = parseDecimal(value.toString("latin1"), "gid");
        break;
      case "mtime":
        pax.mtime = parseDecimal(value.toString("latin1"), "mtime", true);
        break;
      default:
        if (key.startsWith("SCHILY.xattr.")) {
          pax.xattrs ??= new Map();
          pax.xattrs.set(key.slice("SCHILY.xattr.".length), Buffer.from(value));
        } else if (key.startsWith("GNU.sparse.")) {
          throw notImplemented("Sparse tar entries are not supported");
        }
    }
    i = end;
  }
  return pax;
}

type State = "header" | "data" | "skip" | "ext" | "end";

/**
 * Push-based tar decoder: feed decompressed bytes with `push`, then call `end`. Entries go to
 * the sink synchronously. Throws `BerthError` (InvalidArgument) on malformed input: a bad
 * checksum, an oversized extension record, a name over the limit, data after the
 * end-of-archive marker, or a stream that stops inside an entry.
 */
export class TarReader {
  #sink: TarSink;
  #limits: TarLimits;
  #state: State = "header";
  #hdr = Buffer.alloc(BLOCK);
  #hdrFill = 0;
  #remaining = 0;
  #pad = 0;
  #ext: Buffer = Buffer.alloc(0);
  #extFill = 0;
  #extType = "";
  #pax: Pax | undefined;
  #longName: string | undefined;
  #longLink: string | undefined;
  #sawHeader = false;
  /** Entries delivered so far. */
  entries = 0;

  constructor(sink: TarSink, limits: Partial<TarLimits> = {}) {
    this.#sink = sink;
    this.#limits = { ...DEFAULT_LIMITS, ...limits };
  }

  push(chunk: Buffer): void {
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      switch (this.#state) {
        case "header": {
          if (this.#hdrFill === 0 && len - off >= BLOCK) {
            const block = chunk.subarray(off, off + BLOCK);
            off += BLOCK;
            this.#header(block);
          } else {
            const n = Math.min(BLOCK - this.#hdrFill, len - off);
            chunk.copy(this.#hdr, this.#hdrFill, off, off + n);
            this.#hdrFill += n;
            off += n;
            if (this.#hdrFill === BLOCK) {
              this.#hdrFill = 0;
              this.#header(this.#hdr);
            }
          }
          break;
        }
        case "data": {
          const n = Math.min(this.#remaining, len - off);
          this.#sink.data(chunk.subarray(off, off + n));
          off += n;
          this.#remaining -= n;
          if (this.#remaining === 0) {
            this.#sink.entryEnd();
            this.#state = this.#pad ? "skip" : "header";
            this.#remaining = this.#pad;
          }
          break;
        }
        case "skip": {
          const n = Math.min(this.#remaining, len - off);
          off += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = "header";
          break;
        }
        case "ext": {
          const n = Math.min(this.#ext.length - this.#extFill, len - off);
          chunk.copy(this.#ext, this.#extFill, off, off + n);
          this.#extFill += n;
          off += n;
          if (this.#extFill === this.#ext.length) {
            this.#extension();
            this.#remaining = this.#pad;
            this.#state = this.#pad ? "skip" : "header";
          }
          break;
        }
        case "end": {
          // Everything after the end-of-archive block must be zero padding.
          if (!isZero(chunk.subarray(off))) throw invalidArgument("Invalid tar archive: data after the end-of-archive marker");
          off = len;
          break;
        }
      }
    }
  }

  /** Declares the input complete; throws if it stopped inside an entry or a header. */
  end(): void {
    if (this.#state === "end") return;
    if (this.#state === "header" && this.#hdrFill === 0 && !this.#sawHeader) return; // empty stream: an empty layer
    if (this.#state === "header" && this.#hdrFill === 0) {
      if (this.#pax || this.#longName !== undefined || this.#longLink !== undefined) {
        throw invalidArgument("Invalid tar archive: truncated (extension header without entry)");
      }
      throw invalidArgument("Invalid tar archive: truncated (no end-of-archive marker)");
    }
    throw invalidArgument("Invalid tar archive: truncated");
  }

  #header(block: Buffer): void {
    if (isZero(block)) {
      if (this.#pax || this.#longName !== undefined || this.#longLink !== undefined) {
        throw invalidArgument("Invalid tar archive: extension header without entry");
      }
      this.#state = "end";
      return;
    }
    if (!checksumOk(block)) {
      throw invalidArgument(this.#sawHeader ? "Invalid tar header: checksum mismatch" : "Not a tar archive: the first header is invalid");
    }
    this.#sawHeader = true;
    const flag = block[156]!;
    const size = num(block, 124, 12, "size");
    const typeChar = flag === 0 ? "0" : String.fromCharCode(flag);
    switch (typeChar) {
      case "x":
      case "g":
      case "L":
      case "K": {
        const max = typeChar === "L" || typeChar === "K" ? this.#limits.maxNameLength + 1 : this.#limits.maxHeaderSize;
        if (size > max) {
          throw invalidArgument(
            typeChar === "L" || typeChar === "K"
              ? `Invalid tar archive: name longer than ${this.#limits.maxNameLength} bytes`
              : `Invalid tar archive: PAX header of ${size} bytes exceeds the limit of ${max}`,
          );
        }
        this.#extType = typeChar;
        this.#ext = Buffer.alloc(size);
        this.#extFill = 0;
        this.#pad = (BLOCK - (size % BLOCK)) % BLOCK;
        if (size === 0) {
          this.#extension();
          this.#remaining = 0;
          this.#state = "header";
        } else this.#state = "ext";
        return;
      }
      case "S":
        throw notImplemented("Sparse tar entries are not supported");
    }
    const magic = block.toString("latin1", 257, 263);
    let name = decodeName(field(block, 0, 100));
    if (magic === "ustar\0") {
      const prefix = field(block, 345, 155);
      if (prefix.length) name = `${decodeName(prefix)}/${name}`;
    }
    let type: EntryType;
    switch (typeChar) {
      case "0":
      case "7":
        type = name.endsWith("/") && flag === 0 ? "dir" : "file";
        break;
      case "1":
        type = "link";
        break;
      case "2":
        type = "symlink";
        break;
      case "3":
        type = "char";
        break;
      case "4":
        type = "block";
        break;
      case "5":
      case "D":
        type = "dir";
        break;
      case "6":
        type = "fifo";
        break;
      default:
        throw invalidArgument(
          `Invalid tar archive: unsupported entry type "${typeChar.replace(/[^\x20-\x7e]/g, "?")}" for "${name.slice(0, 200)}"`,
        );
    }
    const h: TarHeader = {
      name,
      type,
      mode: num(block, 100, 8, "mode") & 0o7777,
      uid: num(block, 108, 8, "uid"),
      gid: num(block, 116, 8, "gid"),
      size,
      mtime: num(block, 136, 12, "mtime"),
      linkname: decodeName(field(block, 157, 100)),
      devmajor: type === "char" || type === "block" ? num(block, 329, 8, "devmajor") : 0,
      devminor: type === "char" || type === "block" ? num(block, 337, 8, "devminor") : 0,
      xattrs: undefined,
    };
    if (this.#longName !== undefined) h.name = this.#longName;
    if (this.#longLink !== undefined) h.linkname = this.#longLink;
    const pax = this.#pax;
    if (pax) {
      if (pax.path !== undefined) h.name = pax.path;
      if (pax.linkpath !== undefined) h.linkname = pax.linkpath;
      if (pax.size !== undefined) h.size = pax.size;
      if (pax.uid !== undefined) h.uid = pax.uid;
      if (pax.gid !== undefined) h.gid = pax.gid;
      if (pax.mtime !== undefined) h.mtime = pax.mtime;
      h.xattrs = pax.xattrs;
    }
    this.#pax = undefined;
    this.#longName = undefined;
    this.#longLink = undefined;
    if (Buffer.byteLength(h.name) > this.#limits.maxNameLength || Buffer.byteLength(h.linkname) > this.#limits.maxNameLength) {
      throw invalidArgument(`Invalid tar archive: name "${h.name.slice(0, 100)}..." is longer than ${this.#limits.maxNameLength} bytes`);
    }
    if (h.name.includes("\0") || h.linkname.includes("\0")) throw invalidArgument("Invalid tar archive: name contains a NUL byte");
    if (h.uid > 0xffffffff || h.gid > 0xffffffff) throw invalidArgument(`Invalid tar header: uid or gid out of range for "${h.name}"`);
    if (++this.entries > this.#limits.maxEntries) {
      throw invalidArgument(`Invalid tar archive: more than ${this.#limits.maxEntries} entries`);
    }
    // Like Go's archive/tar, only regular files carry data; a size on a link or directory header is ignored.
    const dataSize = type === "file" ? h.size : 0;
    if (type !== "file") h.size = 0;
    this.#sink.entry(h);
    // A GNU dump-directory entry ('D') carries a listing we do not need; skip its bytes.
    const skipBytes = typeChar === "D" ? size : 0;
    if (dataSize > 0) {
      this.#remaining = dataSize;
      this.#pad = (BLOCK - (dataSize % BLOCK)) % BLOCK;
      this.#state = "data";
    } else {
      this.#sink.entryEnd();
      const total = skipBytes + ((BLOCK - (skipBytes % BLOCK)) % BLOCK);
      this.#remaining = total;
      this.#state = total ? "skip" : "header";
    }
  }

  #extension(): void {
    const buf = this.#ext;
    this.#ext = Buffer.alloc(0);
    switch (this.#extType) {
      case "x":
        this.#pax = parsePax(buf);
        break;
      case "g":
        // Global PAX headers (git archive's comment) are ignored, as Docker does.
        parsePax(buf);
        break;
      case "L":
        this.#longName = decodeName(field(buf, 0, buf.length));
        break;
      case "K":
        this.#longLink = decodeName(field(buf, 0, buf.length));
        break;
    }
  }
}

// ---------------------------------------------------------------- writing

/** What `encodeHeader` writes for one entry. */
export interface HeaderSpec {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Whole seconds. */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

const TYPE_FLAG: Record<EntryType, string> = { file: "0", link: "1", symlink: "2", char: "3", block: "4", dir: "5", fifo: "6" };

function writeString(block: Buffer, s: Buffer, start: number, len: number): void {
  s.copy(block, start, 0, Math.min(s.length, len));
}

function writeOctal(block: Buffer, v: number, start: number, len: number): boolean {
  const max = 8 ** (len - 1) - 1;
  if (v < 0 || v > max || !Number.isInteger(v)) return false;
  block.write(v.toString(8).padStart(len - 1, "0"), start, len - 1, "latin1");
  block[start + len - 1] = 0;
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, "utf8"), value, Buffer.from("\n")]);
  // The length prefix counts itself: find the fixed point.
  let n = body.length + 1;
  while (String(n).length + body.length !== n) n = String(n).length + body.length;
  return Buffer.concat([Buffer.from(String(n), "latin1"), body]);
}

function rawHeader(spec: HeaderSpec, name: Buffer, prefix: Buffer | undefined, link: Buffer, flag: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  writeString(b, name, 0, 100);
  writeOctal(b, spec.mode & 0o7777, 100, 8);
  writeOctal(b, spec.uid, 108, 8) || writeOctal(b, 0, 108, 8);
  writeOctal(b, spec.gid, 116, 8) || writeOctal(b, 0, 116, 8);
  writeOctal(b, spec.size, 124, 12) || writeOctal(b, 0, 124, 12);
  writeOctal(b, spec.mtime, 136, 12) || writeOctal(b, 0, 136, 12);
  b.write(flag, 156, 1, "latin1");
  writeString(b, link, 157, 100);
  b.write("ustar\x0000", 257, 8, "latin1");
  writeOctal(b, spec.devmajor ?? 0, 329, 8);
  writeOctal(b, spec.devminor ?? 0, 337, 8);
  if (prefix) writeString(b, prefix, 345, 155);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, "0"), 148, 6, "latin1");
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

/** Splits a long name into USTAR prefix and name at a slash, if it fits. */
function splitUstar(name: Buffer): [Buffer, Buffer] | undefined {
  if (name.length <= 100) return [Buffer.alloc(0), name];
  if (name.length > 256) return undefined;
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== 0x2f) continue;
    if (i <= 155 && name.length - i - 1 <= 100 && name.length - i - 1 > 0) return [name.subarray(0, i), name.subarray(i + 1)];
    if (i < name.length - 101) break;
  }
  return undefined;
}

/**
 * Encodes the header blocks for one entry: USTAR when everything fits, preceded by a PAX
 * extended header for long names, large numbers and extended attributes. Deterministic.
 */
export function encodeHeader(spec: HeaderSpec): Buffer {
  const name = Buffer.from(spec.name, "utf8");
  const link = Buffer.from(spec.linkname ?? "", "utf8");
  const records: Buffer[] = [];
  let split = splitUstar(name);
  if (!split) {
    records.push(paxRecord("path", name));
    split = [Buffer.alloc(0), name.subarray(0, 100)];
  }
  if (link.length > 100) records.push(paxRecord("linkpath", link));
  if (spec.uid > 0o7777777) records.push(paxRecord("uid", Buffer.from(String(spec.uid))));
  if (spec.gid > 0o7777777) records.push(paxRecord("gid", Buffer.from(String(spec.gid))));
  if (spec.size > 0o77777777777) records.push(paxRecord("size", Buffer.from(String(spec.size))));
  if (spec.mtime < 0 || spec.mtime > 0o77777777777) records.push(paxRecord("mtime", Buffer.from(String(spec.mtime))));
  if (spec.xattrs) {
    for (const [k, v] of [...spec.xattrs].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
      records.push(paxRecord(`SCHILY.xattr.${k}`, v));
    }
  }
  const main = rawHeader(spec, split[1], split[0].length ? split[0] : undefined, link, TYPE_FLAG[spec.type]);
  if (!records.length) return main;
  const body = Buffer.concat(records);
  const base = spec.name.replace(/\/+$/, "").split("/").pop() ?? "";
  const paxName = Buffer.from(`PaxHeaders/${base}`.slice(0, 99), "utf8").subarray(0, 99);
  const paxHdr = rawHeader(
    { name: "", type: "file", mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0 },
    paxName,
    undefined,
    Buffer.alloc(0),
    "x",
  );
  const pad = Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK);
  return Buffer.concat([paxHdr, body, pad, main]);
}

/** Zero padding after `size` bytes of file data. */
export function padding(size: number): Buffer {
  const n = (BLOCK - (size % BLOCK)) % BLOCK;
  return n ? ZEROS.subarray(0, n) : ZEROS.subarray(0, 0);
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
