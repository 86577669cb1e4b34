// biome-ignore-all lint/suspicious/noTemplateCurlyInString: shell and Compose ${...} syntax in plain strings.
/**
 * End-to-end test of `berth compose` against the berthd that scripts/test.sh started: a
 * three-tier stack (a busybox httpd front end with a published port, a worker, a key-value store
 * written as a shell CGI over a named volume) with health-gated depends_on, service-name DNS,
 * `up`, a change of one service and `up` again recreating only it, `logs -f`, `exec`, `run`,
 * and `down -v` leaving nothing behind.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ok, run, SOCKET, until } from "./_lib.ts";

const skip = !SOCKET || process.getuid?.() !== 0 ? "needs root and BERTH_TEST_SOCKET (scripts/test.sh)" : false;
const repo = new URL("../../", import.meta.url).pathname;
const composeModule = join(repo, "src/compose/mod.ts");

/** The command that runs `berth compose`: the CLI when it dispatches compose, else the module directly. */
function composeCommand(): string[] {
  const berth = join(repo, "bin/berth");
  const r = spawnSync(berth, ["compose", "version"], { encoding: "utf8", env: { ...process.env, DOCKER_HOST: `unix://${SOCKET}` } });
  if (r.status === 0 && /Compose version/.test(r.stdout)) return [berth, "compose"];
  const script = `const m = await import(${JSON.stringify(composeModule)}); process.exitCode = await m.runCompose(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() });`;
  return [process.execPath, "--disable-warning=ExperimentalWarning", "--input-type=module", "-e", script, "--"];
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (a && typeof a === "object" ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

describe("berth compose: a three-tier stack", { skip, timeout: 300000 }, () => {
  let dir = "";
  let cmd: string[] = [];
  let port = 0;
  const project = `e2ecompose${process.pid}`;
  const env = () => ({ ...process.env, DOCKER_HOST: `unix://${SOCKET}`, BERTH_HOST: `unix://${SOCKET}`, WEB_PORT: String(port) });
  const compose = (args: string[], extra: Record<string, string> = {}, timeoutMs = 120000) => {
    const [bin, ...pre] = cmd as [string, ...string[]];
    const r = spawnSync(bin, [...pre, "-p", project, ...args], {
      cwd: dir,
      env: { ...env(), ...extra },
      encoding: "utf8",
      timeout: timeoutMs,
      input: "",
    });
    return { code: r.status ?? -1, out: r.stdout ?? "", err: r.stderr ?? "" };
  };
  const composeOk = (args: string[], extra: Record<string, string> = {}) => {
    const r = compose(args, extra);
    assert.equal(r.code, 0, `compose ${args.join(" ")} failed (${r.code}): ${r.err}${r.out}`);
    return r.out;
  };
  const ids = () => {
    const out = ok("docker", ["ps", "-a", "--filter", `label=com.docker.compose.project=${project}`, "--format", "{{.Names}} {{.ID}}"]);
    return new Map(
      out
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split(" ") as [string, string]),
    );
  };

  before(async () => {
    cmd = composeCommand();
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), "berth-compose-e2e-"));
    mkdirSync(join(dir, "kv"));
    // The key-value store: a shell CGI over a named volume (GET ?key=value stores, ?key reads).
    writeFileSync(
      join(dir, "kv", "kv"),
      [
        "#!/bin/sh",
        'echo "Content-Type: text/plain"',
        "echo",
        'q="$QUERY_STRING"',
        'k="${q%%=*}"',
        'case "$q" in *=*) echo "${q#*=}" > "/data/$k" ;; esac',
        'cat "/data/$k" 2>/dev/null',
        "",
      ].join("\n"),
    );
    chmodSync(join(dir, "kv", "kv"), 0o755);
    writeFileSync(
      join(dir, "compose.yaml"),
      `
services:
  kv:
    image: busybox
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    volumes:
      - kvdata:/data
      - ./kv:/www/cgi-bin:ro
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1/cgi-bin/kv?health=ok"]
      interval: 1s
      retries: 30
  worker:
    image: busybox
    command: ["sh", "-c", "wget -qO- 'http://kv/cgi-bin/kv?greeting=hello-from-worker' && while true; do echo tick; sleep 1; done"]
    stop_grace_period: 1s
    depends_on:
      kv:
        condition: service_healthy
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo \\"front $$FLAVOR\\" > /www/index.html && httpd -f -p 80 -h /www"]
    stop_grace_period: 1s
    environment:
      FLAVOR: \${FLAVOR:-vanilla}
    ports:
      - "127.0.0.1:\${WEB_PORT}:80"
    depends_on:
      - worker
      - kv
volumes:
  kvdata: {}
`,
    );
    run("docker", ["pull", "-q", "busybox"]);
  });

  after(() => {
    if (cmd.length && dir) compose(["down", "-v", "-t", "1"]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("up --wait starts everything behind its health-gated dependencies", async () => {
    const r = compose(["up", "-d", "--wait"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /Container .*-kv-1 {2}Healthy/);
    const names = [...ids().keys()].sort();
    assert.deepEqual(names, [`${project}-kv-1`, `${project}-web-1`, `${project}-worker-1`]);
    // The published port of the front end.
    let body = "";
    for (let i = 0; i < 50 && !body.includes("front vanilla"); i++) {
      body = await fetch(`http://127.0.0.1:${port}/`).then(
        (x) => x.text(),
        () => "",
      );
      if (!body.includes("front vanilla")) await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(body, /front vanilla/);
  });

  test("service names resolve on the project network; the worker stored its key", async () => {
    assert.ok(
      await until(
        () => compose(["exec", "-T", "web", "wget", "-qO-", "http://kv/cgi-bin/kv?greeting"]).out.includes("hello-from-worker"),
        20000,
      ),
    );
  });

  test("ps lists the services; exec passes env, workdir and the exit code", () => {
    const ps = composeOk(["ps"]);
    for (const s of ["kv", "web", "worker"]) assert.match(ps, new RegExp(`${project}-${s}-1`));
    assert.equal(composeOk(["ps", "--services"]), "kv\nweb\nworker\n");
    assert.equal(composeOk(["exec", "-T", "-e", "X=1", "-w", "/tmp", "worker", "sh", "-c", "echo $X $(pwd)"]).trim(), "1 /tmp");
    assert.equal(compose(["exec", "-T", "worker", "sh", "-c", "exit 7"]).code, 7);
  });

  test("logs -f follows the output until stopped", async () => {
    const [bin, ...pre] = cmd as [string, ...string[]];
    const child: ChildProcess = spawn(bin, [...pre, "-p", project, "logs", "-f", "--tail", "1", "worker"], { cwd: dir, env: env() });
    let out = "";
    child.stdout?.on("data", (c) => (out += c));
    try {
      assert.ok(await until(() => (out.match(/tick/g) ?? []).length >= 3, 20000), out);
      assert.match(out, new RegExp(`${project}-worker-1 +\\| tick`));
    } finally {
      child.kill("SIGINT");
    }
  });

  test("a change to one service recreates only that service", async () => {
    const before = ids();
    const again = compose(["up", "-d"]);
    assert.equal(again.code, 0, again.err);
    assert.deepEqual(ids(), before);
    const changed = compose(["up", "-d", "--wait"], { FLAVOR: "mint" });
    assert.equal(changed.code, 0, changed.err);
    const after = ids();
    assert.equal(after.get(`${project}-kv-1`), before.get(`${project}-kv-1`));
    assert.equal(after.get(`${project}-worker-1`), before.get(`${project}-worker-1`));
    assert.notEqual(after.get(`${project}-web-1`), before.get(`${project}-web-1`));
    assert.ok(
      await until(() => compose(["exec", "-T", "web", "cat", "/www/index.html"], { FLAVOR: "mint" }).out.includes("front mint"), 15000),
    );
  });

  test("run --rm starts a one-off container on the network and removes it", () => {
    const r = compose(["run", "--rm", "-T", "--no-deps", "worker", "wget", "-qO-", "http://kv/cgi-bin/kv?greeting"], { FLAVOR: "mint" });
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /hello-from-worker/);
    assert.equal([...ids().keys()].filter((n) => n.includes("-run-")).length, 0);
  });

  test("down -v leaves no container, network or volume behind", () => {
    const r = compose(["down", "-v", "-t", "1"], { FLAVOR: "mint" });
    assert.equal(r.code, 0, r.err);
    assert.equal(ids().size, 0);
    assert.doesNotMatch(ok("docker", ["network", "ls", "--format", "{{.Name}}"]), new RegExp(`${project}_default`));
    assert.doesNotMatch(ok("docker", ["volume", "ls", "--format", "{{.Name}}"]), new RegExp(`${project}_kvdata`));
    assert.ok(existsSync(join(dir, "kv", "kv")));
  });
});
