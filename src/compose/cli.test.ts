/**
 * Compose commands end to end against the in-process fake Engine API: up creates networks,
 * volumes and containers with the Compose labels in dependency order; a second up changes
 * nothing; a change recreates only the changed service; scale; conditions; down removes all;
 * bad input fails before anything is created.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { FakeEngine } from "./_fake_engine.ts";
import { runCompose } from "./cli.ts";

let engine: FakeEngine;
let dir: string;

async function compose(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (c) => (out += c));
  stderr.on("data", (c) => (err += c));
  const stdin = new PassThrough();
  stdin.end();
  const code = await runCompose(args, { stdout, stderr, stdin, env: { ...env }, cwd: dir, host: engine.host });
  return { code, out, err };
}

function write(text: string, name = "compose.yaml"): void {
  writeFileSync(join(dir, name), text);
}

const STACK = `
services:
  db:
    image: busybox
    command: ["sleep", "1000"]
    healthcheck:
      test: ["CMD", "true"]
    volumes: [data:/data]
  migrate:
    image: busybox
    command: ["exit", "0"]
  web:
    image: busybox
    command: ["sleep", "1000"]
    environment:
      MODE: \${MODE:-one}
    ports: ["8080:80"]
    depends_on:
      db:
        condition: service_healthy
      migrate:
        condition: service_completed_successfully
volumes:
  data: {}
`;

describe("compose against a fake engine", () => {
  before(async () => {
    engine = await FakeEngine.start();
  });
  after(async () => {
    await engine.stop();
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "compose-test-"));
    engine.containers.clear();
    engine.networks.clear();
    engine.volumes.clear();
    engine.started.length = 0;
    engine.calls.length = 0;
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test("up -d creates the network, volume and containers with labels, in dependency order", async () => {
    write(STACK);
    const r = await compose(["-p", "app", "up", "-d"]);
    assert.equal(r.code, 0, r.err);
    assert.ok(engine.networks.has("app_default"));
    assert.equal(engine.networks.get("app_default")?.Labels["com.docker.compose.network"], "default");
    assert.equal(engine.volumes.get("app_data")?.Labels["com.docker.compose.volume"], "data");
    const names = [...engine.containers.values()].map((c) => c.Name).sort();
    assert.deepEqual(names, ["/app-db-1", "/app-migrate-1", "/app-web-1"]);
    const web = [...engine.containers.values()].find((c) => c.Name === "/app-web-1");
    const labels = web?.Config.Labels ?? {};
    assert.equal(labels["com.docker.compose.project"], "app");
    assert.equal(labels["com.docker.compose.service"], "web");
    assert.equal(labels["com.docker.compose.container-number"], "1");
    assert.equal(labels["com.docker.compose.oneoff"], "False");
    assert.match(labels["com.docker.compose.depends_on"] ?? "", /db:service_healthy:false/);
    assert.match(labels["com.docker.compose.config-hash"] ?? "", /^[0-9a-f]{64}$/);
    // web starts after both of its dependencies.
    assert.equal(engine.started.at(-1), "app-web-1");
    assert.match(r.err, / Container app-web-1 {2}Started/);
  });

  test("a second up changes nothing; a change recreates only that service", async () => {
    write(STACK);
    assert.equal((await compose(["-p", "app", "up", "-d"])).code, 0);
    const before = new Map([...engine.containers.values()].map((c) => [c.Name, c.Id]));
    const again = await compose(["-p", "app", "up", "-d"]);
    assert.equal(again.code, 0, again.err);
    assert.deepEqual(new Map([...engine.containers.values()].map((c) => [c.Name, c.Id])), before);
    const changed = await compose(["-p", "app", "up", "-d"], { MODE: "two" });
    assert.equal(changed.code, 0, changed.err);
    const after = new Map([...engine.containers.values()].map((c) => [c.Name, c.Id]));
    assert.equal(after.get("/app-db-1"), before.get("/app-db-1"));
    assert.equal(after.get("/app-migrate-1"), before.get("/app-migrate-1"));
    assert.notEqual(after.get("/app-web-1"), before.get("/app-web-1"));
    assert.match(changed.err, /Container app-web-1 {2}Recreate/);
  });

  test("--force-recreate and --no-recreate", async () => {
    write(STACK);
    await compose(["-p", "app", "up", "-d"]);
    const ids = () => [...engine.containers.values()].map((c) => c.Id).sort();
    const first = ids();
    await compose(["-p", "app", "up", "-d", "--no-recreate"], { MODE: "three" });
    assert.deepEqual(ids(), first);
    await compose(["-p", "app", "up", "-d", "--force-recreate"]);
    assert.equal(ids().filter((x) => first.includes(x)).length, 0);
  });

  test("--scale up and down keeps the lowest numbers", async () => {
    write("services:\n  w:\n    image: busybox\n    command: [sleep, '1']\n");
    assert.equal((await compose(["-p", "s", "up", "-d", "--scale", "w=3"])).code, 0);
    assert.deepEqual([...engine.containers.values()].map((c) => c.Name).sort(), ["/s-w-1", "/s-w-2", "/s-w-3"]);
    assert.equal((await compose(["-p", "s", "up", "-d", "--scale", "w=1"])).code, 0);
    assert.deepEqual(
      [...engine.containers.values()].map((c) => c.Name),
      ["/s-w-1"],
    );
  });

  test("a dependency that fails its condition stops up with a clear error", async () => {
    write(`
services:
  job:
    image: busybox
    command: ["exit", "3"]
  app:
    image: busybox
    depends_on:
      job:
        condition: service_completed_successfully
`);
    const r = await compose(["-p", "f", "up", "-d"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /service "job" didn't complete successfully: exit 3/);
    assert.ok(!engine.started.includes("f-app-1"));
    // down cleans what was created.
    assert.equal((await compose(["-p", "f", "down"])).code, 0);
    assert.equal(engine.containers.size, 0);
    assert.equal(engine.networks.size, 0);
  });

  test("down -v removes containers, networks and volumes; down alone keeps volumes", async () => {
    write(STACK);
    await compose(["-p", "app", "up", "-d"]);
    const r = await compose(["-p", "app", "down"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(engine.containers.size, 0);
    assert.equal(engine.networks.size, 0);
    assert.ok(engine.volumes.has("app_data"));
    await compose(["-p", "app", "up", "-d"]);
    assert.equal((await compose(["-p", "app", "down", "-v"])).code, 0);
    assert.equal(engine.volumes.size, 0);
  });

  test("down with -p and no compose file works from the labels", async () => {
    write(STACK);
    await compose(["-p", "app", "up", "-d"]);
    rmSync(join(dir, "compose.yaml"));
    const r = await compose(["-p", "app", "down", "-v"]);
    assert.equal(r.code, 0, `${r.err}|${r.out}`);
    assert.equal(engine.containers.size, 0);
    assert.equal(engine.networks.size, 0);
    assert.equal(engine.volumes.size, 0);
  });

  test("a missing external network fails before anything is created", async () => {
    write("services:\n  a:\n    image: busybox\n    networks: [ext]\nnetworks:\n  ext:\n    external: true\n");
    const r = await compose(["-p", "x", "up", "-d"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /network ext declared as external, but could not be found/);
    assert.equal(engine.containers.size + engine.networks.size + engine.volumes.size, 0);
  });

  test("a missing external volume fails before anything is created", async () => {
    write("services:\n  a:\n    image: busybox\n    volumes: [v:/v]\nvolumes:\n  v:\n    external: true\n");
    const r = await compose(["-p", "x", "up", "-d"]);
    assert.match(r.err, /external volume "v" not found/);
    assert.equal(engine.containers.size + engine.networks.size + engine.volumes.size, 0);
  });

  test("bad input fails before contacting the daemon", async () => {
    for (const text of [
      "services:\n  a:\n    image: busybox\n    bogus: 1\n",
      "services: [\n",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Compose interpolation in the file text.
      "services:\n  a:\n    image: ${X:?need X}\n",
    ]) {
      write(text);
      engine.calls.length = 0;
      const r = await compose(["-p", "x", "up", "-d"]);
      assert.equal(r.code, 1);
      assert.match(r.err, /compose\.yaml/);
      assert.deepEqual(engine.calls, []);
    }
  });

  test("images are pulled when missing; a failed pull is an error", async () => {
    write("services:\n  a:\n    image: alpine:3\n");
    const pulled = await compose(["-p", "p", "up", "-d"]);
    assert.equal(pulled.code, 0, pulled.err);
    assert.ok(engine.calls.includes("POST /images/create"));
    write("services:\n  a:\n    image: missing/thing\n");
    const r = await compose(["-p", "p", "up", "-d"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /pull access denied/);
  });

  test("ps, ps -q, ps --services, ps --format json, ls", async () => {
    write(STACK);
    await compose(["-p", "app", "up", "-d"]);
    const ps = await compose(["-p", "app", "ps"]);
    assert.match(ps.out, /^NAME +IMAGE +COMMAND +SERVICE +CREATED +STATUS +PORTS/);
    assert.match(ps.out, /app-web-1/);
    assert.doesNotMatch(ps.out, /app-migrate-1/);
    assert.match((await compose(["-p", "app", "ps", "-a"])).out, /app-migrate-1/);
    assert.equal((await compose(["-p", "app", "ps", "-q"])).out.trim().split("\n").length, 2);
    assert.equal((await compose(["-p", "app", "ps", "--services"])).out, "db\nweb\n");
    const json = (await compose(["-p", "app", "ps", "--format", "json"])).out
      .trim()
      .split("\n")
      .map((x) => JSON.parse(x));
    assert.deepEqual(json.map((x: { Service: string }) => x.Service).sort(), ["db", "web"]);
    assert.equal((await compose(["-p", "app", "ps", "--format", "{{.Name}}"])).out, "app-db-1\napp-web-1\n");
    const ls = await compose(["ls"]);
    assert.match(ls.out, /app +exited\(1\), running\(2\)/);
  });

  test("stop, start, rm -f, kill", async () => {
    write(STACK);
    await compose(["-p", "app", "up", "-d"]);
    assert.equal((await compose(["-p", "app", "stop"])).code, 0);
    assert.ok([...engine.containers.values()].every((c) => !c.State.Running));
    assert.equal((await compose(["-p", "app", "start"])).code, 0);
    assert.ok([...engine.containers.values()].find((c) => c.Name === "/app-web-1")?.State.Running);
    assert.equal((await compose(["-p", "app", "kill", "web"])).code, 0);
    assert.equal([...engine.containers.values()].find((c) => c.Name === "/app-web-1")?.State.ExitCode, 137);
    assert.equal((await compose(["-p", "app", "rm", "-f", "web"])).code, 0);
    assert.ok(![...engine.containers.values()].some((c) => c.Name === "/app-web-1"));
  });

  test("unknown command, unknown flag, unknown service", async () => {
    write(STACK);
    assert.match((await compose(["nope"])).err, /unknown docker command: "compose nope"/);
    assert.match((await compose(["up", "--bogus"])).err, /unknown flag: --bogus/);
    const r = await compose(["-p", "app", "up", "-d", "ghost"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /no such service: ghost/);
  });

  test("config prints the model; --services, --hash", async () => {
    write(STACK);
    const r = await compose(["config"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^name: compose-test-/);
    assert.equal((await compose(["config", "--services"])).out, "db\nmigrate\nweb\n");
    assert.match((await compose(["config", "--hash", "web"])).out, /^web [0-9a-f]{64}\n$/);
    assert.match((await compose(["version"])).out, /Docker Compose version v2/);
  });
});
