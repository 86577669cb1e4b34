/**
 * Interoperability with other image tools, through a real berthd and the docker CLI:
 * - images berth pushes (pulled ones, and ones berth built itself with `docker import`) are
 *   read by skopeo from the registry fixture under the same digest, and their blobs verify;
 * - an image `docker save` writes is read by skopeo as a docker-archive and as an OCI archive;
 * - an OCI layout written by umoci (no image name in it) loads with `docker load` under the
 *   image ID its config gives, and runs.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { after, before, test } from "node:test";

const root = `/var/tmp/berth-interop-${process.pid}`;
const data = `${root}/data`;
const exec = `/run/berth-interop-${process.pid}`;
const sock = `${exec}/berth.sock`;
const berthd = new URL("../../bin/berthd", import.meta.url).pathname;
const REG = "127.0.0.1:5000";
const tag = `t${process.pid}`;

function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

function registryUp(): boolean {
  return spawnSync("curl", ["-sf", `http://${REG}/v2/library/busybox/tags/list`], { timeout: 10000 }).status === 0;
}

function setupSkip(): string | false {
  if (process.getuid?.() !== 0) return "needs root";
  for (const c of ["docker", "skopeo", "umoci"]) if (!have(c)) return `needs ${c}`;
  if (!existsSync("/bin/busybox")) return "needs busybox-static";
  if (!registryUp()) spawnSync("bash", ["/work/shared/fixtures/registry.sh", "start"], { stdio: "ignore", timeout: 300000 });
  return registryUp() ? false : `needs the registry fixture on ${REG}`;
}
const skip = setupSkip();

let daemon: ChildProcess | undefined;
let logFd = -1;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function sh(cmd: string, args: string[], options: { docker?: boolean } = {}): Run {
  const env = options.docker ? { ...process.env, DOCKER_HOST: `unix://${sock}` } : process.env;
  const r = spawnSync(cmd, args, { env, encoding: "utf8", timeout: 120000 });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function ok(cmd: string, args: string[], options: { docker?: boolean } = {}): string {
  const r = sh(cmd, args, options);
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")} failed: ${r.stderr || r.stdout}`);
  return r.stdout.trim();
}

const docker = (...args: string[]) => ok("docker", args, { docker: true });

function ping(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: sock, path: "/_ping", agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.end();
  });
}

function sha256File(path: string): string {
  return `sha256:${createHash("sha256").update(readFileSync(path)).digest("hex")}`;
}

before(async () => {
  if (skip) return;
  mkdirSync(root, { recursive: true });
  const cfg = `${root}/daemon.json`;
  writeFileSync(cfg, JSON.stringify({ "registry-mirrors": [`http://${REG}`] }));
  logFd = openSync(`${root}/berthd.log`, "a");
  daemon = spawn(berthd, ["--config-file", cfg, "--data-root", data, "--exec-root", exec, "-H", `unix://${sock}`], {
    stdio: ["ignore", logFd, logFd],
    detached: true,
  });
  const end = Date.now() + 20000;
  while (!(await ping())) {
    if (Date.now() > end || daemon.exitCode !== null) throw new Error(`berthd did not come up; see ${root}/berthd.log`);
    await new Promise((r) => setTimeout(r, 50));
  }
});

after(async () => {
  if (skip) return;
  const d = daemon;
  if (d?.pid && d.exitCode === null) {
    const gone = new Promise((r) => d.once("exit", r));
    process.kill(d.pid, "SIGTERM");
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10000).unref())]);
    if (d.exitCode === null) process.kill(d.pid, "SIGKILL");
  }
  if (logFd >= 0) closeSync(logFd);
  spawnSync("sh", ["-c", `grep -o ' ${root}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
  rmSync(root, { recursive: true, force: true });
  rmSync(exec, { recursive: true, force: true });
});

/** Pushes `ref` with the docker CLI and returns the digest berth reported. */
function push(ref: string): string {
  const out = docker("push", ref);
  const m = /digest: (sha256:[a-f0-9]{64}) size: \d+/.exec(out);
  assert.ok(m?.[1], `no digest in the push output: ${out}`);
  return m[1];
}

/** What skopeo sees at `ref`, with the raw manifest copied to a `dir:` layout (blobs verified). */
function skopeoRead(ref: string): { digest: string; layers: string[]; manifestDigest: string } {
  const info = JSON.parse(ok("skopeo", ["inspect", "--tls-verify=false", `docker://${ref}`])) as { Digest: string; Layers: string[] };
  const dir = `${root}/skopeo-${Math.random().toString(36).slice(2)}`;
  ok("skopeo", ["copy", "-q", "--src-tls-verify=false", `docker://${ref}`, `dir:${dir}`]);
  return { digest: info.Digest, layers: info.Layers, manifestDigest: sha256File(`${dir}/manifest.json`) };
}

