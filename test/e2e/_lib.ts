import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/** The berthd socket the test run started (scripts/test.sh sets BERTH_TEST_SOCKET). */
export const SOCKET = process.env.BERTH_TEST_SOCKET ?? "";

/** Clients the black-box suite runs with: the real docker CLI, and berth's own. */
export function clients(): string[] {
  const out: string[] = [];
  if (existsSync("/usr/local/bin/docker") || spawnSync("sh", ["-c", "command -v docker"]).status === 0) out.push("docker");
  const berth = new URL("../../bin/berth", import.meta.url).pathname;
  if (existsSync(berth) && process.env.BERTH_E2E_SKIP_BERTH !== "1") out.push(berth);
  return out;
}

export interface Result {
  code: number;
  out: string;
  err: string;
}

/** Runs a client command against the test daemon. */
export function run(
  client: string,
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Result {
  const r = spawnSync(client, args, {
    env: { ...process.env, DOCKER_HOST: `unix://${SOCKET}`, BERTH_HOST: `unix://${SOCKET}`, ...options.env },
    input: options.input ?? "",
    timeout: options.timeoutMs ?? 60000,
    killSignal: "SIGKILL",
    encoding: "utf8",
  });
  return { code: r.status ?? (r.signal ? 128 : -1), out: (r.stdout ?? "").toString(), err: (r.stderr ?? "").toString() };
}

/** Runs and expects success; returns trimmed stdout. */
export function ok(
  client: string,
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): string {
  const r = run(client, args, options);
  if (r.code !== 0) throw new Error(`${client} ${args.join(" ")} failed (${r.code}): ${r.err || r.out}`);
  return r.out.trim();
}

/** A unique name for this test's resources. */
export function uniq(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
}

/** Waits until `fn` returns true or the time is up. */
export async function until(fn: () => boolean, ms = 10000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return fn();
}
