/**
 * A small pflag-style parser for `compose` commands: `--name value`, `--name=value`, `-n value`,
 * `-nvalue`, grouped boolean shorthands (`-dT`), `--` ends the flags, and optionally parsing
 * stops at the first positional (for `exec` and `run`, whose command follows the service).
 */

/** One flag of a command. */
export interface FlagDef {
  long: string;
  short?: string;
  kind: "bool" | "string" | "list" | "int";
  help: string;
  /** Hidden from help (accepted for compatibility). */
  hidden?: boolean;
}

/** Parsed flags. */
export class Flags {
  readonly values = new Map<string, string[]>();

  has(name: string): boolean {
    return this.values.has(name);
  }
  bool(name: string): boolean {
    const v = this.values.get(name)?.at(-1);
    return v !== undefined && v !== "false" && v !== "0";
  }
  string(name: string): string | undefined {
    return this.values.get(name)?.at(-1);
  }
  list(name: string): string[] {
    return this.values.get(name) ?? [];
  }
  int(name: string): number | undefined {
    const v = this.string(name);
    return v === undefined ? undefined : Number(v);
  }
}

/** A wrong flag or value; the message is what compose prints. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

/** Parses `argv` against `defs`; returns the flags and the positional arguments. */
export function parseFlags(
  argv: readonly string[],
  defs: readonly FlagDef[],
  options: { stopAtFirstPositional?: boolean } = {},
): { flags: Flags; args: string[]; help: boolean } {
  const flags = new Flags();
  const args: string[] = [];
  let help = false;
  const byLong = new Map(defs.map((d) => [d.long, d]));
  const byShort = new Map(defs.filter((d) => d.short).map((d) => [d.short as string, d]));
  const set = (d: FlagDef, v: string) => {
    if (d.kind === "int" && !/^-?\d+$/.test(v))
      throw new FlagError(`invalid argument "${v}" for "--${d.long}" flag: strconv.ParseInt: parsing "${v}": invalid syntax`);
    const prev = flags.values.get(d.long) ?? [];
    flags.values.set(d.long, d.kind === "list" ? [...prev, v] : [v]);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--") {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a === "--help" || a === "-h") {
      help = true;
      continue;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const d = byLong.get(name);
      if (!d) throw new FlagError(`unknown flag: --${name}`);
      if (d.kind === "bool") set(d, eq < 0 ? "true" : a.slice(eq + 1));
      else if (eq >= 0) set(d, a.slice(eq + 1));
      else {
        const v = argv[++i];
        if (v === undefined) throw new FlagError(`flag needs an argument: --${name}`);
        set(d, v);
      }
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j] as string;
        const d = byShort.get(c);
        if (!d) throw new FlagError(`unknown shorthand flag: '${c}' in ${a}`);
        if (d.kind === "bool") {
          if (a[j + 1] === "=") {
            set(d, a.slice(j + 2));
            break;
          }
          set(d, "true");
          continue;
        }
        let v = a.slice(j + 1);
        if (v.startsWith("=")) v = v.slice(1);
        if (v === "") {
          const next = argv[++i];
          if (next === undefined) throw new FlagError(`flag needs an argument: '${c}' in -${c}`);
          v = next;
        }
        set(d, v);
        break;
      }
      continue;
    }
    args.push(a);
    if (options.stopAtFirstPositional) {
      args.push(...argv.slice(i + 1));
      break;
    }
  }
  return { flags, args, help };
}

/** The flag list of a help text. */
export function flagHelp(defs: readonly FlagDef[]): string {
  const rows = defs
    .filter((d) => !d.hidden)
    .map((d) => {
      const left = `${d.short ? `-${d.short}, ` : "    "}--${d.long}${d.kind === "bool" ? "" : d.kind === "list" ? " stringArray" : d.kind === "int" ? " int" : " string"}`;
      return [left, d.help] as const;
    });
  const w = Math.max(0, ...rows.map((r) => r[0].length));
  return rows.map(([l, h]) => `  ${l.padEnd(w)}   ${h}`).join("\n");
}