test("an image berth pushes is what skopeo reads, under the same digest", { skip }, () => {
  docker("pull", "-q", "busybox");
  const ref = `${REG}/interop/busybox:${tag}`;
  docker("tag", "busybox", ref);
  const digest = push(ref);
  const seen = skopeoRead(ref);
  assert.equal(seen.digest, digest);
  assert.equal(seen.manifestDigest, digest, "the manifest bytes hash to the digest berth reported");
  const local = JSON.parse(docker("image", "inspect", ref)) as { RepoDigests: string[] }[];
  assert.ok(local[0]?.RepoDigests.includes(`${REG}/interop/busybox@${digest}`), "RepoDigests records the pushed digest");
});

test("an image berth built itself (docker import) pushes and verifies with skopeo", { skip }, () => {
  const src = `${root}/import-src`;
  mkdirSync(`${src}/etc`, { recursive: true });
  writeFileSync(`${src}/etc/interop`, `made by berth ${process.pid}\n`);
  const tarball = `${root}/import.tar`;
  ok("tar", ["-C", src, "-cf", tarball, "."]);
  const ref = `${REG}/interop/imported:${tag}`;
  docker("import", tarball, ref);
  const digest = push(ref);
  const seen = skopeoRead(ref);
  assert.equal(seen.digest, digest);
  assert.equal(seen.manifestDigest, digest);
  const layers = (JSON.parse(docker("image", "inspect", ref)) as { RootFS: { Layers: string[] } }[])[0]?.RootFS.Layers ?? [];
  assert.equal(seen.layers.length, layers.length);
});

test("docker save output reads in skopeo as a docker-archive and as an OCI archive", { skip }, () => {
  const out = `${root}/save.tar`;
  docker("pull", "-q", "busybox");
  docker("save", "-o", out, "busybox");
  const id = docker("image", "inspect", "--format", "{{.Id}}", "busybox");
  const asDocker = JSON.parse(ok("skopeo", ["inspect", "--config", `docker-archive:${out}`])) as { rootfs: { diff_ids: string[] } };
  const asOci = JSON.parse(ok("skopeo", ["inspect", "--config", `oci-archive:${out}`])) as { rootfs: { diff_ids: string[] } };
  const diffIds = JSON.parse(docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", "busybox")) as string[];
  assert.deepEqual(asDocker.rootfs.diff_ids, diffIds);
  assert.deepEqual(asOci.rootfs.diff_ids, diffIds);
  // Untrimmed: the config's own trailing newline is part of what is hashed.
  const raw = sh("skopeo", ["inspect", "--raw", "--config", `oci-archive:${out}`]).stdout;
  assert.equal(`sha256:${createHash("sha256").update(raw).digest("hex")}`, id, "the config bytes are the image ID");
});

test("an OCI layout written by umoci loads with docker load and runs", { skip }, () => {
  const layout = `${root}/umoci-layout`;
  const bundle = `${root}/umoci-bundle`;
  ok("umoci", ["init", "--layout", layout]);
  ok("umoci", ["new", "--image", `${layout}:interop`]);
  ok("umoci", ["unpack", "--image", `${layout}:interop`, bundle]);
  mkdirSync(`${bundle}/rootfs/bin`, { recursive: true });
  copyFileSync("/bin/busybox", `${bundle}/rootfs/bin/busybox`);
  ok("chmod", ["755", `${bundle}/rootfs/bin/busybox`]);
  symlinkSync("busybox", `${bundle}/rootfs/bin/sh`);
  ok("umoci", ["repack", "--image", `${layout}:interop`, bundle]);
  ok("umoci", [
    "config",
    "--image",
    `${layout}:interop`,
    "--config.cmd",
    "sh",
    "--config.env",
    "PATH=/bin",
    "--os",
    "linux",
    "--architecture",
    "amd64",
  ]);
  // The config digest is the image ID berth must load the layout under.
  const index = JSON.parse(readFileSync(`${layout}/index.json`, "utf8")) as { manifests: { digest: string }[] };
  const mdig = index.manifests[0]?.digest ?? "";
  const manifest = JSON.parse(readFileSync(`${layout}/blobs/sha256/${mdig.slice(7)}`, "utf8")) as { config: { digest: string } };
  const configDigest = manifest.config.digest;
  const archive = `${root}/umoci.tar`;
  ok("tar", ["-C", layout, "-cf", archive, "."]);
  const out = docker("load", "-i", archive);
  // The layout names the image only "interop" (not a reference): berth loads it by ID, as docker does.
  assert.equal(out, `Loaded image ID: ${configDigest}`);
  const ids = docker("images", "-q", "--no-trunc");
  assert.ok(ids.split("\n").includes(configDigest), `image ${configDigest} is listed: ${ids}`);
  const run = docker("run", "--rm", "--network", "none", configDigest, "/bin/sh", "-c", "echo ok");
  assert.equal(run, "ok");
  docker("rmi", configDigest);
});
