import dgram from "node:dgram";
import net from "node:net";
import type { Logger } from "../base/mod.ts";
import { messageOf } from "../base/mod.ts";
import { formatIp, parseIp } from "./ipnet.ts";

export const QTYPE = { A: 1, PTR: 12, AAAA: 28, ANY: 255 } as const;
export const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** A parsed DNS query (first question only, as every stub resolver sends). */
export interface DnsQuery {
  id: number;
  flags: number;
  name: string;
  qtype: number;
  qclass: number;
  /** Bytes of the question section, echoed in the answer. */
  question: Buffer;
}

/** Parses a query; undefined for anything malformed or not a standard query. */
export function parseQuery(msg: Buffer): DnsQuery | undefined {
  if (msg.length < 12) return undefined;
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  const qd = msg.readUInt16BE(4);
  if (flags & 0x8000 || qd < 1) return undefined;
  const labels: string[] = [];
  let off = 12;
  for (let n = 0; ; n++) {
    if (off >= msg.length || n > 127) return undefined;
    const len = msg[off] ?? 0;
    if (len === 0) {
      off++;
      break;
    }
    // Compression pointers make no sense in a single question; refuse them.
    if (len & 0xc0) return undefined;
    if (off + 1 + len > msg.length) return undefined;
    labels.push(msg.subarray(off + 1, off + 1 + len).toString("latin1"));
    off += 1 + len;
  }
  if (off + 4 > msg.length) return undefined;
  const qtype = msg.readUInt16BE(off);
  const qclass = msg.readUInt16BE(off + 2);
  return { id, flags, name: labels.join(".").toLowerCase(), qtype, qclass, question: msg.subarray(12, off + 4) };
}

function encodeName(name: string): Buffer {
  const parts = name.split(".").filter(Boolean);
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, "latin1")])), Buffer.from([0])]);
}

/** One answer record. */
export type DnsAnswer = { type: 1 | 28; address: string } | { type: 12; target: string };

