/**
 * From containers to images through real clients: `diff`, `cp` (both ways, `-`, `-L`, `-a`,
 * `path/.`, running and stopped containers), `commit` (`-a`, `-m`, `-c`, pause, history) and
 * `export`; hostile archives sent with `cp -` (SECURITY.md items 1-5 for PUT /archive); and a
 * container swapping a path component between a directory and a symlink to `/` while `docker
 * cp` copies through it (item 22, CVE-2018-15664): no host file is read or written.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { encodeHeader, END_OF_ARCHIVE, type HeaderSpec, padding } from "../../src/archive/mod.ts";
import { clients, ok, run, SOCKET, uniq, until } from "./_lib.ts";

const skip = !SOCKET || process.getuid?.() !== 0 ? "needs root and BERTH_TEST_SOCKET (scripts/test.sh)" : false;

/** A tar built entry by entry, names and targets taken verbatim (hostile ones included). */
function tarOf(entries: (Partial<HeaderSpec> & { name: string; data?: string })[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? "");
    const spec: HeaderSpec = {
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: 1_700_000_000,
      ...e,
      size: e.type && e.type !== "file" ? 0 : data.length,
    };
    parts.push(encodeHeader(spec));
    if (spec.type === "file") parts.push(data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

/** Runs a client with binary stdin (a tar) and returns the result. */
function runWithInput(client: string, args: string[], input: Buffer): { code: number; out: string; err: string } {
  const r = spawnSync(client, args, {
    env: { ...process.env, DOCKER_HOST: `unix://${SOCKET}`, BERTH_HOST: `unix://${SOCKET}` },
    input,
    timeout: 60000,
  });
  return { code: r.status ?? -1, out: (r.stdout ?? Buffer.alloc(0)).toString(), err: (r.stderr ?? Buffer.alloc(0)).toString() };
}

/** Names and contents of every file under a host directory (to prove nothing changed there). */
function snapshotDir(dir: string): string {
  const h = createHash("sha256");
  const walk = (d: string) => {
    for (const n of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, n.name);
      h.update(`${p}\n`);
      if (n.isDirectory()) walk(p);
      else if (n.isFile()) h.update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest("hex");
}

for (const client of clients()) {
  const cname = client.endsWith("berth") ? "berth" : "docker";
  describe(`diff, cp, commit, export via ${cname}`, { skip }, () => {
    const made: string[] = [];
    const images: string[] = [];
    let tmp = "";
    const n = (p: string) => {
      const x = uniq(`e2e-arch-${p}`);
      made.push(x);
      return x;
    };
    before(() => {
      tmp = mkdtempSync(join(tmpdir(), "berth-e2e-arch-"));
      ok(client, ["pull", "-q", "busybox"]);
    });
    after(() => {
      if (made.length) run(client, ["rm", "-f", ...made]);
      for (const i of images) run(client, ["rmi", "-f", i]);
      rmSync(tmp, { recursive: true, force: true });
    });

    test("diff reports added, changed and deleted paths with their parents", () => {
      const c = n("diff");
      ok(client, [
        "run",
        "--name",
        c,
        "busybox",
        "sh",
        "-c",
        "echo data > /newfile; rm /etc/group; mkdir -p /d/e; echo x > /d/e/y; touch /tmp/t",
      ]);
      const lines = ok(client, ["diff", c]).split("\n");
      for (const l of ["A /newfile", "C /etc", "D /etc/group", "A /d", "A /d/e", "A /d/e/y", "C /tmp", "A /tmp/t"])
        assert.ok(lines.includes(l), `${l} in ${lines}`);
      // runc's mount points (Docker's hidden init layer) are not changes.
      for (const hidden of ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/proc", "/sys", "/dev"]) {
        assert.ok(!lines.some((l) => l.endsWith(` ${hidden}`)), `${hidden} must not be listed: ${lines}`);
      }
      // Parents are reported before their children, in path order.
      assert.ok(lines.indexOf("C /etc") < lines.indexOf("D /etc/group"));
    });

    test("cp from a stopped container: files, directories, path/., symlinks, -L and - (tar on stdout)", () => {
      const c = n("cpout");
      ok(client, [
        "run",
        "--name",
        c,
        "busybox",
        "sh",
        "-c",
        "mkdir -p /d/sub; echo x > /d/y; echo z > /d/sub/z; ln -s /d /lnk; ln -s y /d/rel",
      ]);
      ok(client, ["cp", `${c}:/d`, join(tmp, "d1")]);
      assert.equal(readFileSync(join(tmp, "d1/y"), "utf8"), "x\n");
      assert.equal(readFileSync(join(tmp, "d1/sub/z"), "utf8"), "z\n");
      mkdirSync(join(tmp, "into"));
      ok(client, ["cp", `${c}:/d/.`, join(tmp, "into")]);
      assert.ok(existsSync(join(tmp, "into/y")) && existsSync(join(tmp, "into/sub/z")), "path/. copies the contents");
      ok(client, ["cp", `${c}:/lnk`, join(tmp, "lnk")]);
      assert.equal(
        spawnSync("readlink", [join(tmp, "lnk")])
          .stdout.toString()
          .trim(),
        "/d",
      );
      ok(client, ["cp", "-L", `${c}:/lnk`, join(tmp, "lnkL")]);
      assert.equal(readFileSync(join(tmp, "lnkL/y"), "utf8"), "x\n");
      const list = spawnSync("sh", ["-c", `${client} cp ${c}:/d - | tar tf -`], {
        env: { ...process.env, DOCKER_HOST: `unix://${SOCKET}` },
      });
      assert.deepEqual(list.stdout.toString().trim().split("\n").sort(), ["d/", "d/rel", "d/sub/", "d/sub/z", "d/y"]);
      const missing = run(client, ["cp", `${c}:/nope`, join(tmp, "nope")]);
      assert.notEqual(missing.code, 0);
      assert.match(missing.err, /Could not find the file \/nope|No such container:path/);
    });

    test("cp into running and stopped containers, from a file, a directory and a tar on stdin; -a", () => {
      const c = n("cpin");
      ok(client, [
        "run",
        "-d",
        "--name",
        c,
        "busybox",
        "sh",
        "-c",
        "echo app:x:1234:1234::/tmp:/bin/sh >> /etc/passwd; echo app:x:1234: >> /etc/group; sleep 1000",
      ]);
      writeFileSync(join(tmp, "in.txt"), "into\n");
      mkdirSync(join(tmp, "tree/a"), { recursive: true });
      writeFileSync(join(tmp, "tree/a/b"), "bee\n");
      ok(client, ["cp", join(tmp, "in.txt"), `${c}:/in.txt`]);
      ok(client, ["cp", join(tmp, "tree"), `${c}:/tmp/tree2`]);
      assert.equal(ok(client, ["exec", c, "cat", "/in.txt", "/tmp/tree2/a/b"]), "into\nbee");
      const tar = tarOf([
        { name: "fromstdin/", type: "dir", mode: 0o755 },
        { name: "fromstdin/f", data: "stdin\n", uid: 42, gid: 43 },
      ]);
      const r = runWithInput(client, ["cp", "-", `${c}:/tmp`], tar);
      assert.equal(r.code, 0, r.err);
      assert.equal(ok(client, ["exec", c, "stat", "-c", "%u:%g %s", "/tmp/fromstdin/f"]), "42:43 6");
      // -a: owned by the container's user (its /etc/passwd is read inside the container).
      run(client, ["stop", "-t", "1", c]);
      ok(client, ["commit", c, `${c}-img`]);
      images.push(`${c}-img`);
      const u = n("cpuser");
      ok(client, ["create", "--name", u, "--user", "app", `${c}-img`, "sleep", "1000"]);
      ok(client, ["cp", "-a", join(tmp, "in.txt"), `${u}:/tmp/owned.txt`]);
      ok(client, ["cp", join(tmp, "in.txt"), `${c}:/stopped.txt`]);
      ok(client, ["start", u]);
      assert.equal(ok(client, ["exec", u, "stat", "-c", "%u", "/tmp/owned.txt"]), "1234");
      ok(client, ["start", c]);
      assert.equal(ok(client, ["exec", c, "cat", "/stopped.txt"]), "into");
    });

    test("commit: layer, config changes, author, message, history, pause, deleted files stay deleted", async () => {
      const c = n("commit");
      ok(client, [
        "run",
        "-d",
        "--name",
        c,
        "--label",
        "from=ctr",
        "-e",
        "A=1",
        "busybox",
        "sh",
        "-c",
        "echo data > /newfile; rm /etc/group; sleep 1000",
      ]);
      assert.ok(await until(() => run(client, ["exec", c, "cat", "/newfile"]).out.includes("data")));
      const img = `${c}-img:v1`;
      images.push(img);
      const id = ok(client, ["commit", "-a", "Jane <j@x>", "-m", "first commit", "-c", "ENV B=2", "-c", 'CMD ["cat", "/newfile"]', c, img]);
      assert.match(id, /^sha256:[a-f0-9]{64}$/);
      assert.equal(ok(client, ["inspect", "-f", "{{.State.Running}} {{.State.Paused}}", c]), "true false");
      assert.equal(ok(client, ["run", "--rm", img]), "data");
      assert.notEqual(run(client, ["run", "--rm", img, "cat", "/etc/group"]).code, 0);
      assert.equal(
        ok(client, ["inspect", "-f", '{{.Author}}|{{.Comment}}|{{index .Config.Labels "from"}}', img]),
        "Jane <j@x>|first commit|ctr",
      );
      const env = ok(client, ["inspect", "-f", "{{json .Config.Env}}", img]);
      assert.ok(env.includes('"A=1"') && env.includes('"B=2"'), env);
      const hist = ok(client, ["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", img]).split("\n");
      assert.equal(hist[0], "sh -c echo data > /newfile; rm /etc/group; sleep 1000|first commit");
      // A second commit with nothing changed adds an empty history entry and no layer.
      const stopped = n("commit2");
      ok(client, ["create", "--name", stopped, img]);
      const img2 = `${c}-img:v2`;
      images.push(img2);
      ok(client, ["commit", stopped, img2]);
      const layers = (i: string) => JSON.parse(ok(client, ["inspect", "-f", "{{json .RootFS.Layers}}", i])).length as number;
      assert.equal(layers(img2), layers(img));
      assert.equal(ok(client, ["history", "-q", img2]).split("\n").length, ok(client, ["history", "-q", img]).split("\n").length + 1);
      const bad = run(client, ["commit", "-c", "FROM busybox", c, `${c}-bad`]);
      assert.notEqual(bad.code, 0);
    });

    test("a running container: cp sees its volumes but not /proc; export has its layers only", async () => {
      const c = n("running");
      ok(client, ["run", "-d", "--name", c, "-v", "/vol", "busybox", "sh", "-c", "echo v > /vol/f; echo l > /layerfile; sleep 1000"]);
      const cat = (p: string) =>
        spawnSync("sh", ["-c", `${client} cp ${c}:${p} - | tar xOf -`], { env: { ...process.env, DOCKER_HOST: `unix://${SOCKET}` } });
      assert.ok(await until(() => cat("/vol/f").stdout.toString() === "v\n"));
      assert.equal(cat("/layerfile").stdout.toString(), "l\n");
      assert.notEqual(run(client, ["cp", `${c}:/proc/1/status`, join(tmp, "status")]).code, 0);
      const out = join(tmp, `${c}.tar`);
      ok(client, ["export", "-o", out, c]);
      const list = spawnSync("tar", ["tf", out]).stdout.toString().split("\n");
      assert.ok(list.includes("layerfile") && list.includes("vol/"), "the layer and the volume's mount point");
      assert.ok(!list.includes("vol/f") && !list.some((l) => l.startsWith("proc/") && l !== "proc/"), "no volume contents, no /proc");
    });

    test("export: the merged file system, without deleted files; import runs it", () => {
      const c = n("export");
      ok(client, ["run", "--name", c, "busybox", "sh", "-c", "echo data > /newfile; rm /etc/group"]);
      const out = join(tmp, "fs.tar");
      ok(client, ["export", "-o", out, c]);
      const list = spawnSync("tar", ["tf", out]).stdout.toString().split("\n");
      assert.ok(list.includes("newfile") && list.includes("bin/busybox"), "export has the image and the container's files");
      assert.ok(!list.includes("etc/group"), "export must not contain deleted files");
      const img = `${c}-imported`;
      images.push(img);
      ok(client, ["import", out, img]);
      assert.equal(ok(client, ["run", "--rm", img, "cat", "/newfile"]), "data");
    });
  });
}

const docker = clients().find((c) => !c.endsWith("berth"));

describe("cp into a container: hostile archives stay inside the container (SECURITY.md 1-5, 21)", { skip: skip || !docker }, () => {
  const client = docker ?? "docker";
  let c = "";
  let sentinel = "";
  let before0 = "";
  before(() => {
    c = uniq("e2e-arch-hostile");
    // A host directory whose path also exists in the container: a write that escaped would land here.
    sentinel = mkdtempSync("/tmp/berth-sentinel-");
    writeFileSync(join(sentinel, "secret"), "HOST-SECRET\n");
    before0 = snapshotDir(sentinel);
    ok(client, [
      "run",
      "-d",
      "--name",
      c,
      "busybox",
      "sh",
      "-c",
      `mkdir -p ${sentinel} /dest; echo container > ${sentinel}/secret; sleep 1000`,
    ]);
  });
  after(() => {
    run(client, ["rm", "-f", c]);
    rmSync(sentinel, { recursive: true, force: true });
  });
  const put = (entries: Parameters<typeof tarOf>[0], dest = "/dest") => runWithInput(client, ["cp", "-", `${c}:${dest}`], tarOf(entries));
  const hostUnchanged = () => assert.equal(snapshotDir(sentinel), before0, "the host sentinel directory changed");

  test("names climbing out of the destination are refused", () => {
    const r = put([{ name: `../../../../../../../..${sentinel}/pwned`, data: "x" }]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /outside of the destination/);
    hostUnchanged();
  });

  test("absolute names land below the destination", () => {
    assert.equal(put([{ name: `${sentinel}/abs`, data: "abs\n" }]).code, 0);
    assert.equal(ok(client, ["exec", c, "cat", `/dest${sentinel}/abs`]), "abs");
    hostUnchanged();
  });

  test("a symlink to / (absolute or climbing) then a write through it stays in the container", () => {
    for (const [i, target] of ["/", "../../../../../../../../"].entries()) {
      const r = put([
        { name: `l${i}`, type: "symlink", linkname: target },
        { name: `l${i}${sentinel}/through${i}`, data: "through\n" },
      ]);
      assert.equal(r.code, 0, r.err);
      assert.equal(ok(client, ["exec", c, "cat", `${sentinel}/through${i}`]), "through");
    }
    hostUnchanged();
  });

  test("a symlink to a host file is replaced, never written through; hard links cannot leave the destination", () => {
    assert.equal(
      put([
        { name: "s", type: "symlink", linkname: `${sentinel}/secret` },
        { name: "s", data: "replaced\n" },
      ]).code,
      0,
    );
    assert.equal(ok(client, ["exec", c, "cat", "/dest/s", `${sentinel}/secret`]), "replaced\ncontainer");
    const h = put([{ name: "h", type: "link", linkname: `../../../../..${sentinel}/secret` }]);
    assert.notEqual(h.code, 0);
    // A directory symlink leading to the host path, then a hard link through it: resolved in the container.
    assert.equal(
      put([
        { name: "up", type: "symlink", linkname: "/" },
        { name: "h2", type: "link", linkname: `up${sentinel}/secret` },
      ]).code,
      0,
    );
    assert.equal(ok(client, ["exec", c, "cat", "/dest/h2"]), "container");
    hostUnchanged();
  });

  test("the destination itself through a symlink to / resolves in the container", () => {
    ok(client, ["exec", c, "ln", "-s", "/", "/rootlink"]);
    assert.equal(put([{ name: "viaroot", data: "v\n" }], `/rootlink${sentinel}`).code, 0);
    assert.equal(ok(client, ["exec", c, "cat", `${sentinel}/viaroot`]), "v");
    hostUnchanged();
    assert.equal(ok(client, ["exec", c, "cat", `${sentinel}/secret`]), "container");
  });
});

describe("cp races a container swapping a path component for a symlink to / (CVE-2018-15664)", { skip: skip || !docker }, () => {
  const client = docker ?? "docker";
  let c = "";
  let sentinel = "";
  let local = "";
  before(() => {
    c = uniq("e2e-arch-race");
    sentinel = mkdtempSync("/tmp/berth-race-");
    writeFileSync(join(sentinel, "secret"), "HOST-SECRET\n");
    local = mkdtempSync(join(tmpdir(), "berth-race-local-"));
    writeFileSync(join(local, "payload"), "PAYLOAD\n");
    const swap = `mkdir -p ${sentinel} /data; echo container > ${sentinel}/secret; while true; do rm -rf /data/x; mkdir -p /data/x${sentinel}; echo inside > /data/x${sentinel}/secret; rm -rf /data/x; ln -s / /data/x; done`;
    ok(client, ["run", "-d", "--name", c, "busybox", "sh", "-c", swap]);
  });
  after(() => {
    run(client, ["rm", "-f", c]);
    rmSync(sentinel, { recursive: true, force: true });
    rmSync(local, { recursive: true, force: true });
  });

  test("50 copies out of and into /data/x read and write only the container", (t) => {
    const before0 = snapshotDir(sentinel);
    let readOk = 0;
    let wroteOk = 0;
    let viaLink = 0;
    for (let i = 0; i < 50; i++) {
      const out = spawnSync(client, ["cp", `${c}:/data/x${sentinel}/secret`, "-"], {
        env: { ...process.env, DOCKER_HOST: `unix://${SOCKET}` },
        timeout: 30000,
      });
      const text = spawnSync("tar", ["xOf", "-"], { input: out.stdout }).stdout.toString();
      assert.ok(!out.stdout.toString().includes("HOST-SECRET"), `copy ${i} read the host's file`);
      if (out.status === 0) readOk++;
      if (text.includes("container")) viaLink++;
      const w = run(client, ["cp", join(local, "payload"), `${c}:/data/x${sentinel}/`]);
      if (w.code === 0) wroteOk++;
      assert.equal(snapshotDir(sentinel), before0, `copy ${i} wrote to the host`);
    }
    t.diagnostic(`copies out: ${readOk} (${viaLink} through the symlink), copies in: ${wroteOk}`);
    assert.ok(readOk > 0 && wroteOk > 0, `some copies must go through (read ${readOk}, wrote ${wroteOk})`);
    assert.equal(readFileSync(join(sentinel, "secret"), "utf8"), "HOST-SECRET\n");
    assert.ok(!existsSync(join(sentinel, "payload")));
    assert.equal(ok(client, ["inspect", "-f", "{{.State.Running}}", c]), "true", "the container keeps running");
  });
});
