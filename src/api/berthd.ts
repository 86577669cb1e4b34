/**
 * berthd: the engine daemon. Serves the Docker Engine API on a unix socket (0660, group
 * `berth` when it exists) and, only with mutual TLS, on TCP.
 *
 *   berthd [-H unix:///run/berth/berth.sock] [-H tcp://0.0.0.0:2376 --tlsverify --tlscacert ca.pem --tlscert cert.pem --tlskey key.pem]
 *          [--data-root DIR] [--exec-root DIR] [--config-file FILE] [-D] [--registry-mirror URL] [--insecure-registry HOST]
 *   berthd --check [--repair] [--json] [--data-root DIR] [--exec-root DIR] [--config-file FILE]
 *
 * `--check` verifies the store offline (no daemon may run on it), prints the report and exits
 * 0 when the store is healthy, 1 otherwise; `--repair` also fixes what can be fixed.
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import type { Server } from "node:http";
import { connect } from "node:net";
import { dirname, join, resolve } from "node:path";
import { createLogger, invalidArgument, messageOf, RealHost } from "../base/mod.ts";
import { closeInheritedDescriptors } from "../runtime/mod.ts";
import { type CheckReport, checkStore, DEFAULT_CONFIG_FILE, DEFAULT_SOCKET, Daemon, type DaemonConfig, loadConfig } from "../daemon/mod.ts";
import { DOCKER_SOCKET, linkDockerSocket, unlinkDockerSocket } from "./docker_socket.ts";
import { buildRouter } from "./routes.ts";
import { createApiServer } from "./server.ts";

interface Flags {
  hosts: string[];
  configFile: string;
  dataRoot?: string;
  execRoot?: string;
  debug?: boolean;
  tlsVerify?: boolean;
  tlsCaCert?: string;
  tlsCert?: string;
  tlsKey?: string;
  mirrors: string[];
  insecure: string[];
  group?: string;
  check?: boolean;
  repair?: boolean;
  json?: boolean;
}

function parseFlags(argv: string[]): Flags {
  const f: Flags = { hosts: [], configFile: DEFAULT_CONFIG_FILE, mirrors: [], insecure: [] };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i] ?? "";
    let v: string | undefined;
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const val = () => {
      if (v !== undefined) return v;
      const n = argv[++i];
      if (n === undefined) throw invalidArgument(`flag needs an argument: ${a}`);
      return n;
    };
    switch (a) {
      case "-H":
      case "--host":
        f.hosts.push(val());
        break;
      case "--config-file":
        f.configFile = val();
        break;
      case "--data-root":
        f.dataRoot = val();
        break;
      case "--exec-root":
        f.execRoot = val();
        break;
      case "-D":
      case "--debug":
        f.debug = true;
        break;
      case "--tlsverify":
        f.tlsVerify = v === undefined ? true : v !== "false";
        break;
      case "--tlscacert":
        f.tlsCaCert = val();
        break;
      case "--tlscert":
        f.tlsCert = val();
        break;
      case "--tlskey":
        f.tlsKey = val();
        break;
      case "--registry-mirror":
        f.mirrors.push(val());
        break;
      case "--insecure-registry":
        f.insecure.push(val());
        break;
      case "-G":
      case "--group":
        f.group = val();
        break;
      case "--check":
        f.check = true;
        break;
      case "--repair":
        f.repair = true;
        break;
      case "--json":
        f.json = true;
        break;
      case "-h":
      case "--help":
        process.stdout.write(
          'Usage: berthd [OPTIONS]\n\nA container engine that serves the Docker Engine API.\n\nOptions:\n  -H, --host list            Daemon socket(s) to connect to\n      --config-file string   Daemon configuration file (default "/etc/berth/daemon.json")\n      --data-root string     Root directory of persistent state (default "/var/lib/berth")\n      --exec-root string     Root directory for execution state files (default "/run/berth")\n  -D, --debug                Enable debug mode\n  -G, --group string         Group for the unix socket (default "berth")\n      --registry-mirror list Preferred registry mirror\n      --insecure-registry list Enable insecure registry communication\n      --tlsverify            Use TLS and verify the remote\n      --tlscacert string     Trust certs signed only by this CA\n      --tlscert string       Path to TLS certificate file\n      --tlskey string        Path to TLS key file\n      --check                Verify the store offline, print a report and exit (1 if unhealthy)\n      --repair               With --check: also repair the store\n      --json                 With --check: print the report as JSON\n',
        );
        process.exit(0);
        break;
      default:
        throw invalidArgument(`unknown flag: ${a}`);
    }
  }
  return f;
}

function groupId(name: string): number | undefined {
  try {
    for (const line of readFileSync("/etc/group", "utf8").split("\n")) {
      const p = line.split(":");
      if (p[0] === name && p[2]) return Number(p[2]);
    }
  } catch {
    // no /etc/group: no group
  }
  return undefined;
}

/** Whether something answers on a unix socket. */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Listens on a unix socket so that it is 0660 before anyone can connect: bound inside a
 * directory only root can enter, then chmod/chown, then renamed into place.
 */
