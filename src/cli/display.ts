/** Small text helpers of docker's formatter package. */
import { displayWidth } from "./format/mod.ts";

/** docker's formatter.Ellipsis: cuts to `max` display columns, ending with "…". */
export function ellipsis(s: string, max: number): string {
  if (max <= 0) return "";
  const chars = [...s];
  if (max === 1) return chars[0] ?? "";
  if (Buffer.byteLength(s) === chars.length) {
    return chars.length <= max ? s : `${chars.slice(0, max - 1).join("")}…`;
  }
  if (displayWidth(s) <= max) return s;
  let w = 0;
  let out = "";
  for (const c of chars) {
    const cw = displayWidth(c);
    if (w + cw > max - 1) break;
    w += cw;
    out += c;
  }
  return `${out}…`;
}

/** Go's strconv.Quote for the strings docker quotes (COMMAND column). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (cp === 7) out += "\\a";
    else if (cp === 8) out += "\\b";
    else if (cp === 12) out += "\\f";
    else if (cp === 11) out += "\\v";
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}
