import type { Host, Logger } from "../base/mod.ts";
import { messageOf } from "../base/mod.ts";
import { type Cidr, formatCidr, subnetOf } from "./ipnet.ts";

/** One berth bridge as the firewall sees it. */
export interface FirewallBridge {
  bridge: string;
  subnets: Cidr[];
  internal: boolean;
  /** Containers of the network may talk to each other (`enable_icc`). */
  icc: boolean;
  /** Outgoing traffic is masqueraded (`enable_ip_masquerade`). */
  masquerade: boolean;
}

/** One published port: host side and the container address it is forwarded to. */
export interface FirewallPort {
  proto: "tcp" | "udp" | "sctp";
  /** "" or 0.0.0.0: every local address. */
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

/** Everything the firewall rules are generated from: the whole state, every time. */
export interface FirewallState {
  bridges: FirewallBridge[];
  ports: FirewallPort[];
}

/** The chain names of one berthd instance (prefix `BERTH`, or `BERTH-<tag>` for a second daemon). */
export function chainNames(prefix: string) {
  return {
    forward: `${prefix}-FORWARD`,
    dnat: `${prefix}-DNAT`,
    postrouting: `${prefix}-POSTROUTING`,
    raw: `${prefix}-PREROUTING`,
  };
}

type Chains = ReturnType<typeof chainNames>;

/** The jumps from the built-in chains into berth's: table, chain, rule (without -A/-I). */
function jumps(c: Chains, family: 4 | 6): { table: string; chain: string; rule: string[]; first: boolean }[] {
  const j = [
    { table: "filter", chain: "FORWARD", rule: ["-j", c.forward], first: true },
    { table: "nat", chain: "POSTROUTING", rule: ["-j", c.postrouting], first: true },
  ];
  if (family === 4) {
    j.push(
      { table: "nat", chain: "PREROUTING", rule: ["-m", "addrtype", "--dst-type", "LOCAL", "-j", c.dnat], first: false },
      { table: "nat", chain: "OUTPUT", rule: ["-m", "addrtype", "--dst-type", "LOCAL", "-j", c.dnat], first: false },
      { table: "raw", chain: "PREROUTING", rule: ["-j", c.raw], first: true },
    );
  }
  return j;
}

/**
 * The `iptables-restore --noflush` input for one family: each of berth's chains is declared
 * (which flushes it) and refilled, so one call replaces every rule atomically per table and
 * the result depends only on `state`, never on what was there before (a crash, a reload).
 *
 * Rules, per bridge (Docker's model, since Docker sets FORWARD's policy to DROP):
 * - filter: other berth bridges are isolated from each other; replies and published (DNAT)
 *   traffic may enter a bridge; its containers may talk to each other and, unless internal,
 *   go out. Internal bridges drop everything that crosses their boundary.
 * - nat: masquerade of the subnet going out another interface; masquerade of loopback-sourced
 *   traffic (`curl 127.0.0.1:PORT`, which needs route_localnet on the bridge) and of hairpin
 *   traffic (a container reaching a published port of its own network); DNAT per published port.
 * - raw: packets addressed to 127.0.0.0/8 that arrive on a bridge are dropped, so that
 *   route_localnet cannot expose ports published on 127.0.0.1 to containers (CVE-2020-8558).
 */
export function renderRules(state: FirewallState, c: Chains, family: 4 | 6): string {
  const bridges = state.bridges.map((b) => ({ ...b, subnets: b.subnets.filter((s) => s.family === family).map(subnetOf) }));
  const filter: string[] = [];
  for (const a of bridges)
    for (const b of bridges) if (a.bridge !== b.bridge) filter.push(`-A ${c.forward} -i ${a.bridge} -o ${b.bridge} -j DROP`);
  for (const b of bridges) {
    const br = b.bridge;
    if (b.internal) {
      filter.push(`-A ${c.forward} -i ${br} -o ${br} -j ${b.icc ? "ACCEPT" : "DROP"}`);
      filter.push(`-A ${c.forward} -i ${br} -j DROP`, `-A ${c.forward} -o ${br} -j DROP`);
      continue;
    }
    filter.push(`-A ${c.forward} -o ${br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
    filter.push(`-A ${c.forward} -o ${br} -m conntrack --ctstate DNAT -j ACCEPT`);
    filter.push(`-A ${c.forward} -i ${br} -o ${br} -j ${b.icc ? "ACCEPT" : "DROP"}`);
    filter.push(`-A ${c.forward} -i ${br} ! -o ${br} -j ACCEPT`);
  }
  const post: string[] = [];
  const dnat: string[] = [];
  const raw: string[] = [];
  for (const b of bridges) {
    if (b.internal) continue;
    for (const s of b.subnets) {
      const cidr = formatCidr(s);
      if (b.masquerade) post.push(`-A ${c.postrouting} -s ${cidr} ! -o ${b.bridge} -j MASQUERADE`);
      post.push(`-A ${c.postrouting} -s ${cidr} -o ${b.bridge} -m conntrack --ctstate DNAT -j MASQUERADE`);
    }
    if (family === 4) post.push(`-A ${c.postrouting} -s 127.0.0.0/8 -o ${b.bridge} -j MASQUERADE`);
  }
  if (family === 4) {
    for (const b of bridges) raw.push(`-A ${c.raw} -i ${b.bridge} -d 127.0.0.0/8 -j DROP`);
    for (const p of state.ports) {
      if (p.containerIp.includes(":")) continue;
      const dst = p.hostIp && p.hostIp !== "0.0.0.0" ? ` -d ${p.hostIp}/32` : "";
      dnat.push(
        `-A ${c.dnat}${dst} -p ${p.proto} -m ${p.proto} --dport ${p.hostPort} -j DNAT --to-destination ${p.containerIp}:${p.containerPort}`,
      );
    }
  }
  const out = ["*filter", `:${c.forward} - [0:0]`, ...filter, "COMMIT", "*nat", `:${c.postrouting} - [0:0]`, ...post];
  if (family === 4) out.push(`:${c.dnat} - [0:0]`, ...dnat);
  out.push("COMMIT");
  if (family === 4) out.push("*raw", `:${c.raw} - [0:0]`, ...raw, "COMMIT");
  return `${out.join("\n")}\n`;
}

/** Counts of rules each of berth's chains should hold, to notice a flush by a firewall reload. */
function expectedCounts(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of text.split("\n")) {
    if (l.startsWith(":")) m.set(l.slice(1).split(" ")[0] ?? "", m.get(l.slice(1).split(" ")[0] ?? "") ?? 0);
    else if (l.startsWith("-A ")) {
      const ch = l.split(" ")[1] ?? "";
      m.set(ch, (m.get(ch) ?? 0) + 1);
    }
  }
  return m;
}

/**
 * Applies `FirewallState` with iptables (and ip6tables when a network has IPv6), removes every
 * rule of this instance, and notices when someone else removed them (`iptables -F`, a
 * firewalld reload, `nft flush ruleset`) so that `check()` can put them back.
 */
export class Firewall {
  #host: Host;
  #log: Logger;
  #chains: Chains;
  #last: { 4?: string; 6?: string } = {};
  /** Families whose jumps were checked; later applies only rewrite the chains (two spawns fewer per start). */
  #jumped = new Set<4 | 6>();
  #queue: Promise<void> = Promise.resolve();

  constructor(host: Host, log: Logger, prefix: string) {
    this.#host = host;
    this.#log = log;
    this.#chains = chainNames(prefix);
  }

  get chains(): Chains {
    return this.#chains;
  }

  /** Serialises iptables work: concurrent restores of the same chains would interleave. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn, fn);
    this.#queue = p.then(
      () => {},
      () => {},
    );
    return p;
  }

  /** Replaces every berth rule by the ones `state` implies. */
  apply(state: FirewallState): Promise<void> {
    return this.#serial(async () => {
      const v6 = state.bridges.some((b) => b.subnets.some((s) => s.family === 6));
      await this.#applyFamily(4, renderRules(state, this.#chains, 4));
      if (v6) await this.#applyFamily(6, renderRules(state, this.#chains, 6));
      else if (this.#last[6] !== undefined) {
        await this.#removeFamily(6);
        delete this.#last[6];
      }
    });
  }

  async #applyFamily(family: 4 | 6, text: string, force = false): Promise<void> {
    const restore = family === 4 ? "iptables-restore" : "ip6tables-restore";
    await this.#host.run(restore, ["-w", "--noflush"], { input: text });
    if (force || !this.#jumped.has(family)) {
      for (const j of jumps(this.#chains, family)) await this.#ensureJump(family, j);
      this.#jumped.add(family);
    }
    this.#last[family] = text;
  }

  async #ensureJump(family: 4 | 6, j: { table: string; chain: string; rule: string[]; first: boolean }): Promise<void> {
    const ipt = family === 4 ? "iptables" : "ip6tables";
    const r = await this.#host.run(ipt, ["-w", "-t", j.table, "-C", j.chain, ...j.rule], { allowFailure: true });
    if (r.code === 0) return;
    await this.#host.run(ipt, ["-w", "-t", j.table, ...(j.first ? ["-I", j.chain, "1"] : ["-A", j.chain]), ...j.rule]);
  }

  /**
   * Puts the rules back if any of them is gone (a firewall reload flushed them). Cheap enough
   * to run every few seconds: one iptables-save per family.
   */
  check(): Promise<boolean> {
    return this.#serial(async () => {
      let repaired = false;
      for (const family of [4, 6] as const) {
        const text = this.#last[family];
        if (text === undefined) continue;
        const save = await this.#host.run(family === 4 ? "iptables-save" : "ip6tables-save", [], { allowFailure: true });
        const have = new Map<string, number>();
        for (const l of save.stdout.split("\n")) {
          if (l.startsWith(":")) {
            const ch = l.slice(1).split(" ")[0] ?? "";
            if (!have.has(ch)) have.set(ch, 0);
          } else if (l.startsWith("-A ")) {
            const ch = l.split(" ")[1] ?? "";
            have.set(ch, (have.get(ch) ?? 0) + 1);
          }
        }
        let ok = true;
        for (const [ch, n] of expectedCounts(text)) if (have.get(ch) !== n) ok = false;
        for (const j of jumps(this.#chains, family)) {
          const target = j.rule.at(-1) ?? "";
          if (!save.stdout.split("\n").some((l) => l.startsWith(`-A ${j.chain} `) && l.endsWith(`-j ${target}`))) ok = false;
        }
        if (!ok) {
          this.#log.warn("berth firewall rules were removed; restoring them", { family });
          await this.#applyFamily(family, text, true);
          repaired = true;
        }
      }
      return repaired;
    });
  }

  /** Removes the jumps and chains of this instance (both families); missing ones are fine. */
  removeAll(): Promise<void> {
    return this.#serial(async () => {
      await this.#removeFamily(4);
      await this.#removeFamily(6);
      this.#last = {};
    });
  }

  async #removeFamily(family: 4 | 6): Promise<void> {
    this.#jumped.delete(family);
    const ipt = family === 4 ? "iptables" : "ip6tables";
    for (const j of jumps(this.#chains, 4)) {
      // Delete every copy (a crash between insert and record can leave two).
      for (let i = 0; i < 10; i++) {
        const r = await this.#host.run(ipt, ["-w", "-t", j.table, "-D", j.chain, ...j.rule], { allowFailure: true }).catch(() => undefined);
        if (r?.code !== 0) break;
      }
    }
    const tables: [string, string][] = [
      ["filter", this.#chains.forward],
      ["nat", this.#chains.postrouting],
      ["nat", this.#chains.dnat],
      ["raw", this.#chains.raw],
    ];
    for (const [t, ch] of tables) {
      await this.#host
        .run(ipt, ["-w", "-t", t, "-F", ch], { allowFailure: true })
        .catch((e: unknown) => this.#log.debug("flush", { error: messageOf(e) }));
      await this.#host.run(ipt, ["-w", "-t", t, "-X", ch], { allowFailure: true }).catch(() => {});
    }
  }
}
