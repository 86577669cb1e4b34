/**
 * `alias docker=berth`: berth's output, exit codes and files match the docker CLI's against the
 * same daemon (the berthd that scripts/test.sh started). Each check runs the same command line
 * through both clients and compares; times that tick between the two runs are masked.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Result, run, SOCKET, uniq } from "./_lib.ts";

const BERTH = new URL("../../bin/berth", import.meta.url).pathname;
const haveDocker = existsSync("/usr/local/bin/docker");
const skip =
  !SOCKET || process.getuid?.() !== 0 || !haveDocker ? "needs root, the docker CLI and BERTH_TEST_SOCKET (scripts/test.sh)" : false;
const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? "127.0.0.1:5000";

/** docker's messages name the program; berth's name itself. */
function asDocker(s: string): string {
  return s
    .replaceAll("berth: ", "docker: ")
    .replaceAll("command: berth ", "command: docker ")
    .replaceAll("'berth ", "'docker ")
    .replaceAll("Usage:  berth ", "Usage:  docker ");
}

/** Masks what legitimately differs between two runs a moment apart. */
function mask(s: string): string {
  return (
    s
      .replace(/\b(\d+|About an?|Less than a) (second|minute|hour)s? ago\b/g, "<ago>")
      .replace(/Up (\d+ seconds?|About a minute|\d+ minutes|Less than a second)/g, "Up <t>")
      .replace(/ {2,}/g, "  ")
      // ps's C column (CPU share) moves between two calls of `top`.
      .replace(/^(\S+ {2}\d+ {2}\d+ {2})\d+( {2})/gm, "$1<c>$2")
  );
}

function both(args: string[], options: { input?: string } = {}): { docker: Result; berth: Result } {
  return { docker: run("docker", args, options), berth: run(BERTH, args, options) };
}

function same(args: string[], options: { input?: string; raw?: boolean } = {}): Result {
  const r = both(args, options);
  const f = options.raw ? (s: string) => s : mask;
  assert.equal(f(r.berth.out), f(r.docker.out), `stdout of ${args.join(" ")}`);
  assert.equal(r.berth.code, r.docker.code, `exit code of ${args.join(" ")}: ${r.berth.err}`);
  return r.berth;
}

