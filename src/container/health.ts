import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, messageOf } from "../base/mod.ts";
import { buildExecProcess, type ContainerRuntime, type ProcessSpec } from "../runtime/mod.ts";
import type { ContainerRecord, ContainerStore } from "./model.ts";

const NS = 1_000_000;
const DEFAULT_INTERVAL = 30_000;
const DEFAULT_TIMEOUT = 30_000;
const DEFAULT_RETRIES = 3;
const DEFAULT_START_INTERVAL = 5_000;
const MAX_OUTPUT = 4096;
const MAX_LOG = 5;

/** The command a healthcheck test runs, or undefined for none. */
export function probeArgs(test: string[] | undefined): string[] | undefined {
  if (!test || test.length === 0) return undefined;
  const [kind, ...rest] = test;
  if (kind === "NONE") return undefined;
  if (kind === "CMD") return rest.length ? rest : undefined;
  if (kind === "CMD-SHELL") return ["/bin/sh", "-c", rest.join(" ")];
  return undefined;
}

/**
 * Runs a container's HEALTHCHECK as Docker does: an exec every interval (start interval during
 * the start period), a timeout, `retries` consecutive failures make it unhealthy; the last five
 * results are kept in `State.Health.Log`; a change of status is a `health_status` event.
 */
export class HealthMonitor {
  #timers = new Map<string, NodeJS.Timeout>();
  #rt: ContainerRuntime;
  #store: ContainerStore;
  #dir: (id: string) => string;
  #publish: (action: string, c: ContainerRecord) => void;
  #log: Logger;

  constructor(deps: {
    runtime: ContainerRuntime;
    store: ContainerStore;
    dir: (id: string) => string;
    publish: (action: string, c: ContainerRecord) => void;
    log: Logger;
  }) {
    this.#rt = deps.runtime;
    this.#store = deps.store;
    this.#dir = deps.dir;
    this.#publish = deps.publish;
    this.#log = deps.log;
  }

  /** Starts probing a container that just started (no-op without a healthcheck). */
  start(c: ContainerRecord): void {
    this.stop(c.Id);
    const hc = c.Config.Healthcheck;
    if (!probeArgs(hc?.Test)) return;
    c.State.Health = { Status: "starting", FailingStreak: 0, Log: [] };
    this.#store.save(c);
    const startedAt = Date.now();
    const schedule = () => {
      const cur = this.#store.get(c.Id);
      if (!cur?.State.Running) return;
      const startPeriod = (hc?.StartPeriod ?? 0) / NS;
      const inStart = Date.now() - startedAt < startPeriod && cur.State.Health?.Status === "starting";
      const delay = inStart
        ? hc?.StartInterval
          ? hc.StartInterval / NS
          : DEFAULT_START_INTERVAL
        : hc?.Interval
          ? hc.Interval / NS
          : DEFAULT_INTERVAL;
      this.#timers.set(
        c.Id,
        setTimeout(() => {
          void this.#probe(c.Id, startedAt).finally(schedule);
        }, delay),
      );
    };
    schedule();
  }

  stop(id: string): void {
    const t = this.#timers.get(id);
    if (t) clearTimeout(t);
    this.#timers.delete(id);
  }

  async #probe(id: string, startedAt: number): Promise<void> {
    const c = this.#store.get(id);
    if (!c?.State.Running || c.State.Paused) return;
    const hc = c.Config.Healthcheck ?? {};
    const args = probeArgs(hc.Test);
    if (!args) return;
    const start = new Date();
    let output = "";
    let exitCode = -1;
    try {
      const spec = JSON.parse(await readFile(join(this.#dir(id), "config.json"), "utf8")) as { process: ProcessSpec };
      const proc = buildExecProcess(spec.process, { args, tty: false });
      const session = await this.#rt.exec(id, {
        process: proc,
        onData: (_s, d) => {
          if (output.length < MAX_OUTPUT) output += d.toString("utf8");
        },
      });
      const timeout = hc.Timeout ? hc.Timeout / NS : DEFAULT_TIMEOUT;
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        session.exit,
        new Promise<{ exitCode: number }>((resolve) => {
          timer = setTimeout(() => resolve({ exitCode: -1 }), timeout);
        }),
      ]);
      if (timer) clearTimeout(timer);
      exitCode = r.exitCode;
      if (exitCode === -1) output = `Health check exceeded timeout (${timeout / 1000}s)`;
    } catch (e) {
      output = messageOf(e);
      exitCode = -1;
    }
    const cur = this.#store.get(id);
    if (!cur?.State.Running || !cur.State.Health) return;
    const h = cur.State.Health;
    const entry = { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: exitCode, Output: output.slice(0, MAX_OUTPUT) };
    h.Log = [...(h.Log as unknown[]), entry].slice(-MAX_LOG);
    const before = h.Status;
    if (exitCode === 0) {
      h.Status = "healthy";
      h.FailingStreak = 0;
    } else {
      const inStart = Date.now() - startedAt < (hc.StartPeriod ?? 0) / NS;
      if (!inStart) {
        h.FailingStreak++;
        if (h.FailingStreak >= (hc.Retries || DEFAULT_RETRIES)) h.Status = "unhealthy";
      }
    }
    this.#store.save(cur);
    if (h.Status !== before || h.Status !== "starting") {
      if (h.Status !== before) this.#publish(`health_status: ${h.Status}`, cur);
    }
    this.#log.debug("health probe", { id, exitCode, status: h.Status });
  }
}
