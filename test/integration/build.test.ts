// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile variable syntax in test inputs
/**
 * Dockerfile builds through the real docker CLI's classic builder (DOCKER_BUILDKIT=0) against
 * a berthd of our own: RUN, COPY/ADD, the cache (and that it survives a restart), multi-stage
 * builds, .dockerignore, heredocs, RUN --mount, secrets through berth's `secrets` parameter,
 * reproducible layers, errors with exit codes, and `builder prune`.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { waitFor } from "./_wait.ts";

const root = `/var/tmp/berth-buildit-${process.pid}`;
const exec = `/run/berth-buildit-${process.pid}`;
const sock = `${exec}/berth.sock`;
const berthd = new URL("../../bin/berthd", import.meta.url).pathname;
const registryUp = spawnSync("curl", ["-sf", "http://127.0.0.1:5000/v2/"]).status === 0;
const hasDocker = spawnSync("docker", ["--version"]).status === 0;
const skip =
  process.getuid?.() !== 0
    ? "needs root"
    : !registryUp
      ? "needs the registry fixture on 127.0.0.1:5000"
      : !hasDocker
        ? "needs the docker CLI"
        : false;

let daemon: ChildProcess | undefined;
let tmp = "";

function envOf(): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_BUILDKIT: "0" };
}

function d(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync("docker", args, { env: envOf(), encoding: "utf8", timeout: 180000 });
  return { code: r.status ?? -1, out: (r.stdout ?? "").trim(), err: (r.stderr ?? "").trim() };
}

async function start(): Promise<void> {
  daemon = spawn(
    berthd,
    ["--config-file", `${root}/daemon.json`, "--data-root", `${root}/data`, "--exec-root", exec, "-H", `unix://${sock}`],
    { stdio: ["ignore", "ignore", "inherit"], detached: true },
  );
  if (!(await waitFor(() => spawnSync("docker", ["version"], { env: envOf() }).status === 0, 20000)))
    throw new Error("berthd did not come up");
}

async function stop(): Promise<void> {
  if (!daemon?.pid) return;
  try {
    process.kill(daemon.pid, "SIGTERM");
  } catch {
    // already gone
  }
  await waitFor(() => !existsSync(sock), 10000);
  daemon = undefined;
}

/** A build context directory with the given files. */
function context(name: string, files: Record<string, string>): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(dir, p, ".."), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  return dir;
}

function build(dir: string, ...extra: string[]): { code: number; out: string; err: string } {
  return d("build", ...extra, dir);
}

before(async () => {
  if (skip) return;
  mkdirSync(root, { recursive: true });
  tmp = mkdtempSync("/tmp/berth-buildit-");
  writeFileSync(`${root}/daemon.json`, JSON.stringify({ "registry-mirrors": ["http://127.0.0.1:5000"] }));
  await start();
  assert.equal(d("pull", "-q", "busybox").code, 0);
});

