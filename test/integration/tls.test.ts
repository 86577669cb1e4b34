/**
 * berthd on TCP only with mutual TLS: refuses to start without it, serves the docker CLI with
 * client certificates, and turns away clients without one.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const berthd = new URL("../../bin/berthd", import.meta.url).pathname;
const skip = process.getuid?.() !== 0 ? "needs root" : spawnSync("sh", ["-c", "command -v openssl"]).status !== 0 ? "needs openssl" : false;
const dir = mkdtempSync(join(tmpdir(), "berth-tls-"));
const exec = `/run/berth-tls-${process.pid}`;
const port = 23760 + (process.pid % 200);
let daemon: ChildProcess | undefined;

function ssl(...args: string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
}

after(async () => {
  if (daemon?.pid) {
    try {
      process.kill(daemon.pid, "SIGTERM");
    } catch {
      // gone
    }
    for (let i = 0; i < 100 && existsSync(`${exec}/berthd.pid`); i++) await new Promise((r) => setTimeout(r, 100));
  }
  rmSync(dir, { recursive: true, force: true });
  rmSync(exec, { recursive: true, force: true });
});

test("berthd refuses TCP without mutual TLS", { skip }, () => {
  const r = spawnSync(berthd, ["--data-root", join(dir, "root0"), "--exec-root", `${exec}-0`, "-H", `tcp://127.0.0.1:${port}`], {
    encoding: "utf8",
    timeout: 30000,
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /without mutual TLS/);
  assert.ok(!existsSync(join(dir, "root0", "berth.db")), "nothing was created");
});

test("the docker CLI talks to berthd over TLS with a client certificate, and not without", { skip, timeout: 120000 }, async () => {
  ssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca-key.pem",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=berth-test-ca",
  );
  ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server-key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  ssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca-key.pem",
    "-CAcreateserial",
    "-out",
    "server-cert.pem",
    "-days",
    "1",
    "-extfile",
    "server.ext",
  );
  ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "client.csr", "-subj", "/CN=client");
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  ssl(
    "x509",
    "-req",
    "-in",
    "client.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca-key.pem",
    "-CAcreateserial",
    "-out",
    "cert.pem",
    "-days",
    "1",
    "-extfile",
    "client.ext",
  );
  writeFileSync(join(dir, "daemon.json"), "{}");
  daemon = spawn(
    berthd,
    [
      "--config-file",
      join(dir, "daemon.json"),
      "--data-root",
      join(dir, "root"),
      "--exec-root",
      exec,
      "-H",
      `unix://${exec}/berth.sock`,
      "-H",
      `tcp://127.0.0.1:${port}`,
      "--tlsverify",
      "--tlscacert",
      join(dir, "ca.pem"),
      "--tlscert",
      join(dir, "server-cert.pem"),
      "--tlskey",
      join(dir, "server-key.pem"),
    ],
    { stdio: ["ignore", "ignore", "inherit"], detached: true },
  );
  const env = { ...process.env, DOCKER_HOST: `tcp://127.0.0.1:${port}`, DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: dir };
  let ok = false;
  for (let i = 0; i < 100 && !ok; i++) {
    ok = spawnSync("docker", ["version", "--format", "{{.Server.APIVersion}}"], { env, encoding: "utf8" }).stdout.trim() === "1.47";
    if (!ok) await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(ok, "docker --tlsverify reaches berthd");
  const noCert = spawnSync("docker", ["-H", `tcp://127.0.0.1:${port}`, "--tls", "--tlscacert", join(dir, "ca.pem"), "version"], {
    env: { ...process.env, DOCKER_HOST: "", DOCKER_TLS_VERIFY: "", DOCKER_CERT_PATH: "" },
    encoding: "utf8",
    timeout: 30000,
  });
  assert.ok(
    !/Server:/.test(noCert.stdout) || /error|certificate|tls/i.test(noCert.stderr),
    "a client without a certificate gets no answer",
  );
  assert.doesNotMatch(noCert.stdout, /API version:\s+1\.47 \(minimum/);
});
