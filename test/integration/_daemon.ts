/**
 * A berthd of a test's own (data root, exec root and socket named after the test and the pid,
 * a default bridge and address pools in ranges no other test uses), driven through the real
 * docker CLI, with the clean-up every such test needs: containers, networks, the daemon by
 * pid, mounts under its roots, its directories.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { waitFor } from "./_wait.ts";

export interface Run {
  code: number;
  out: string;
  err: string;
}

const berthd = new URL("../../bin/berthd", import.meta.url).pathname;

/** Why a networking test cannot run here (root, the registry fixture, the CNI plugins), or false. */
export const networkSkip: string | false =
  process.getuid?.() !== 0
    ? "needs root"
    : spawnSync("curl", ["-sf", "http://127.0.0.1:5000/v2/"]).status !== 0
      ? "needs the registry fixture on 127.0.0.1:5000"
      : !existsSync("/usr/lib/cni/bridge")
        ? "needs containernetworking-plugins"
        : false;

export { waitFor } from "./_wait.ts";

export class TestDaemon {
  readonly root: string;
  readonly exec: string;
  readonly sock: string;
  /** Its iptables chains are `<prefix>-...`, its default bridge `berth<hash>`. */
  readonly prefix: string;
  readonly bridge: string;
  /** Second and third octets of its default bridge (10.o2.o3.0/24; pools at 10.o2.o3+100). */
  readonly o2: number;
  readonly o3: number;
  #proc: ChildProcess | undefined;

  /** `octet` picks the test's 10.x range (x = octet + pid % 40). */
  constructor(name: string, octet: number) {
    this.root = `/var/tmp/berth-${name}-${process.pid}`;
    this.exec = `/run/berth-${name}-${process.pid}`;
    this.sock = `${this.exec}/berth.sock`;
    const hash = createHash("sha256").update(this.exec).digest("hex").slice(0, 6);
    this.prefix = `BERTH-${hash}`;
    this.bridge = `berth${hash}`;
    this.o2 = octet + (process.pid % 40);
    this.o3 = process.pid % 100;
  }

  get running(): boolean {
    return this.#proc !== undefined;
  }

  /** Writes daemon.json: the registry fixture as mirror, the test's address ranges, `extra`. */
  config(extra: Record<string, unknown> = {}): void {
    mkdirSync(this.root, { recursive: true });
    writeFileSync(
      `${this.root}/daemon.json`,
      JSON.stringify({
        "registry-mirrors": ["http://127.0.0.1:5000"],
        bip: `10.${this.o2}.${this.o3}.1/24`,
        "default-address-pools": [{ base: `10.${this.o2}.${this.o3 + 100}.0/24`, size: 27 }],
        ...extra,
      }),
    );
  }

  async start(): Promise<void> {
    this.#proc = spawn(
      berthd,
      [
        "--config-file",
        `${this.root}/daemon.json`,
        "--data-root",
        `${this.root}/data`,
        "--exec-root",
        this.exec,
        "-H",
        `unix://${this.sock}`,
      ],
      { stdio: ["ignore", "ignore", "inherit"], detached: true },
    );
    if (!(await waitFor(async () => (await this.d("version")).code === 0, 20000))) throw new Error("berthd did not come up");
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const p = this.#proc;
    if (!p?.pid) return;
    const gone = new Promise<void>((r) => p.once("exit", () => r()));
    process.kill(p.pid, signal);
    await Promise.race([gone, new Promise((r) => setTimeout(r, 15000))]);
    this.#proc = undefined;
  }

  /** Runs a client against this daemon without blocking the event loop (test servers live here). */
  client(cmd: string, args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(
        cmd,
        args,
        { env: { ...process.env, DOCKER_HOST: `unix://${this.sock}` }, encoding: "utf8", timeout: 60000 },
        (e, stdout, stderr) => {
          const code = e ? (typeof (e as { code?: unknown }).code === "number" ? (e as { code: number }).code : -1) : 0;
          resolve({ code, out: (stdout ?? "").trim(), err: (stderr ?? "").trim() });
        },
      );
    });
  }

  /**
   * Pinned network namespaces no container of this daemon uses: berthd keeps one spare for the
   * next start, so more than one means a start or an exit left its namespace behind. Waits out
   * the making of a new spare first (berthd makes it 250 ms after a start takes one).
   */
  async unusedPins(): Promise<string[]> {
    await new Promise((r) => setTimeout(r, 500));
    const ids = (await this.d("ps", "-q", "--no-trunc")).out.split("\n").filter(Boolean);
    const used = new Set<string>();
    for (const id of ids) used.add((await this.d("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", id)).out);
    const dir = `${this.exec}/netns`;
    return (existsSync(dir) ? readdirSync(dir) : []).map((f) => `${dir}/${f}`).filter((p) => !used.has(p));
  }

  /** The docker CLI against this daemon. */
  d(...args: string[]): Promise<Run> {
    return this.client("docker", args);
  }

  /** Removes every container (and with `pruneNetworks`, the networks), stops the daemon, unmounts and deletes its roots. */
  async cleanup(options: { pruneNetworks?: boolean } = {}): Promise<void> {
    if (this.running) {
      const ps = await this.d("ps", "-aq");
      if (ps.out) await this.d("rm", "-f", ...ps.out.split("\n"));
      if (options.pruneNetworks) await this.d("network", "prune", "-f");
      await this.stop();
    }
    spawnSync("sh", [
      "-c",
      `grep -o ' ${this.exec}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l; grep -o ' ${this.root}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`,
    ]);
    rmSync(this.root, { recursive: true, force: true });
    rmSync(this.exec, { recursive: true, force: true });
  }
}
