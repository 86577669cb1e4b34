import { isIP } from "node:net";
import { invalidArgument } from "../base/mod.ts";

/**
 * An IP prefix (`10.90.3.0/24`, `fd00:1::/64`) as numbers, for subnet arithmetic: overlap
 * checks, pool carving, gateway defaults. Addresses are bigints so that v4 and v6 share code.
 */
export interface Cidr {
  family: 4 | 6;
  /** The address as written (may have host bits set, as in `bip` `10.87.0.1/16`). */
  addr: bigint;
  prefix: number;
}

const bits = (f: 4 | 6) => (f === 4 ? 32 : 128);

/** Parses an IPv4 or IPv6 address to a bigint; throws InvalidArgument. */
export function parseIp(s: string): { family: 4 | 6; value: bigint } {
  const fam = isIP(s);
  if (fam === 4) {
    const v = s.split(".").reduce((a, p) => (a << 8n) | BigInt(Number(p)), 0n);
    return { family: 4, value: v };
  }
  if (fam === 6) {
    let str = s;
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
    const m = /(\d+\.\d+\.\d+\.\d+)$/.exec(str);
    if (m?.[1]) {
      const v4 = parseIp(m[1]).value;
      str = `${str.slice(0, m.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
    }
    const [head = "", tail] = str.split("::");
    const h = head ? head.split(":") : [];
    const t = tail ? tail.split(":") : [];
    const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
    const v = groups.reduce((a, g) => (a << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
    return { family: 6, value: v };
  }
  throw invalidArgument(`invalid IP address: "${s}"`);
}

/** Formats a bigint address (RFC 5952 for v6). */
export function formatIp(family: 4 | 6, v: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join(".");
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  // Longest run of zero groups (length ≥ 2) becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** Parses `a.b.c.d/n` or `v6/n`; `strict` rejects host bits (subnets), `bip` allows them. */
export function parseCidr(s: string, options: { strict?: boolean } = {}): Cidr {
  const i = s.indexOf("/");
  if (i < 0) throw invalidArgument(`invalid CIDR address: ${s}`);
  const ip = parseIp(s.slice(0, i));
  const p = s.slice(i + 1);
  const prefix = Number(p);
  if (!/^\d{1,3}$/.test(p) || prefix > bits(ip.family)) throw invalidArgument(`invalid CIDR address: ${s}`);
  const c: Cidr = { family: ip.family, addr: ip.value, prefix };
  if (options.strict && network(c) !== c.addr) {
    throw invalidArgument(`invalid subnet ${s}: it should be ${formatCidr({ ...c, addr: network(c) })}`);
  }
  return c;
}

/** The mask of a prefix. */
function mask(c: { family: 4 | 6; prefix: number }): bigint {
  const b = BigInt(bits(c.family));
  return ((1n << b) - 1n) ^ ((1n << (b - BigInt(c.prefix))) - 1n);
}

/** The network address (host bits cleared). */
export function network(c: Cidr): bigint {
  return c.addr & mask(c);
}

/** The last address of the prefix. */
export function lastAddr(c: Cidr): bigint {
  return network(c) | (((1n << BigInt(bits(c.family))) - 1n) ^ mask(c));
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.family, c.addr)}/${c.prefix}`;
}

/** The subnet of a prefix, host bits cleared: `10.87.0.1/16` → `10.87.0.0/16`. */
export function subnetOf(c: Cidr): Cidr {
  return { ...c, addr: network(c) };
}

export function contains(c: Cidr, family: 4 | 6, v: bigint): boolean {
  return c.family === family && (v & mask(c)) === network(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const p = Math.min(a.prefix, b.prefix);
  const m = mask({ family: a.family, prefix: p });
  return (a.addr & m) === (b.addr & m);
}

/** The first usable host (network + 1), the usual gateway. */
export function firstHost(c: Cidr): bigint {
  return network(c) + 1n;
}

/**
 * Carves the subnets of `size` out of each pool in order and returns the first one that
 * overlaps none of `taken`; undefined when every pool is exhausted (Docker's error then).
 */
export function allocateSubnet(pools: readonly { base: string; size: number }[], taken: readonly Cidr[]): Cidr | undefined {
  for (const p of pools) {
    const base = subnetOf(parseCidr(p.base));
    if (p.size < base.prefix || p.size > bits(base.family)) throw invalidArgument(`Invalid address pool ${p.base} with size ${p.size}`);
    const step = 1n << BigInt(bits(base.family) - p.size);
    const end = lastAddr(base);
    // Bound the scan: a /8 carved into /24s is 65536 candidates, fine; v6 pools can be huge.
    let n = 0;
    for (let a = network(base); a <= end && n < 1 << 20; a += step, n++) {
      const cand: Cidr = { family: base.family, addr: a, prefix: p.size };
      if (!taken.some((t) => overlaps(t, cand))) return cand;
    }
  }
  return undefined;
}