after(async () => {
  if (skip) return;
  await stop();
  spawnSync("sh", ["-c", `grep -o ' ${root}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
  spawnSync("sh", ["-c", `grep -o ' ${exec}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
  rmSync(root, { recursive: true, force: true });
  rmSync(exec, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
});

test("RUN, CMD, the cache, --no-cache and history", { skip }, () => {
  const c = context("basic", {
    Dockerfile: 'FROM busybox\nRUN echo one > /one.txt\nRUN ["sh", "-c", "echo two > /two.txt"]\nCMD cat /one.txt /two.txt\n',
  });
  const first = build(c, "-t", "bt-basic");
  assert.equal(first.code, 0, first.err);
  assert.match(first.out, /Step 1\/4 : FROM busybox/);
  assert.match(first.out, / ---> Running in [0-9a-f]{12}/);
  assert.match(first.out, /Removing intermediate container [0-9a-f]{12}/);
  assert.match(first.out, /Successfully built [0-9a-f]{12}\nSuccessfully tagged bt-basic:latest/);
  assert.equal(d("run", "--rm", "bt-basic").out, "one\ntwo");
  const id1 = d("build", "-q", "-t", "bt-basic", c).out;
  assert.match(id1, /^sha256:[0-9a-f]{64}$/);
  const again = build(c, "-t", "bt-basic");
  assert.match(again.out, / ---> Using cache/);
  assert.equal(d("build", "-q", c).out, id1, "a cached rebuild gives the same image");
  assert.notEqual(d("build", "-q", "--no-cache", c).out, id1);
  const h = d("history", "--no-trunc", "--format", "{{.CreatedBy}}", "bt-basic").out;
  assert.match(h, /\/bin\/sh -c #\(nop\) {2}CMD \["\/bin\/sh" "-c" "cat \/one.txt \/two.txt"\]/);
  assert.match(h, /\/bin\/sh -c echo one > \/one.txt/);
  assert.equal(d("inspect", "-f", "{{len .RootFS.Layers}}", "bt-basic").out, "3");
});

test("a failing RUN fails the build with its exit code; parse errors name the line", { skip }, () => {
  const c = context("fail", {
    Dockerfile: "FROM busybox\nRUN echo before; exit 7\n",
    "Dockerfile.parse": "FROM busybox\nRUN true\nNOPE x\n",
  });
  const r = build(c);
  assert.equal(r.code, 7);
  assert.match(r.out + r.err, /The command '\/bin\/sh -c echo before; exit 7' returned a non-zero code: 7/);
  assert.match(r.out, /before/);
  const q = d("build", "-q", c);
  assert.equal(q.code, 7);
  assert.match(q.err, /before/, "quiet mode shows the output of a failed build");
  const p = d("build", "-f", join(c, "Dockerfile.parse"), c);
  assert.notEqual(p.code, 0);
  assert.match(p.err, /line 3: unknown instruction: NOPE/);
});

test("COPY and ADD: globs, directories, --chown/--chmod, tar unpacking, .dockerignore, content-keyed cache", { skip }, () => {
  const c = context("copy", {
    "hello.txt": "v1\n",
    "dir/sub/f.txt": "deep\n",
    "secret.key": "secret\n",
    "logs/a.log": "log\n",
    "logs/keep.log": "keep\n",
    ".dockerignore": "# comment\nsecret.key\nlogs/*.log\n!logs/keep.log\n",
    Dockerfile: [
      "FROM busybox",
      "WORKDIR /app",
      "COPY hello.txt .",
      "COPY dir /app/dir",
      "COPY --chown=nobody:nogroup --chmod=600 *.txt /owned/",
      "ADD arch.tar /unpacked/",
      "COPY . /ctx/",
      'CMD ["sh", "-c", "cat /app/hello.txt /app/dir/sub/f.txt /unpacked/t.txt; pwd; ls -a /ctx /ctx/logs; stat -c \'%U:%G %a\' /owned/hello.txt"]',
      "",
    ].join("\n"),
  });
  mkdirSync(join(tmp, "tarsrc"), { recursive: true });
  writeFileSync(join(tmp, "tarsrc/t.txt"), "intar\n");
  assert.equal(spawnSync("tar", ["-C", join(tmp, "tarsrc"), "-cf", join(c, "arch.tar"), "t.txt"]).status, 0);
  const id1 = d("build", "-q", "-t", "bt-copy", c).out;
  const out = d("run", "--rm", "bt-copy").out;
  assert.match(out, /v1\ndeep\nintar\n\/app/);
  assert.doesNotMatch(out, /secret\.key/);
  assert.doesNotMatch(out, /a\.log/);
  assert.match(out, /keep\.log/);
  assert.match(out, /nobody:nogroup 600/);
  spawnSync("touch", ["-d", "2001-01-01", join(c, "hello.txt")]);
  assert.equal(d("build", "-q", c).out, id1, "mtime alone does not bust the cache");
  writeFileSync(join(c, "secret.key"), "changed but ignored\n");
  assert.equal(d("build", "-q", c).out, id1, "ignored files do not bust the cache");
  writeFileSync(join(c, "hello.txt"), "v2\n");
  const id2 = d("build", "-q", "-t", "bt-copy", c).out;
  assert.notEqual(id2, id1);
  assert.match(d("run", "--rm", "bt-copy").out, /^v2/);
});

test("sources never leave the context: ../ paths and symlinks resolve inside it", { skip }, () => {
  const c = context("escape", { "inside.txt": "inside\n", Dockerfile: "FROM busybox\nCOPY ../../../etc/passwd /x\n" });
  const r = build(c);
  assert.notEqual(r.code, 0);
  assert.match(r.err + r.out, /outside the build context/);
  symlinkSync("/etc", join(c, "etc-link"));
  writeFileSync(join(c, "Dockerfile.link"), "FROM busybox\nCOPY etc-link/passwd /x\n");
  const l = build(c, "-f", join(c, "Dockerfile.link"));
  assert.notEqual(l.code, 0, "a symlink to /etc resolves inside the context, where there is no passwd");
  symlinkSync("../../../../../../etc/hostname", join(c, "up-link"));
  writeFileSync(join(c, "Dockerfile.dir"), "FROM busybox\nCOPY . /ctx/\nCMD readlink /ctx/up-link\n");
  assert.equal(build(c, "-f", join(c, "Dockerfile.dir"), "-t", "bt-escape").code, 0);
  assert.equal(d("run", "--rm", "bt-escape").out, "../../../../../../etc/hostname", "symlinks inside a copied directory stay symlinks");
});

test("multi-stage: COPY --from name and index, --target, unused stages skipped, ARG before FROM", { skip }, () => {
  const c = context("multi", {
    Dockerfile: [
      "ARG BASE=busybox",
      "FROM ${BASE} AS compiler",
      "RUN mkdir -p /out && printf '#!/bin/sh\\necho built-binary\\n' > /out/hello && chmod +x /out/hello",
      "RUN dd if=/dev/zero of=/out/bigjunk bs=1M count=2 2>/dev/null",
      "FROM busybox AS unused",
      "RUN echo THIS-STAGE-MUST-NOT-RUN",
      "FROM ${BASE}",
      "COPY --from=compiler /out/hello /hello",
      "COPY --from=0 /out/hello /hello0",
      'CMD ["/hello"]',
      "",
    ].join("\n"),
  });
  const r = build(c, "-t", "bt-ms");
  assert.equal(r.code, 0, r.err);
  assert.doesNotMatch(r.out, /THIS-STAGE-MUST-NOT-RUN/);
  assert.equal(d("run", "--rm", "bt-ms").out, "built-binary");
  assert.equal(d("run", "--rm", "bt-ms", "/hello0").out, "built-binary");
  assert.notEqual(d("run", "--rm", "bt-ms", "ls", "/out/bigjunk").code, 0);
  assert.equal(build(c, "-q", "--target", "compiler", "-t", "bt-ms-compiler").code, 0);
  assert.equal(d("run", "--rm", "bt-ms-compiler", "ls", "/out/bigjunk").out, "/out/bigjunk");
  assert.notEqual(build(c, "--target", "nope").code, 0);
});

test("ARG, ENV and substitution; build args reach RUN; labels; unused build args warn", { skip }, () => {
  const c = context("args", {
    Dockerfile: [
      "FROM busybox",
      "ARG WHO=nobody",
      "ARG UNSET",
      "ENV GREETING=hello DIR=/srv",
      "WORKDIR ${DIR}/app",
      'RUN echo "$GREETING ${WHO} ${UNSET:-fallback} ${WHO:+set}" > /msg',
      "LABEL who=$WHO",
      "",
    ].join("\n"),
  });
  const r = build(c, "--build-arg", "WHO=you", "--build-arg", "EXTRA=1", "--label", "from-cli=yes", "-t", "bt-args");
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /\[Warning\] One or more build-args \[EXTRA\] were not consumed/);
  assert.equal(d("run", "--rm", "bt-args", "cat", "/msg").out, "hello you fallback set");
  assert.equal(d("run", "--rm", "bt-args", "pwd").out, "/srv/app");
  assert.equal(d("inspect", "-f", '{{index .Config.Labels "who"}} {{index .Config.Labels "from-cli"}}', "bt-args").out, "you yes");
  assert.match(d("history", "--no-trunc", "bt-args").out, /\|1 WHO=you \/bin\/sh -c echo/);
  // ENTRYPOINT and CMD forms.
  const e = context("ep", { Dockerfile: 'FROM busybox\nENTRYPOINT ["echo", "E:"]\nCMD ["hello world"]\n' });
  assert.equal(build(e, "-q", "-t", "bt-ep").code, 0);
  assert.equal(d("run", "--rm", "bt-ep").out, "E: hello world");
  assert.equal(d("run", "--rm", "bt-ep", "hola").out, "E: hola");
});

test("heredocs, SHELL, RUN --mount=type=cache|tmpfs|bind, --network=none", { skip }, () => {
  const c = context("mounts", {
    "data/in.txt": "bound\n",
    Dockerfile: [
      "FROM busybox",
      "RUN <<EOF",
      "echo from-heredoc > /hd",
      "EOF",
      "COPY <<-EOT /etc/conf",
      "\tkey=value",
      "\tEOT",
      "RUN --mount=type=cache,target=/cache echo x >> /cache/count && wc -l < /cache/count > /cache-lines",
      "RUN --mount=type=tmpfs,target=/scratch touch /scratch/f && test -f /scratch/f",
      "RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/in.txt > /bound",
      'RUN --network=none sh -c \'ls /sys/class/net | sort | tr "\\n" " " > /nets\'',
      'SHELL ["/bin/sh", "-e", "-c"]',
      "RUN echo shell-ok > /shell",
      "",
    ].join("\n"),
  });
  const r = build(c, "-t", "bt-mounts");
  assert.equal(r.code, 0, r.out + r.err);
  const out = d(
    "run",
    "--rm",
    "bt-mounts",
    "sh",
    "-c",
    "cat /hd /etc/conf /bound /shell /nets; echo; ls -d /scratch /cache /mnt/data 2>/dev/null | wc -l",
  ).out;
  assert.match(out, /from-heredoc\nkey=value\nbound\nshell-ok\nlo \n/);
  assert.match(out, /\n0$/, "mount targets do not end up in the image");
  assert.equal(build(c, "--no-cache", "-q").code, 0);
  assert.equal(d("run", "--rm", "bt-mounts", "cat", "/cache-lines").out, "1");
});

test("secrets through the secrets query parameter are mounted and never stored", { skip }, async () => {
  const c = context("secret", {
    Dockerfile:
      "FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /copied-proof && test ! -e /keep\nRUN --mount=type=secret,id=tok,env=TOK sh -c 'echo ${#TOK} > /len'\n",
  });
  const tar = spawnSync("tar", ["-C", c, "-cf", "-", "."]).stdout;
  const body = await new Promise<string>((resolve, reject) => {
    const q = new URLSearchParams({ t: "bt-secret", secrets: JSON.stringify({ tok: Buffer.from("s3cr3t").toString("base64") }) });
    const req = request(
      { socketPath: sock, method: "POST", path: `/v1.41/build?${q}`, headers: { "Content-Type": "application/x-tar" } },
      (res) => {
        let s = "";
        res.on("data", (x: Buffer) => {
          s += x.toString();
        });
        res.on("end", () => resolve(s));
      },
    );
    req.on("error", reject);
    req.end(tar);
  });
  assert.match(body, /"aux":\{"ID":"sha256:/, body);
  assert.equal(d("run", "--rm", "bt-secret", "cat", "/copied-proof").out, "s3cr3t");
  assert.equal(d("run", "--rm", "bt-secret", "cat", "/len").out, "6");
  assert.notEqual(d("run", "--rm", "bt-secret", "ls", "/run/secrets/tok").code, 0);
  const save = spawnSync("docker", ["save", "bt-secret"], { env: envOf(), maxBuffer: 64 * 1024 * 1024 });
  assert.equal(save.status, 0);
});

test("berth build --secret: a file (src=) and an environment variable (env=) reach RUN and stay out of the image", { skip }, () => {
  const c = context("secret-cli", {
    Dockerfile:
      "FROM busybox\n" +
      "RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /sum-file\n" +
      "RUN --mount=type=secret,id=pw,required=true sha256sum /run/secrets/pw | cut -d' ' -f1 > /sum-env\n" +
      "RUN --mount=type=secret,id=pw,env=PW sh -c 'echo ${#PW} > /len'\n",
  });
  const secretFile = join(tmp, "tok.txt");
  writeFileSync(secretFile, "file-s3cr3t");
  const berth = new URL("../../bin/berth", import.meta.url).pathname;
  const r = spawnSync(
    berth,
    ["build", "-q", "-t", "bt-secret-cli", "--secret", `id=tok,src=${secretFile}`, "--secret", "id=pw,env=BT_PW", c],
    {
      env: { ...envOf(), BT_PW: "env-pw" },
      encoding: "utf8",
      timeout: 180000,
    },
  );
  assert.equal(r.status, 0, r.stderr);
  const sum = (s: string) => createHash("sha256").update(s).digest("hex");
  assert.equal(d("run", "--rm", "bt-secret-cli", "cat", "/sum-file").out, sum("file-s3cr3t"));
  assert.equal(d("run", "--rm", "bt-secret-cli", "cat", "/sum-env").out, sum("env-pw"));
  assert.equal(d("run", "--rm", "bt-secret-cli", "cat", "/len").out, "6");
  assert.notEqual(d("run", "--rm", "bt-secret-cli", "ls", "/run/secrets/tok").code, 0);
  // Neither secret is in any layer (decompressed) or in the config.
  const save = spawnSync("docker", ["save", "bt-secret-cli"], { env: envOf(), maxBuffer: 64 * 1024 * 1024 });
  assert.equal(save.status, 0);
  const files = mkdtempSync(join(tmp, "save-"));
  assert.equal(spawnSync("tar", ["-C", files, "-xf", "-"], { input: save.stdout }).status, 0);
  let seen = 0;
  for (const f of readdirSync(files, { recursive: true, encoding: "utf8" })) {
    const p = join(files, f);
    if (!statSync(p).isFile()) continue;
    let data = readFileSync(p);
    if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
    seen++;
    assert.ok(!data.includes("file-s3cr3t") && !data.includes("env-pw"), `a secret is stored in ${f}`);
  }
  assert.ok(seen >= 3);
  // A missing secret file fails before anything is sent.
  const bad = spawnSync(berth, ["build", "--secret", `id=tok,src=${join(tmp, "nope")}`, c], { env: envOf(), encoding: "utf8" });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /secret "tok": cannot read/);
  d("rmi", "bt-secret-cli");
});

test("a layer over the in-memory bound (64 MiB) is compressed from its committed snapshot; layers stay consistent", { skip }, () => {
  const c = context("big-layer", {
    Dockerfile: "FROM busybox\nRUN head -c 70000000 /dev/zero | tr '\\0' a > /big && sha256sum /big > /big.sum\nRUN echo small > /small\n",
  });
  const r = d("build", "-q", "-t", "bt-big", c);
  assert.equal(r.code, 0, r.err);
  assert.equal(d("run", "--rm", "bt-big", "sha256sum", "-c", "/big.sum").code, 0);
  assert.equal(d("run", "--rm", "bt-big", "cat", "/small").out, "small");
  // The blobs behind the manifest exist and match their digests (save reads every one).
  const save = spawnSync("docker", ["save", "bt-big"], { env: envOf(), maxBuffer: 512 * 1024 * 1024 });
  assert.equal(save.status, 0, String(save.stderr));
  const files = mkdtempSync(join(tmp, "big-save-"));
  assert.equal(spawnSync("tar", ["-C", files, "-xf", "-"], { input: save.stdout, maxBuffer: 512 * 1024 * 1024 }).status, 0);
  for (const f of readdirSync(join(files, "blobs/sha256"))) {
    const data = readFileSync(join(files, "blobs/sha256", f));
    assert.equal(createHash("sha256").update(data).digest("hex"), f);
  }
  // Rebuilt from the cache: the same image.
  assert.equal(d("build", "-q", "-t", "bt-big", c).out, r.out);
  d("rmi", "bt-big");
});

test("SOURCE_DATE_EPOCH gives reproducible images", { skip }, () => {
  const c = context("repro", { "f.txt": "same\n", Dockerfile: "FROM busybox\nCOPY f.txt /f.txt\nRUN echo built > /built\n" });
  const a = d("build", "-q", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000", c).out;
  const b = d("build", "-q", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000", c).out;
  assert.match(a, /^sha256:/);
  assert.equal(a, b, "two uncached builds with SOURCE_DATE_EPOCH are identical");
  assert.equal(d("inspect", "-f", "{{.Created}}", a).out, "2023-11-14T22:13:20Z");
});

test("ONBUILD triggers run in the child build; ADD from a URL with --checksum", { skip }, async () => {
  const parent = context("onbuild-parent", { Dockerfile: "FROM busybox\nONBUILD RUN echo triggered > /trigger\n" });
  assert.equal(build(parent, "-q", "-t", "bt-onbuild").code, 0);
  const payload = "downloaded\n";
  const sum = createHash("sha256").update(payload).digest("hex");
  // The file server runs in its own process: the test blocks in spawnSync while docker builds.
  const www = join(tmp, "www");
  mkdirSync(join(www, "files"), { recursive: true });
  writeFileSync(join(www, "files/payload.txt"), payload);
  const port = 20000 + (process.pid % 20000);
  const server: ChildProcess = spawn("python3", ["-m", "http.server", "--bind", "127.0.0.1", "--directory", www, String(port)], {
    stdio: "ignore",
  });
  try {
    assert.ok(await waitFor(() => spawnSync("curl", ["-sf", `http://127.0.0.1:${port}/files/payload.txt`]).status === 0, 10000));
    const child = context("onbuild-child", {
      Dockerfile: `FROM bt-onbuild\nADD --checksum=sha256:${sum} http://127.0.0.1:${port}/files/payload.txt /dl/\n`,
    });
    const r = build(child, "-t", "bt-onbuild-child");
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /# Executing 1 build trigger/);
    assert.equal(d("run", "--rm", "bt-onbuild-child", "cat", "/trigger", "/dl/payload.txt").out, "triggered\ndownloaded");
    assert.equal(d("inspect", "-f", "{{json .Config.OnBuild}}", "bt-onbuild-child").out, "null");
    const bad = context("bad-sum", {
      Dockerfile: `FROM busybox\nADD --checksum=sha256:${"0".repeat(64)} http://127.0.0.1:${port}/files/payload.txt /x\n`,
    });
    const b = build(bad);
    assert.notEqual(b.code, 0);
    assert.match(b.out + b.err, /digest mismatch/);
  } finally {
    server.kill();
  }
});

test("independent stages run once each, identical steps once, output in stage order", { skip }, () => {
  const c = context("parallel", {
    Dockerfile: [
      "FROM busybox AS a",
      "RUN echo a-out && sleep 1 && echo a > /a",
      "FROM busybox AS b",
      "RUN echo b-out && sleep 1 && echo b > /b",
      "FROM busybox AS c",
      "RUN echo same-work > /same",
      "FROM busybox AS d",
      "RUN echo same-work > /same",
      "FROM busybox",
      "COPY --from=a /a /a",
      "COPY --from=b /b /b",
      "COPY --from=c /same /c",
      "COPY --from=d /same /d",
      "",
    ].join("\n"),
  });
  const r = build(c, "--no-cache", "-t", "bt-parallel");
  assert.equal(r.code, 0, r.err);
  assert.equal((r.out.match(/Running in/g) ?? []).length, 3, "the two identical RUN steps ran once");
  const at = (t: string) => r.out.indexOf(t);
  assert.ok(at("Step 2/13") < at("a-out") && at("a-out") < at("Step 3/13"), r.out);
  assert.ok(at("Step 4/13") < at("b-out") && at("b-out") < at("Step 5/13"), r.out);
  assert.equal(d("run", "--rm", "bt-parallel", "cat", "/a", "/b", "/c", "/d").out, "a\nb\nsame-work\nsame-work");
});

test("Dockerfile from stdin (-f -, whose context tar has no end marker), --compress, bare Dockerfile body", { skip }, () => {
  const c = context("stdin", { "f.txt": "in-context\n" });
  const df = "FROM busybox\nCOPY . /ctx/\nCMD ls -a /ctx\n";
  const r = spawnSync("docker", ["build", "-q", "-t", "bt-stdin", "-f", "-", c], { env: envOf(), input: df, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(d("run", "--rm", "bt-stdin").out, ".\n..\nf.txt", "the injected Dockerfile and .dockerignore stay out");
  const z = spawnSync("docker", ["build", "-q", "--compress", "-f", "-", c], { env: envOf(), input: df, encoding: "utf8" });
  assert.equal(z.status, 0, z.stderr);
  const bare = spawnSync("docker", ["build", "-q", "-"], { env: envOf(), input: "FROM busybox\nRUN echo bare\n", encoding: "utf8" });
  assert.equal(bare.status, 0, bare.stderr);
});

test("SIGKILL of berthd during a RUN: at restart the step's container, mounts and snapshots are gone", { skip }, async () => {
  // A duration nothing else on the machine uses, so that pgrep finds only this RUN.
  const secs = 6000 + (process.pid % 900);
  const c = context("crash", { Dockerfile: `FROM busybox\nRUN echo crash-marker-start && sleep ${secs}\n` });
  const child = spawn("docker", ["build", "--no-cache", c], { env: envOf(), stdio: ["ignore", "pipe", "ignore"] });
  let out = "";
  child.stdout?.on("data", (b: Buffer) => {
    out += b.toString();
  });
  assert.ok(await waitFor(() => out.includes("crash-marker-start"), 60000), out);
  const sleeping = () => spawnSync("pgrep", ["-f", `sleep ${secs}`]).status === 0;
  assert.ok(await waitFor(sleeping, 10000));
  process.kill(daemon?.pid ?? 0, "SIGKILL");
  daemon = undefined;
  await new Promise((r) => child.on("close", r));
  await start();
  assert.ok(await waitFor(() => !sleeping(), 10000), "the RUN container was stopped");
  const mounts = spawnSync("sh", ["-c", `grep -E ' (${root}|${exec})/(data/build|build)' /proc/mounts | wc -l`], {
    encoding: "utf8",
  }).stdout.trim();
  assert.equal(mounts, "0");
  const ok = context("after-crash", { Dockerfile: "FROM busybox\nRUN echo fine\n" });
  assert.equal(build(ok, "-q").code, 0);
});

test("the cache survives a daemon restart; builder prune empties it", { skip }, async () => {
  const c = context("restart", { Dockerfile: "FROM busybox\nRUN echo cached > /c\n" });
  const id = d("build", "-q", c).out;
  await stop();
  await start();
  const r = build(c);
  assert.match(r.out, / ---> Using cache/);
  assert.equal(d("build", "-q", c).out, id);
  const p = d("builder", "prune", "-af");
  assert.equal(p.code, 0, p.err);
  assert.match(p.out, /Total reclaimed space/);
  assert.doesNotMatch(build(c).out, /Using cache/);
});