describe("berth prints what the docker CLI prints", { skip }, () => {
  const tag = uniq("e2e-cli");
  const names: string[] = [];
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), "berth-e2e-cli-"));
    run(BERTH, ["pull", "-q", "busybox"]);
  });
  after(() => {
    if (names.length) run(BERTH, ["rm", "-f", ...names]);
    run(BERTH, ["rmi", "-f", `${tag}:a`, `${tag}:b`, `${REGISTRY}/${tag}:1`]);
    rmSync(tmp, { recursive: true, force: true });
  });

  test("image listings, history and inspect", () => {
    assert.equal(run(BERTH, ["tag", "busybox", `${tag}:a`]).code, 0);
    same(["images", tag]);
    same(["images", "-q", tag]);
    same(["images", "--digests", "busybox"]);
    same(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}", tag]);
    same(["images", "--format", "json", tag]);
    same(["history", "busybox"]);
    same(["history", "--no-trunc", "-H=false", "busybox"], { raw: true });
    same(["image", "inspect", "busybox"], { raw: true });
    same(["inspect", "--format", "{{.Id}} {{json .Config.Cmd}} {{.Config.Cmd}}", "busybox"], { raw: true });
    same(["inspect", "--format", "{{json .RootFS}}", `${tag}:a`], { raw: true });
  });

  test("errors: same exit codes and messages", () => {
    for (const args of [
      ["inspect", "no-such-thing-x"],
      ["rmi", "no-such-image-x"],
      ["pull"],
      ["images", "--bogus"],
      ["image", "frob"],
      ["tag", "busybox"],
    ]) {
      const r = both(args);
      assert.equal(r.berth.code, r.docker.code, args.join(" "));
      assert.equal(asDocker(r.berth.err), r.docker.err, args.join(" "));
    }
  });

  test("tag and rmi print the same lines", () => {
    same(["tag", "busybox", `${tag}:b`]);
    const r = run(BERTH, ["rmi", `${tag}:b`]);
    assert.equal(r.out, `Untagged: ${tag}:b\n`);
    assert.equal(run("docker", ["rmi", `${tag}:b`]).code, 1);
  });

  test("save, load and import round trips", () => {
    const file = join(tmp, "img.tar");
    assert.equal(run(BERTH, ["save", "-o", file, `${tag}:a`]).code, 0);
    assert.ok(readFileSync(file).includes(Buffer.from("manifest.json")));
    assert.equal(run(BERTH, ["rmi", `${tag}:a`]).code, 0);
    const l = run(BERTH, ["load", "-i", file]);
    assert.equal(l.code, 0, l.err);
    assert.match(l.out, new RegExp(`Loaded image: ${tag}:a`));
    // Through a shell: a tar on stdout would overflow spawnSync's buffer.
    const file2 = join(tmp, "img2.tar");
    assert.equal(run("sh", ["-c", `"${BERTH}" save "${tag}:a" > "${file2}"`]).code, 0);
    assert.ok(readFileSync(file2).includes(Buffer.from("manifest.json")));
  });

  test("push to the registry fixture prints the digest; pull by digest", () => {
    const ref = `${REGISTRY}/${tag}:1`;
    assert.equal(run(BERTH, ["tag", "busybox", ref]).code, 0);
    const p = run(BERTH, ["push", ref]);
    assert.equal(p.code, 0, p.err);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(p.out)?.[1];
    assert.ok(digest, p.out);
    const q = run(BERTH, ["pull", `${REGISTRY}/${tag}@${digest}`]);
    assert.equal(q.code, 0, q.err);
    assert.ok(q.out.trim().endsWith(`${REGISTRY}/${tag}@${digest}`));
    // A push of the same layers to another repository mounts them from where they were pushed
    // before, even once no local name points there ("Mounted from", as dockerd's v2 metadata).
    for (const n of [`${REGISTRY}/${tag}:1`, `${REGISTRY}/${tag}@${digest}`]) run(BERTH, ["rmi", n]);
    assert.equal(run(BERTH, ["images", "-q", `${REGISTRY}/${tag}`]).out.trim(), "", "no local name in that repository");
    const other = `${REGISTRY}/${tag}-copy:1`;
    assert.equal(run(BERTH, ["tag", "busybox", other]).code, 0);
    const m = run(BERTH, ["push", other]);
    assert.equal(m.code, 0, m.err);
    assert.match(m.out, new RegExp(`Mounted from ${tag.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    assert.equal(run(BERTH, ["rmi", other]).code, 0);
    // --all-tags: one Status line for the repository, as dockerd; the same through both CLIs.
    for (const [cli, word] of [
      [BERTH, "Downloaded newer image"],
      ["docker", "Image is up to date"],
    ] as const) {
      const a = run(cli, ["pull", "-a", `${REGISTRY}/${tag}`]);
      assert.equal(a.code, 0, a.err);
      const status = a.out.split("\n").filter((l) => l.startsWith("Status: "));
      assert.deepEqual(status, [`Status: ${word} for ${REGISTRY}/${tag}`], a.out);
    }
  });

  test("containers: ps, logs, inspect, port, top, exec and wait", () => {
    const c = uniq("e2e-cli-c");
    names.push(c);
    const id = run(BERTH, [
      "run",
      "-d",
      "--name",
      c,
      "-l",
      "e2e=1",
      "-p",
      "127.0.0.1::80",
      "busybox",
      "sh",
      "-c",
      "echo out; echo err >&2; sleep 300",
    ]);
    assert.equal(id.code, 0, id.err);
    assert.match(id.out, /^[0-9a-f]{64}\n$/);
    same(["ps", "--filter", `name=${c}`]);
    same(["ps", "-a", "--no-trunc", "--filter", `name=${c}`]);
    same(["ps", "--filter", "label=e2e=1", "--format", '{{.Names}} {{.Label "e2e"}} {{.Ports}}']);
    same(["ps", "--filter", `name=${c}`, "--format", "json"]);
    same(["logs", c]);
    same(["inspect", c], { raw: true });
    same(["port", c]);
    same(["port", c, "80"]);
    same(["exec", c, "sh", "-c", "echo in; exit 4"]);
    same(["exec", "-i", c, "cat"], { input: "piped\n" });
    same(["top", c]);
    assert.equal(run(BERTH, ["kill", c]).out, `${c}\n`);
    same(["wait", c]);
    same(["ps", "-a", "--filter", `name=${c}`]);
  });

  test("run: exit codes and the pull of a missing image", () => {
    same(["run", "--rm", "busybox", "sh", "-c", "echo x; exit 7"]);
    same(["run", "--rm", "-i", "busybox", "wc", "-c"], { input: "12345" });
    const bad = both(["run", "--rm", "busybox", "no-such-cmd"]);
    assert.equal(bad.berth.code, 127);
    assert.equal(bad.docker.code, 127);
    const flags = both(["run", "--rm", "-m", "1x", "busybox"]);
    assert.equal(flags.berth.code, 125);
    assert.equal(asDocker(flags.berth.err), flags.docker.err);
  });

  test("volumes list and inspect the same", () => {
    const v = uniq("e2e-cli-v");
    assert.equal(run(BERTH, ["volume", "create", v]).out, `${v}\n`);
    try {
      same(["volume", "ls", "--filter", `name=${v}`]);
      same(["volume", "inspect", v], { raw: true });
      same(["volume", "ls", "--format", "json", "--filter", `name=${v}`], { raw: true });
    } finally {
      run(BERTH, ["volume", "rm", v]);
    }
  });

  test("login against the registry fixture stores credentials in --config", () => {
    const cfg = join(tmp, "cfg");
    const r = run(BERTH, ["--config", cfg, "login", "-u", "e2e", "--password-stdin", REGISTRY], { input: "pw\n" });
    if (r.code === 0) {
      assert.match(r.out, /Login Succeeded/);
      const saved = JSON.parse(readFileSync(join(cfg, "config.json"), "utf8"));
      assert.equal(saved.auths[REGISTRY].auth, Buffer.from("e2e:pw").toString("base64"));
      assert.equal(run(BERTH, ["--config", cfg, "logout", REGISTRY]).out, `Removing login credentials for ${REGISTRY}\n`);
    } else {
      // A daemon without /auth for this registry: the error is the daemon's, as docker shows it.
      assert.match(r.err, /Error response from daemon|Error/);
    }
    writeFileSync(join(tmp, "done"), "");
  });
});
