/**
 * Human-readable sizes and durations exactly as the docker CLI prints them (docker/go-units):
 * decimal sizes with Go's `%g` formatting (`4.26MB`, `1e+03kB`), binary sizes (`1.5GiB`),
 * and `HumanDuration` phrases (`About an hour`, `2 days`).
 */

const DECIMAL_ABBRS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_ABBRS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/** Go's `%.<prec>g` formatting of a float. */
export function formatG(value: number, prec: number): string {
  if (value === 0) return "0";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : value < 0 ? "-Inf" : "NaN";
  const p = Math.max(prec, 1);
  // Round first: 999.9 at 3 digits becomes 1.00e+3, whose exponent decides the notation.
  const [mant, e] = value.toExponential(p - 1).split("e") as [string, string];
  const x = Number(e);
  if (x < -4 || x >= p) {
    const m = stripZeros(mant);
    const sign = x < 0 ? "-" : "+";
    const digits = String(Math.abs(x)).padStart(2, "0");
    return `${m}e${sign}${digits}`;
  }
  return stripZeros(value.toFixed(Math.max(0, p - 1 - x)));
}

function stripZeros(s: string): string {
  if (!s.includes(".")) return s;
  return s.replace(/0+$/, "").replace(/\.$/, "");
}

function sizeAndUnit(size: number, base: number, abbrs: string[]): [number, string] {
  let i = 0;
  while (size >= base && i < abbrs.length - 1) {
    size /= base;
    i++;
  }
  return [size, abbrs[i] as string];
}

/** go-units HumanSizeWithPrecision: decimal units, `prec` significant digits. */
export function humanSizeWithPrecision(size: number, prec: number): string {
  const [v, unit] = sizeAndUnit(size, 1000, DECIMAL_ABBRS);
  return `${formatG(v, prec)}${unit}`;
}

/** go-units HumanSize: decimal units, 4 significant digits (`4.262MB`). */
export function humanSize(size: number): string {
  return humanSizeWithPrecision(size, 4);
}

/** go-units BytesSize: binary units, 4 significant digits (`1.5GiB`). */
export function bytesSize(size: number): string {
  const [v, unit] = sizeAndUnit(size, 1024, BINARY_ABBRS);
  return `${formatG(v, 4)}${unit}`;
}

/** go-units HumanDuration of a span in milliseconds. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.trunc(ms / 3_600_000 + 0.5);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3_600_000 / 24 / 365)} years`;
}

/** `HumanDuration(now - t) + " ago"` for a unix time in seconds. */
export function timeAgo(unixSeconds: number, now = Date.now()): string {
  return `${humanDuration(now - unixSeconds * 1000)} ago`;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

function zoneName(d: Date): string {
  try {
    const parts = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" }).formatToParts(d);
    const z = parts.find((p) => p.type === "timeZoneName")?.value ?? "";
    if (z === "GMT" || z === "UTC") return "UTC";
    return z;
  } catch {
    return "";
  }
}

/** Go's `time.Time.String()` in local time: `2024-05-01 10:00:00 +0200 CEST`. */
export function goTimeString(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? "-" : "+";
  const a = Math.abs(off);
  const zone = zoneName(d);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ` +
    `${sign}${pad(Math.trunc(a / 60))}${pad(a % 60)}${zone ? ` ${zone}` : ""}`
  );
}

/** RFC 3339 with nanoseconds padded to 9 digits, in local time (docker's RFC3339NanoFixed). */
export function rfc3339NanoFixed(unixNanos: bigint): string {
  const ms = Number(unixNanos / 1_000_000n);
  const nanos = Number(unixNanos % 1_000_000_000n);
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? "Z" : `${off < 0 ? "-" : "+"}${pad(Math.trunc(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(nanos, 9)}${zone}`;
}

/** RFC 3339 in local time without fractions (`2024-05-01T10:00:00+02:00`), as `docker history --human=false` prints. */
export function rfc3339(d: Date): string {
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? "Z" : `${off < 0 ? "-" : "+"}${pad(Math.trunc(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${zone}`;
}

/**
 * Converts docker's `--since`/`--until` values to the API's form: RFC 3339 dates and
 * durations relative to now (`10m`) become unix seconds with fractions (docker's GetTimestamp).
 */
export function apiTimestamp(value: string, now = Date.now()): string {
  if (/^\d+(\.\d+)?$/.test(value)) return value;
  const d = parseRelative(value);
  if (d !== undefined) {
    // Integer arithmetic: seconds and nanoseconds, as docker's GetTimestamp prints them.
    const ns = BigInt(now) * 1_000_000n - BigInt(Math.round(d * 1e6));
    const sec = ns / 1_000_000_000n;
    const frac = (ns % 1_000_000_000n).toString().padStart(9, "0");
    return `${sec}.${frac}`;
  }
  // RFC 3339 and the date-only forms docker accepts; no zone means local time.
  const hasZone = /(Z|[+-]\d\d:?\d\d)$/i.test(value);
  let text = value;
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) text += "T00:00:00";
  const parsed = Date.parse(hasZone ? text : text);
  if (Number.isNaN(parsed)) return value;
  const secs = parsed / 1000;
  return Number.isInteger(secs) ? `${secs}.000000000` : secs.toFixed(9);
}

function parseRelative(s: string): number | undefined {
  const re = /^([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/;
  let rest = s;
  let total = 0;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (rest === "") return undefined;
  while (rest.length > 0) {
    const m = re.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * (units[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return total;
}
