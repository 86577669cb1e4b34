/**
 * Elastic tabstops as Go's text/tabwriter (docker's copy of it) computes them: text is cut into
 * cells ended by '\t' (or '\v'); tab-terminated cells in consecutive lines form a column whose
 * width is the widest cell plus padding (at least `minWidth`); the text after the last tab of a
 * line is not part of any column and is not padded. A line without tabs ends a block of columns.
 * Widths count terminal columns (East Asian wide characters count two), as docker does.
 */

/** Options of a TabWriter; the defaults are docker's table settings (10, 1, 3, ' '). */
export interface TabWriterOptions {
  /** Minimal cell width including padding. Default 10. */
  minWidth?: number;
  /** Width of a tab character when padding with tabs. Default 1. */
  tabWidth?: number;
  /** Padding added to the widest cell of a column. Default 3. */
  padding?: number;
  /** Padding character; '\t' pads with tabs. Default ' '. */
  padChar?: string;
  /** Right-align cell contents. */
  alignRight?: boolean;
  /** Drop columns whose cells are all empty and '\v'-terminated. */
  discardEmptyColumns?: boolean;
  /** Print '|' between columns. */
  debug?: boolean;
}

interface Cell {
  text: string;
  width: number;
  htab: boolean;
}

/** Terminal width of a string: combining marks and zero-width characters 0, wide CJK/emoji 2. */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) continue;
    if (cp < 0x300) {
      w++;
      continue;
    }
    if (/\p{Mn}|\p{Me}|\p{Cf}/u.test(ch)) continue;
    w += isWide(cp) ? 2 : 1;
  }
  return w;
}

function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}

/**
 * Aligns tab-separated text into columns. Write any amount of text, then `flush()` returns the
 * aligned output (everything written since the previous flush).
 *
 * ```ts
 * const tw = new TabWriter();
 * tw.write("NAME\tSTATUS\nweb\tUp 2 minutes\n");
 * tw.flush(); // "NAME      STATUS\nweb       Up 2 minutes\n"
 * ```
 */
export class TabWriter {
  #minWidth: number;
  #tabWidth: number;
  #padding: number;
  #padChar: string;
  #alignRight: boolean;
  #discardEmpty: boolean;
  #debug: boolean;
  #out: string[] = [];
  #lines: Cell[][] = [[]];
  #cell = "";
  #widths: number[] = [];

  constructor(options?: TabWriterOptions) {
    this.#minWidth = options?.minWidth ?? 10;
    this.#tabWidth = options?.tabWidth ?? 1;
    this.#padding = options?.padding ?? 3;
    this.#padChar = options?.padChar ?? " ";
    if (this.#minWidth < 0 || this.#tabWidth < 0 || this.#padding < 0) throw new RangeError("Negative minWidth, tabWidth or padding");
    // Tab padding forces left alignment, as in Go.
    this.#alignRight = (options?.alignRight ?? false) && this.#padChar !== "\t";
    this.#discardEmpty = options?.discardEmptyColumns ?? false;
    this.#debug = options?.debug ?? false;
  }

  /** Buffers text; complete blocks (ended by a line without tabs, or '\f') are formatted right away. */
  write(text: string): void {
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (ch !== "\t" && ch !== "\v" && ch !== "\n" && ch !== "\f") continue;
      this.#cell += text.slice(start, i);
      start = i + 1;
      const ncells = this.#terminateCell(ch === "\t");
      if (ch === "\n" || ch === "\f") {
        this.#lines.push([]);
        // A line with a single cell cannot affect later columns: format what we have.
        if (ch === "\f" || ncells === 1) {
          this.#flushBuffered();
          if (ch === "\f" && this.#debug) this.#out.push("---\n");
        }
      }
    }
    this.#cell += text.slice(start);
  }

  /** Formats all buffered text and returns the output produced since the last flush. */
  flush(): string {
    this.#flushBuffered();
    const s = this.#out.join("");
    this.#out = [];
    return s;
  }

  #terminateCell(htab: boolean): number {
    const line = this.#lines[this.#lines.length - 1]!;
    line.push({ text: this.#cell, width: displayWidth(this.#cell), htab });
    this.#cell = "";
    return line.length;
  }

  #flushBuffered(): void {
    if (this.#cell.length > 0) this.#terminateCell(false);
    this.#format(0, this.#lines.length);
    this.#lines = [[]];
    this.#cell = "";
    this.#widths = [];
  }

  #format(line0: number, line1: number): void {
    const column = this.#widths.length;
    for (let t = line0; t < line1; t++) {
      if (column >= this.#lines[t]!.length - 1) continue;
      // This line has a cell in this column: it starts a block of lines sharing the column.
      this.#writeLines(line0, t);
      line0 = t;
      let width = this.#minWidth;
      let discardable = true;
      for (; t < line1; t++) {
        const line = this.#lines[t]!;
        if (column >= line.length - 1) break;
        const c = line[column]!;
        width = Math.max(width, c.width + this.#padding);
        if (c.width > 0 || c.htab) discardable = false;
      }
      if (discardable && this.#discardEmpty) width = 0;
      this.#widths.push(width);
      this.#format(line0, t);
      this.#widths.pop();
      line0 = t;
    }
    this.#writeLines(line0, line1);
  }

  #padding_(textWidth: number, cellWidth: number, useTabs: boolean): string {
    if (this.#padChar === "\t" || useTabs) {
      if (this.#tabWidth === 0) return "";
      const cw = Math.ceil(cellWidth / this.#tabWidth) * this.#tabWidth;
      return "\t".repeat(Math.ceil((cw - textWidth) / this.#tabWidth));
    }
    return this.#padChar.repeat(Math.max(0, cellWidth - textWidth));
  }

  #writeLines(line0: number, line1: number): void {
    for (let i = line0; i < line1; i++) {
      const line = this.#lines[i]!;
      line.forEach((c, j) => {
        if (j > 0 && this.#debug) this.#out.push("|");
        const w = this.#widths[j];
        if (c.text.length === 0) {
          if (w !== undefined) this.#out.push(this.#padding_(c.width, w, false));
        } else if (!this.#alignRight) {
          this.#out.push(c.text);
          if (w !== undefined) this.#out.push(this.#padding_(c.width, w, false));
        } else {
          if (w !== undefined) this.#out.push(this.#padding_(c.width, w, false));
          this.#out.push(c.text);
        }
      });
      // The last buffered line has no newline yet; everything else does.
      if (i + 1 === this.#lines.length) this.#out.push(this.#cell);
      else this.#out.push("\n");
    }
  }
}

/** Aligns a whole tab-separated text with docker's table settings (or the given ones). */
export function tabulate(text: string, options?: TabWriterOptions): string {
  const tw = new TabWriter(options);
  tw.write(text);
  return tw.flush();
}