async function listenUnix(server: Server, path: string, group: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (existsSync(path)) {
    if (await socketAlive(path)) throw invalidArgument(`Another daemon is already listening on "${path}"`);
    unlinkSync(path);
  }
  const priv = join(dirname(path), `.berthd-${process.pid}`);
  rmSync(priv, { recursive: true, force: true });
  mkdirSync(priv, { mode: 0o700 });
  const tmp = join(priv, "sock");
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(tmp, () => {
      server.off("error", reject);
      resolve();
    });
  });
  chmodSync(tmp, 0o660);
  const gid = groupId(group);
  if (gid !== undefined) chownSync(tmp, 0, gid);
  renameSync(tmp, path);
  rmSync(priv, { recursive: true, force: true });
}

/** The pid of a live berthd recorded in `pidFile`, if any. */
function runningPid(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!(pid > 0) || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("berthd") ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Another berthd process started with `--data-root dataRoot` (whatever its exec root). */
function daemonOnDataRoot(dataRoot: string): number | undefined {
  let pids: string[] = [];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  for (const p of pids) {
    const pid = Number(p);
    if (pid === process.pid) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (!args.some((a) => a.endsWith("berthd") || a.endsWith("berthd.ts"))) continue;
    for (let i = 0; i < args.length; i++) {
      const a = args[i] ?? "";
      const v = a === "--data-root" ? args[i + 1] : a.startsWith("--data-root=") ? a.slice(12) : undefined;
      if (v !== undefined && resolve(v) === resolve(dataRoot)) return pid;
    }
  }
  return undefined;
}

function printReport(r: CheckReport): void {
  const c = r.checked;
  const lines = [`Checked ${c.blobs} blobs, ${c.images} images, ${c.snapshots} snapshots, ${c.containers} containers`];
  for (const p of r.problems) {
    lines.push(`${p.severity.padEnd(7)} ${p.kind.padEnd(24)} ${p.message}${p.repaired ? " [repaired]" : ""}`);
  }
  if (r.gc) lines.push(`Garbage collected ${r.gc.blobs} blobs, ${r.gc.snapshots} snapshots, ${r.gc.bytes} bytes`);
  lines.push(r.ok ? "Store is healthy" : "Store has problems");
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** `berthd --check [--repair]`: an offline store check; refuses while a daemon uses the store. */
async function runCheck(config: DaemonConfig, flags: Flags): Promise<void> {
  const log = createLogger(config.debug ? "debug" : "warn");
  const pidFile = join(config.execRoot, "berthd.pid");
  mkdirSync(config.execRoot, { recursive: true, mode: 0o711 });
  const other = runningPid(pidFile) ?? daemonOnDataRoot(config.dataRoot);
  if (other !== undefined) {
    throw invalidArgument(`Cannot check the store: berthd is running on it (pid ${other}); stop it or use POST /berth/system/check`);
  }
  // Hold the pid file so that a berthd started meanwhile refuses to run on the store.
  writeFileSync(pidFile, `${process.pid}\n`);
  let report: CheckReport;
  try {
    const daemon = await Daemon.open(config, log, new RealHost(), { recover: false });
    try {
      report = await checkStore(daemon, { repair: flags.repair === true, exclusive: true });
    } finally {
      daemon.close();
    }
  } finally {
    rmSync(pidFile, { force: true });
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else printReport(report);
  process.exit(report.ok ? 0 : 1);
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const config: DaemonConfig = await loadConfig(flags.configFile, flags.configFile !== DEFAULT_CONFIG_FILE);
  if (flags.dataRoot) config.dataRoot = flags.dataRoot;
  if (flags.execRoot) config.execRoot = flags.execRoot;
  if (flags.debug || process.env.BERTH_LOG === "debug") config.debug = true;
  if (flags.hosts.length) config.hosts = flags.hosts;
  config.registryMirrors.push(...flags.mirrors);
  config.insecureRegistries.push(...flags.insecure);
  if (flags.group) config.group = flags.group;
  if (flags.tlsVerify !== undefined) config.tlsVerify = flags.tlsVerify;
  if (flags.tlsCaCert) config.tlsCaCert = flags.tlsCaCert;
  if (flags.tlsCert) config.tlsCert = flags.tlsCert;
  if (flags.tlsKey) config.tlsKey = flags.tlsKey;
  if (flags.repair && !flags.check) throw invalidArgument("--repair needs --check");
  if (flags.check) return await runCheck(config, flags);

  const log = createLogger(config.debug ? "debug" : "info");
  // A stray stream error (a client that hung up mid-response) must not take the daemon down:
  // log it and keep serving; the containers run on under their monitors either way.
  process.on("uncaughtException", (e) =>
    log.error("uncaught exception", { error: messageOf(e), stack: (e as Error).stack?.split("\n").slice(0, 4).join(" | ") }),
  );
  process.on("unhandledRejection", (e) => log.error("unhandled rejection", { error: messageOf(e) }));
  // Check hosts before touching any state.
  for (const h of config.hosts) {
    if (h.startsWith("tcp://")) {
      if (!config.tlsVerify || !config.tlsCaCert || !config.tlsCert || !config.tlsKey) {
        throw invalidArgument(`Refusing to listen on "${h}" without mutual TLS: pass --tlsverify, --tlscacert, --tlscert and --tlskey`);
      }
    } else if (!h.startsWith("unix://") && !h.startsWith("/")) {
      throw invalidArgument(`Invalid host "${h}": use unix:///path or tcp://host:port`);
    }
  }
  const pidFile = join(config.execRoot, "berthd.pid");
  mkdirSync(config.execRoot, { recursive: true, mode: 0o711 });
  const running = runningPid(pidFile);
  if (running !== undefined) throw invalidArgument(`berthd is already running (pid ${running}, ${pidFile})`);
  writeFileSync(pidFile, `${process.pid}\n`);

  closeInheritedDescriptors();
  const daemon = await Daemon.open(config, log, new RealHost());
  await daemon.start();
  const router = buildRouter(daemon);
  const servers: Server[] = [];
  for (const h of config.hosts) {
    if (h.startsWith("tcp://")) {
      const u = new URL(h);
      const server = createApiServer(router, log, {
        ca: readFileSync(config.tlsCaCert ?? ""),
        cert: readFileSync(config.tlsCert ?? ""),
        key: readFileSync(config.tlsKey ?? ""),
        requestCert: true,
        rejectUnauthorized: true,
      });
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(Number(u.port || 2376), u.hostname, () => resolve());
      });
      servers.push(server);
      log.info("API listening", { host: h });
    } else {
      const path = h.startsWith("unix://") ? h.slice(7) : h;
      const server = createApiServer(router, log);
      await listenUnix(server, path, config.group);
      servers.push(server);
      log.info("API listening", { host: `unix://${path}` });
    }
  }
  // The system daemon (on the default socket) answers at Docker's default socket too, when no
  // dockerd holds it; daemon.json "docker-socket": false turns that off.
  const own = DEFAULT_SOCKET.slice(7);
  const dockerLink =
    config.raw["docker-socket"] !== false && config.hosts.some((h) => h === DEFAULT_SOCKET || h === own) && linkDockerSocket(own);
  if (dockerLink) log.info("API also at Docker's default socket", { link: DOCKER_SOCKET, target: own });
  log.info("berthd started", { dataRoot: config.dataRoot, pid: process.pid });

  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info("berthd stopping", { signal: sig });
    for (const s of servers) s.close();
    for (const s of servers) s.closeAllConnections?.();
    await daemon.shutdown();
    daemon.close();
    for (const h of config.hosts) {
      if (!h.startsWith("tcp://")) rmSync(h.startsWith("unix://") ? h.slice(7) : h, { force: true });
    }
    if (dockerLink) unlinkDockerSocket(own);
    rmSync(pidFile, { force: true });
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((e: unknown) => {
  process.stderr.write(`berthd: ${messageOf(e)}\n`);
  process.exit(1);
});
