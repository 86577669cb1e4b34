/**
 * Login, push and pull against a real registry (CNCF distribution, Debian's docker-registry)
 * that wants Basic auth (htpasswd), through the docker CLI and berth against a berthd of the
 * test's own: no credentials, a wrong password and a logout fail with dockerd's words; a login
 * stores the credentials in the client's config.json and push and pull then work.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { TestDaemon, waitFor } from "./_daemon.ts";

const berth = new URL("../../bin/berth", import.meta.url).pathname;
const registryBin = "/usr/bin/docker-registry";
const skip = process.getuid?.() !== 0 ? "needs root" : !existsSync(registryBin) ? "needs docker-registry (scripts/setup.sh)" : false;

const daemon = new TestDaemon("regauth", 170);
const dir = `/var/tmp/berth-regauth-${process.pid}`;
const port = 15000 + (process.pid % 1000);
const reg = `127.0.0.1:${port}`;
// bcrypt of "s3cret" (htpasswd's format; the registry checks it with Go's bcrypt).
const HTPASSWD = "alice:$2b$10$u6qB/nwSZz5lKJbtS.qpB.VgUeet8xyotjEI8Y4xDOdTlEHLeg4ja\n";
let registry: ChildProcess | undefined;

before(async () => {
  if (skip) return;
  mkdirSync(`${dir}/data`, { recursive: true });
  writeFileSync(`${dir}/htpasswd`, HTPASSWD);
  writeFileSync(
    `${dir}/config.yml`,
    [
      "version: 0.1",
      "log:",
      "  level: error",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${dir}/data`,
      "auth:",
      "  htpasswd:",
      "    realm: berth-test",
      `    path: ${dir}/htpasswd`,
      "http:",
      `  addr: ${reg}`,
      "",
    ].join("\n"),
  );
  registry = spawn(registryBin, ["serve", `${dir}/config.yml`], { stdio: "ignore" });
  const up = await waitFor(async () => {
    const r = spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", `http://${reg}/v2/`], { encoding: "utf8" });
    return r.stdout === "401";
  }, 10000);
  assert.ok(up, "the registry came up");
  daemon.config();
  await daemon.start();
  assert.equal((await daemon.d("pull", "-q", "busybox")).code, 0);
});

after(async () => {
  await daemon.cleanup();
  if (registry?.pid) process.kill(registry.pid, "SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

for (const client of ["docker", "berth"]) {
  test(`${client}: login, push, pull and logout against a registry with Basic auth`, { skip }, async () => {
    const config = `${dir}/config-${client}`;
    mkdirSync(config, { recursive: true });
    const run = (...args: string[]) => daemon.client("env", [`DOCKER_CONFIG=${config}`, client === "berth" ? berth : "docker", ...args]);
    const login = (password: string) =>
      daemon.client("sh", [
        "-c",
        `echo '${password}' | DOCKER_CONFIG=${config} ${client === "berth" ? berth : "docker"} login -u alice --password-stdin ${reg}`,
      ]);
    const ref = `${reg}/private/${client}:1`;
    assert.equal((await run("tag", "busybox", ref)).code, 0);

    const anonymous = await run("push", ref);
    assert.notEqual(anonymous.code, 0);
    assert.match(anonymous.err + anonymous.out, /no basic auth credentials/);

    const wrong = await login("wrong");
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.err, new RegExp(`login attempt to http://${reg}/v2/ failed with status: 401 Unauthorized`));
    assert.equal(existsSync(`${config}/config.json`) && readFileSync(`${config}/config.json`, "utf8").includes(reg), false);

    const ok = await login("s3cret");
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /Login Succeeded/);
    const stored = JSON.parse(readFileSync(`${config}/config.json`, "utf8")) as { auths: Record<string, { auth: string }> };
    assert.equal(Buffer.from(stored.auths[reg]?.auth ?? "", "base64").toString(), "alice:s3cret");

    const push = await run("push", ref);
    assert.equal(push.code, 0, push.err);
    assert.match(push.out, /digest: sha256:[0-9a-f]{64}/);
    assert.equal((await run("rmi", ref)).code, 0);
    const pull = await run("pull", ref);
    assert.equal(pull.code, 0, pull.err);
    assert.equal((await run("rmi", ref)).code, 0);

    assert.match((await run("logout", reg)).out, new RegExp(`Removing login credentials for ${reg}`));
    const after = await run("pull", ref);
    assert.notEqual(after.code, 0);
    assert.match(after.err, /no basic auth credentials/);
  });
}
