/**
 * `.dockerignore` files and their pattern semantics (those of moby/patternmatcher, which the
 * docker CLI and dockerd use): patterns are cleaned paths relative to the context root, `*`
 * and `?` stop at `/`, `**` spans any number of directories, `[...]` classes and `\` escapes
 * work as in Go's filepath.Match, `!pattern` re-includes, the last matching pattern wins, and a
 * path is excluded when it or one of its parent directories matches.
 */
import { posix } from "node:path";
import { invalidArgument } from "../base/mod.ts";

/** Reads a `.dockerignore`: comments (`#` at the start), blank lines, leading `/` and `./` dropped. */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  let first = true;
  for (let line of text.split("\n")) {
    if (first && line.startsWith("\uFEFF")) line = line.slice(1);
    first = false;
    if (line.startsWith("#")) continue;
    let p = line.trim();
    if (p === "") continue;
    const invert = p.startsWith("!");
    if (invert) p = p.slice(1).trim();
    if (p.length > 0) {
      p = cleanPath(p);
      if (p.length > 1 && p.startsWith("/")) p = p.slice(1);
    }
    out.push(invert ? `!${p}` : p);
  }
  return out;
}

/** Go's path.Clean. */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

interface Pattern {
  exclusion: boolean;
  re: RegExp;
  text: string;
}

function compile(pattern: string): RegExp {
  let re = "^";
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] ?? "";
    if (ch === "*") {
      if (chars[i + 1] === "*") {
        i++;
        if (chars[i + 1] === "/") i++;
        if (i + 1 >= chars.length) re += ".*";
        else re += "(.*/)?";
      } else re += "[^/]*";
    } else if (ch === "?") re += "[^/]";
    else if (".+()|{}$^".includes(ch)) re += `\\${ch}`;
    else if (ch === "\\") {
      if (i + 1 < chars.length) {
        const n = chars[++i] ?? "";
        re += /[A-Za-z0-9]/.test(n) ? n : `\\${n}`;
      } else re += "\\\\";
    } else if (ch === "[") {
      // A filepath.Match class: `[!...]` negates like `[^...]`.
      let j = i + 1;
      let cls = "[";
      if (chars[j] === "!" || chars[j] === "^") {
        cls += "^";
        j++;
      }
      let closed = false;
      for (; j < chars.length; j++) {
        const c = chars[j] ?? "";
        if (c === "]" && cls.length > 1 && cls !== "[^") {
          closed = true;
          break;
        }
        if (c === "\\" && j + 1 < chars.length) {
          cls += `\\${chars[++j]}`;
          continue;
        }
        cls += c === "/" ? "" : c;
      }
      if (!closed) throw invalidArgument(`Invalid .dockerignore pattern "${pattern}": syntax error in pattern`);
      re += `${cls}]`;
      i = j;
    } else re += ch;
  }
  return new RegExp(`${re}$`, "su");
}

/**
 * Matches context paths (slash-separated, relative to the context root) against ignore
 * patterns. `matches` is patternmatcher's MatchesOrParentMatches.
 */
export class PatternMatcher {
  readonly #patterns: Pattern[] = [];
  /** Whether any `!` pattern exists (then excluded directories must still be walked). */
  readonly hasExclusions: boolean;

  constructor(patterns: readonly string[]) {
    for (const raw of patterns) {
      let p = raw.trim();
      if (p === "") continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith("!")) {
        if (p.length === 1) throw invalidArgument('Invalid .dockerignore pattern "!": illegal exclusion pattern');
        exclusion = true;
        p = p.slice(1);
      }
      this.#patterns.push({ exclusion, re: compile(p), text: p });
    }
    this.hasExclusions = this.#patterns.some((p) => p.exclusion);
  }

  get empty(): boolean {
    return this.#patterns.length === 0;
  }

  /** Whether `path` (or a parent directory of it) is excluded. */
  matches(path: string): boolean {
    const file = cleanPath(path.replace(/^\/+/, ""));
    const dir = posix.dirname(file);
    const parents = dir === "." ? [] : dir.split("/");
    let matched = false;
    for (const p of this.#patterns) {
      if (p.exclusion !== matched) continue;
      let m = p.re.test(file);
      if (!m) {
        for (let i = 0; i < parents.length && !m; i++) m = p.re.test(parents.slice(0, i + 1).join("/"));
      }
      if (m) matched = !p.exclusion;
    }
    return matched;
  }
}
