/** A Docker event as `/events` streams it. */
export interface EngineEvent {
  Type: "image" | "container" | "network" | "volume" | "daemon" | "builder";
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: "local";
  time: number;
  timeNano: number;
  /** Legacy fields (API < 1.22 clients and docker-py still read them). */
  status?: string;
  id?: string;
  from?: string;
}

/**
 * The event bus: every service publishes here; `/events` subscribers and the `since` replay
 * read from it. Keeps the last `capacity` events in memory, like dockerd's events buffer.
 */
export class EventBus {
  #buffer: EngineEvent[] = [];
  #subs = new Set<(e: EngineEvent) => void>();
  #capacity: number;

  constructor(capacity = 1024) {
    this.#capacity = capacity;
  }

  publish(type: EngineEvent["Type"], action: string, id: string, attributes: Record<string, string> = {}): EngineEvent {
    const nowNs = BigInt(Date.now()) * 1000000n + (process.hrtime.bigint() % 1000000n);
    const e: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: "local",
      time: Number(nowNs / 1000000000n),
      timeNano: Number(nowNs),
    };
    if (type === "container" || type === "image") {
      e.status = action;
      e.id = id;
      if (attributes.image) e.from = attributes.image;
    }
    this.#buffer.push(e);
    if (this.#buffer.length > this.#capacity) this.#buffer.shift();
    for (const s of this.#subs) s(e);
    return e;
  }

  /** Events already buffered with `time` in [sinceNs, untilNs]. */
  replay(sinceNs: bigint, untilNs?: bigint): EngineEvent[] {
    return this.#buffer.filter((e) => BigInt(e.timeNano) >= sinceNs && (untilNs === undefined || BigInt(e.timeNano) <= untilNs));
  }

  subscribe(fn: (e: EngineEvent) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }
}