/** Builds a response to `q` with `answers` (name compressed to the question). */
export function buildResponse(q: DnsQuery, rcode: number, answers: readonly DnsAnswer[], ttl = 600): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(q.id, 0);
  // QR, opcode copied, AA, RD copied, RA.
  h.writeUInt16BE(0x8000 | (q.flags & 0x7800) | 0x0400 | (q.flags & 0x0100) | 0x0080 | (rcode & 0xf), 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(answers.length, 6);
  const rrs: Buffer[] = [];
  for (const a of answers) {
    const rdata =
      a.type === 12
        ? encodeName(a.target)
        : (() => {
            const ip = parseIp(a.address);
            const b = Buffer.alloc(ip.family === 4 ? 4 : 16);
            let v = ip.value;
            for (let i = b.length - 1; i >= 0; i--) {
              b[i] = Number(v & 0xffn);
              v >>= 8n;
            }
            return b;
          })();
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
    rr.writeUInt16BE(a.type, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(rdata.length, 10);
    rrs.push(rr, rdata);
  }
  return Buffer.concat([h, q.question, ...rrs]);
}

/** Builds a query (tests and health checks). */
export function buildQuery(id: number, name: string, qtype: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([h, encodeName(name), tail]);
}

/** The reverse name of an address: `4.3.2.1.in-addr.arpa`, nibbles for v6. */
export function reverseName(ip: string): string {
  const p = parseIp(ip);
  if (p.family === 4) return `${formatIp(4, p.value).split(".").reverse().join(".")}.in-addr.arpa`;
  const hex = p.value.toString(16).padStart(32, "0");
  return `${[...hex].reverse().join(".")}.ip6.arpa`;
}

/** What the server asks berth for each query. */
export interface DnsResolver {
  /** Whether the client may use this server (it must be on the network). */
  allowed(clientIp: string): boolean;
  /** Addresses of a name on the network; undefined if the name is not berth's. */
  lookup(name: string, clientIp: string): { v4: string[]; v6: string[] } | undefined;
  /** The name of an address on the network (PTR). */
  reverse(name: string): string | undefined;
  /** Upstream servers for other names; empty means none (internal networks: no leak). */
  upstreams(clientIp: string): string[];
}

const FORWARD_TIMEOUT_MS = 2000;

/**
 * berthd's DNS server for one user-defined network, listening on UDP and TCP port 53 of the
 * network's gateway address(es). It answers container names, aliases, short IDs and hostnames
 * of that network from `DnsResolver` (live: every query asks), and forwards other names to the
 * host's resolvers. Clients outside the network's subnets are refused, so names never leak
 * across networks.
 */
export class DnsServer {
  #addresses: string[];
  #resolver: DnsResolver;
  #log: Logger;
  #udp: dgram.Socket[] = [];
  #tcp: net.Server[] = [];
  #port: number;

  constructor(addresses: string[], resolver: DnsResolver, log: Logger, port = 53) {
    this.#addresses = addresses;
    this.#resolver = resolver;
    this.#log = log;
    this.#port = port;
  }

  async start(): Promise<void> {
    try {
      for (const a of this.#addresses) {
        const fam = parseIp(a).family;
        const u = dgram.createSocket({ type: fam === 4 ? "udp4" : "udp6", reuseAddr: true });
        u.on("message", (msg, rinfo) => {
          void this.#answer(msg, rinfo.address, false).then(
            (r) => {
              if (r) u.send(r, rinfo.port, rinfo.address);
            },
            (e: unknown) => this.#log.debug("dns query failed", { error: messageOf(e) }),
          );
        });
        u.on("error", (e) => this.#log.warn("dns socket error", { address: a, error: messageOf(e) }));
        await new Promise<void>((resolve, reject) => {
          u.once("error", reject);
          u.bind({ address: a, port: this.#port }, () => {
            u.off("error", reject);
            resolve();
          });
        });
        this.#udp.push(u);
        const t = net.createServer((sock) => this.#serveTcp(sock));
        t.on("error", (e) => this.#log.warn("dns socket error", { address: a, error: messageOf(e) }));
        await new Promise<void>((resolve, reject) => {
          t.once("error", reject);
          t.listen({ host: a, port: this.#port || u.address().port }, () => {
            t.off("error", reject);
            resolve();
          });
        });
        this.#tcp.push(t);
      }
    } catch (e) {
      this.stop();
      throw e;
    }
  }

  /** The bound port (tests use port 0). */
  get port(): number {
    const a = this.#udp[0]?.address();
    return a ? a.port : this.#port;
  }

  stop(): void {
    for (const u of this.#udp) u.close();
    for (const t of this.#tcp) t.close();
    this.#udp = [];
    this.#tcp = [];
  }

  #serveTcp(sock: net.Socket): void {
    let buf = Buffer.alloc(0);
    const client = (sock.remoteAddress ?? "").replace(/^::ffff:/, "");
    sock.setTimeout(10000, () => sock.destroy());
    sock.on("error", () => {});
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length > 70000) sock.destroy();
      while (buf.length >= 2) {
        const n = buf.readUInt16BE(0);
        if (buf.length < 2 + n) break;
        const msg = buf.subarray(2, 2 + n);
        buf = buf.subarray(2 + n);
        void this.#answer(msg, client, true).then(
          (r) => {
            if (!r) return;
            const len = Buffer.alloc(2);
            len.writeUInt16BE(r.length);
            sock.write(Buffer.concat([len, r]));
          },
          () => sock.destroy(),
        );
      }
    });
  }

  async #answer(msg: Buffer, client: string, tcp: boolean): Promise<Buffer | undefined> {
    const q = parseQuery(msg);
    if (!q) return undefined;
    if (!this.#resolver.allowed(client)) return buildResponse(q, RCODE.REFUSED, []);
    if ((q.flags >> 11) & 0xf) return buildResponse(q, RCODE.NOTIMP, []);
    if (q.qtype === QTYPE.PTR) {
      const target = this.#resolver.reverse(q.name);
      if (target) return buildResponse(q, RCODE.NOERROR, [{ type: 12, target }]);
    } else {
      const hit = this.#resolver.lookup(q.name, client);
      if (hit) {
        const answers: DnsAnswer[] = [];
        if (q.qtype === QTYPE.A || q.qtype === QTYPE.ANY) for (const a of hit.v4) answers.push({ type: 1, address: a });
        if (q.qtype === QTYPE.AAAA || q.qtype === QTYPE.ANY) for (const a of hit.v6) answers.push({ type: 28, address: a });
        // A known name without the asked type: NODATA, never forwarded.
        return buildResponse(q, RCODE.NOERROR, answers);
      }
    }
    const ups = this.#resolver.upstreams(client);
    if (ups.length === 0) return buildResponse(q, RCODE.NXDOMAIN, []);
    for (const up of ups) {
      try {
        return tcp ? await forwardTcp(msg, up) : await forwardUdp(msg, up);
      } catch (e) {
        this.#log.debug("dns forward failed", { upstream: up, error: messageOf(e) });
      }
    }
    return buildResponse(q, RCODE.SERVFAIL, []);
  }
}

function forwardUdp(msg: Buffer, server: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(parseIp(server).family === 4 ? "udp4" : "udp6");
    const timer = setTimeout(() => {
      s.close();
      reject(new Error("timeout"));
    }, FORWARD_TIMEOUT_MS);
    s.on("error", (e) => {
      clearTimeout(timer);
      s.close();
      reject(e);
    });
    s.on("message", (r, rinfo) => {
      if (rinfo.address !== server || r.length < 2 || r.readUInt16BE(0) !== msg.readUInt16BE(0)) return;
      clearTimeout(timer);
      s.close();
      resolve(r);
    });
    s.send(msg, 53, server);
  });
}

function forwardTcp(msg: Buffer, server: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: server, port: 53 });
    let buf = Buffer.alloc(0);
    s.setTimeout(FORWARD_TIMEOUT_MS, () => s.destroy(new Error("timeout")));
    s.on("error", reject);
    s.on("connect", () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      s.write(Buffer.concat([len, msg]));
    });
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        s.end();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    s.on("close", () => reject(new Error("closed")));
  });
}
