/** `berth stats`: resource usage per container, once (--no-stream) or refreshed every second. */
import type { StatsSample } from "../client/mod.ts";
import { describeError, StatusError } from "./cli.ts";
import type { Command } from "./command.ts";
import { formatList } from "./listing.ts";
import { FORMAT_HELP } from "./opts.ts";
import { bytesSize, humanSizeWithPrecision } from "./units.ts";

const DEFAULT_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

const HEADERS: Record<string, string> = {
  Container: "CONTAINER",
  ID: "CONTAINER ID",
  Name: "NAME",
  CPUPerc: "CPU %",
  MemUsage: "MEM USAGE / LIMIT",
  MemPerc: "MEM %",
  NetIO: "NET I/O",
  BlockIO: "BLOCK I/O",
  PIDs: "PIDS",
};

/** Numbers derived from one stats sample, as docker's stats_helpers compute them. */
export interface StatsEntry {
  container: string;
  name: string;
  id: string;
  cpuPercent: number;
  memory: number;
  memoryLimit: number;
  memoryPercent: number;
  netRx: number;
  netTx: number;
  blockRead: number;
  blockWrite: number;
  pids: number;
  error?: string;
}

/** Computes the docker stats numbers from an API sample. */
export function statsEntry(container: string, s: StatsSample): StatsEntry {
  const cpuDelta = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const sysDelta = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const online = s.cpu_stats?.online_cpus || s.cpu_stats?.cpu_usage?.percpu_usage?.length || 0;
  const cpuPercent = sysDelta > 0 && cpuDelta > 0 ? (cpuDelta / sysDelta) * online * 100 : 0;
  const m = s.memory_stats ?? {};
  const st = m.stats ?? {};
  let usage = m.usage ?? 0;
  // Docker subtracts the page cache: total_inactive_file on cgroup v1, inactive_file on v2.
  const cache = st.total_inactive_file !== undefined ? st.total_inactive_file : st.inactive_file;
  if (cache !== undefined && cache < usage) usage -= cache;
  const limit = m.limit ?? 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    rx += n.rx_bytes;
    tx += n.tx_bytes;
  }
  let br = 0;
  let bw = 0;
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = e.op.toLowerCase();
    if (op === "read") br += e.value;
    else if (op === "write") bw += e.value;
  }
  return {
    container,
    name: (s.name ?? "").replace(/^\//, ""),
    id: s.id ?? "",
    cpuPercent,
    memory: usage,
    memoryLimit: limit,
    memoryPercent: limit > 0 ? (usage / limit) * 100 : 0,
    netRx: rx,
    netTx: tx,
    blockRead: br,
    blockWrite: bw,
    pids: s.pids_stats?.current ?? 0,
  };
}

/** One row of the stats table. */
class StatsRow {
  readonly #e: StatsEntry;
  readonly #trunc: boolean;
  constructor(e: StatsEntry, trunc: boolean) {
    this.#e = e;
    this.#trunc = trunc;
  }
  get Container(): string {
    return this.#e.container;
  }
  get Name(): string {
    return this.#e.name || "--";
  }
  get ID(): string {
    return this.#trunc ? this.#e.id.slice(0, 12) : this.#e.id;
  }
  get CPUPerc(): string {
    return this.#e.error ? "--" : `${this.#e.cpuPercent.toFixed(2)}%`;
  }
  get MemUsage(): string {
    return this.#e.error ? "-- / --" : `${bytesSize(this.#e.memory)} / ${bytesSize(this.#e.memoryLimit)}`;
  }
  get MemPerc(): string {
    return this.#e.error ? "--" : `${this.#e.memoryPercent.toFixed(2)}%`;
  }
  get NetIO(): string {
    return this.#e.error ? "--" : `${humanSizeWithPrecision(this.#e.netRx, 3)} / ${humanSizeWithPrecision(this.#e.netTx, 3)}`;
  }
  get BlockIO(): string {
    return this.#e.error ? "--" : `${humanSizeWithPrecision(this.#e.blockRead, 3)} / ${humanSizeWithPrecision(this.#e.blockWrite, 3)}`;
  }
  get PIDs(): string {
    return this.#e.error ? "--" : String(this.#e.pids);
  }
}

export const statsCommand: Command = {
  name: "stats",
  usage: "[OPTIONS] [CONTAINER...]",
  short: "Display a live stream of container(s) resource usage statistics",
  aliasPaths: ["container stats", "stats"],
  args: "any",
  flags: [
    { long: "all", short: "a", kind: "bool", help: "Show all containers (default shows just running)" },
    { long: "format", kind: "string", help: FORMAT_HELP },
    { long: "no-stream", kind: "bool", help: "Disable streaming stats and only pull the first result" },
    { long: "no-trunc", kind: "bool", help: "Do not truncate output" },
  ],
  async run(cli, { flags, args }) {
    let format = flags.string("format") || cli.configFile().data.statsFormat || "table";
    if (format === "table") format = DEFAULT_FORMAT;
    const trunc = !flags.bool("no-trunc");
    const noStream = flags.bool("no-stream");
    const names = async (): Promise<string[]> => {
      if (args.length > 0) return args;
      const list = await cli.client.containerList({ all: flags.bool("all") });
      return list.map((c) => c.Id);
    };
    const sample = async (c: string): Promise<StatsEntry> => {
      try {
        const stream = await cli.client.containerStats(c, { stream: false });
        for await (const s of stream) {
          const e = statsEntry(c, s);
          if (!e.id) e.id = c;
          return e;
        }
        throw new Error("no stats");
      } catch (e) {
        if (args.length > 0) throw e;
        return {
          container: c,
          name: "--",
          id: c,
          cpuPercent: 0,
          memory: 0,
          memoryLimit: 0,
          memoryPercent: 0,
          netRx: 0,
          netTx: 0,
          blockRead: 0,
          blockWrite: 0,
          pids: 0,
          error: describeError(e),
        };
      }
    };
    const render = async (clear: boolean) => {
      const entries: StatsEntry[] = [];
      const errors: string[] = [];
      for (const c of await names()) {
        try {
          entries.push(await sample(c));
        } catch (e) {
          errors.push(describeError(e));
        }
      }
      const text = formatList(
        format,
        entries.map((e) => new StatsRow(e, trunc)),
        HEADERS,
      );
      await cli.write(clear ? `\x1b[2J\x1b[H${text}` : text);
      if (errors.length) throw new StatusError(1, errors.join("\n"));
    };
    if (noStream) {
      await render(false);
      return 0;
    }
    for (;;) {
      await render(cli.out.isTTY);
      await new Promise((r) => setTimeout(r, 1000));
    }
  },
};
