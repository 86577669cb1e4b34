import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import * as tar from "tar-stream";
import { after, before, describe, test } from "node:test";
import { decodeRegistryAuth, encodeFrame, FakeEngine, fakeError } from "../client/mod.ts";
import { main } from "./main.ts";

interface Outcome {
  code: number;
  out: string;
  err: string;
}

describe("berth against a fake engine", () => {
  const engine = new FakeEngine();
  let configDir: string;

  async function berth(args: string[], input = ""): Promise<Outcome> {
    const out = new PassThrough();
    const err = new PassThrough();
    const inp = new PassThrough();
    let o = "";
    let e = "";
    out.on("data", (c: Buffer) => (o += c.toString()));
    err.on("data", (c: Buffer) => (e += c.toString()));
    inp.end(input);
    const code = await main(args, {
      out: { stream: out, isTTY: false },
      err: { stream: err, isTTY: false },
      in: { stream: inp, isTTY: false },
      env: { BERTH_HOST: engine.host, DOCKER_CONFIG: configDir, PATH: process.env.PATH ?? "" },
    });
    return { code, out: o, err: e };
  }

  before(async () => {
    configDir = mkdtempSync(join(tmpdir(), "berth-cli-test-"));
    await engine.start();
  });
  after(async () => {
    await engine.stop();
    rmSync(configDir, { recursive: true, force: true });
  });

  test("pull prints docker's plain progress and the reference, with stored credentials", async () => {
    writeFileSync(
      join(configDir, "config.json"),
      JSON.stringify({ auths: { "https://index.docker.io/v1/": { auth: Buffer.from("u:p").toString("base64") } } }),
    );
    engine.on("POST", "/images/create", (_r, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(
        [
          { status: "Pulling from library/busybox", id: "latest" },
          { status: "Downloading", progressDetail: { current: 1, total: 2 }, id: "abc" },
          { status: "Pull complete", progressDetail: {}, id: "abc" },
          { status: "Digest: sha256:1234" },
          { status: "Status: Downloaded newer image for busybox:latest" },
        ]
          .map((m) => JSON.stringify(m))
          .join("\r\n"),
      );
    });
    const r = await berth(["pull", "busybox"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      "Using default tag: latest\nlatest: Pulling from library/busybox\nabc: Pull complete\nDigest: sha256:1234\nStatus: Downloaded newer image for busybox:latest\ndocker.io/library/busybox:latest\n",
    );
    const auth = engine.requests.at(-1)?.headers["x-registry-auth"] as string;
    assert.deepEqual(decodeRegistryAuth(auth), { username: "u", password: "p", serveraddress: "https://index.docker.io/v1/" });
    rmSync(join(configDir, "config.json"));
  });

  test("pull failure in the stream: message on stderr, exit 1", async () => {
    engine.on("POST", "/images/create", (_r, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end('{"errorDetail":{"message":"manifest for x:nope not found"},"error":"manifest for x:nope not found"}');
    });
    const r = await berth(["pull", "-q", "x:nope"]);
    assert.equal(r.code, 1);
    assert.equal(r.err, "manifest for x:nope not found\n");
  });

  test("images table and quiet ids", async () => {
    engine.on("GET", "/images/json", () => [
      {
        Id: `sha256:${"a".repeat(64)}`,
        ParentId: "",
        RepoTags: ["busybox:latest"],
        RepoDigests: [],
        Created: Math.floor(Date.now() / 1000) - 120,
        Size: 2_134_016,
        SharedSize: -1,
        Labels: null,
        Containers: -1,
      },
    ]);
    const r = await berth(["images"]);
    assert.equal(
      r.out,
      "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\nbusybox      latest    aaaaaaaaaaaa   2 minutes ago   2.13MB\n",
    );
    assert.equal((await berth(["image", "ls", "-q"])).out, "aaaaaaaaaaaa\n");
    assert.equal(engine.requests.at(-1)?.query.get("filters"), null);
    await berth(["images", "busy*"]);
    assert.equal(engine.requests.at(-1)?.query.get("filters"), '{"reference":{"busy*":true}}');
  });

  test("rmi prints Untagged/Deleted; errors keep going and fail at the end", async () => {
    engine.on("DELETE", /^\/images\//, (r) => {
      if (r.path === "/images/nope") throw fakeError(404, "No such image: nope:latest");
      return [{ Untagged: "busybox:latest" }, { Deleted: "sha256:abc" }];
    });
    const r = await berth(["rmi", "nope", "busybox"]);
    assert.equal(r.out, "Untagged: busybox:latest\nDeleted: sha256:abc\n");
    assert.equal(r.err, "Error response from daemon: No such image: nope:latest\n");
    assert.equal(r.code, 1);
    const f = await berth(["rmi", "-f", "nope"]);
    assert.equal(f.code, 0);
    assert.equal(f.err, "Error response from daemon: No such image: nope:latest\n");
  });

  test("inspect: indented array, --format per object, objects of any type", async () => {
    engine.on("GET", /^\/containers\/.*\/json$/, () => {
      throw fakeError(404, "No such container: busybox");
    });
    engine.on("GET", /^\/images\/.*\/json$/, (r) => {
      if (r.path.includes("nope")) throw fakeError(404, "No such image: nope");
      return { Id: "sha256:1", Config: { Cmd: ["sh"] } };
    });
    engine.on("GET", /^\/(networks|volumes)\//, () => {
      throw fakeError(404, "not found");
    });
    const r = await berth(["inspect", "busybox"]);
    assert.equal(
      r.out,
      '[\n    {\n        "Id": "sha256:1",\n        "Config": {\n            "Cmd": [\n                "sh"\n            ]\n        }\n    }\n]\n',
    );
    const f = await berth(["image", "inspect", "--format", "{{json .Config.Cmd}} {{.Config.Cmd}}", "busybox"]);
    assert.equal(f.out, '["sh"] [sh]\n');
    const n = await berth(["inspect", "nope"]);
    assert.equal(n.code, 1);
    assert.equal(n.out, "[]\n");
    assert.equal(n.err, "Error: No such object: nope\n");
  });

  test("usage errors as docker prints them", async () => {
    const a = await berth(["pull"]);
    assert.equal(a.code, 1);
    assert.equal(
      a.err,
      "berth: 'berth pull' requires 1 argument\n\nUsage:  berth pull [OPTIONS] NAME[:TAG|@DIGEST]\n\nRun 'berth pull --help' for more information\n",
    );
    const b = await berth(["images", "--bogus"]);
    assert.equal(b.code, 125);
    assert.equal(
      b.err,
      "unknown flag: --bogus\n\nUsage:  berth images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'berth images --help' for more information\n",
    );
    const c = await berth(["image", "frob"]);
    assert.equal(c.code, 1);
    assert.match(c.err, /^berth: unknown command: berth image frob/);
    const h = await berth(["tag", "--help"]);
    assert.equal(h.code, 0);
    assert.match(h.out, /^Usage: {2}berth tag SOURCE_IMAGE\[:TAG\] TARGET_IMAGE\[:TAG\]\n\nCreate a tag/);
  });

  test("run: pull when missing, attach before start, exit status of the container", async () => {
    let created = 0;
    const order: string[] = [];
    engine.on("POST", "/containers/create", (r) => {
      created++;
      if (created === 1) throw fakeError(404, "No such image: busybox:latest");
      const body = JSON.parse(r.body.toString());
      assert.deepEqual(body.Cmd, ["sh", "-c", "echo hi; exit 3"]);
      assert.equal(body.HostConfig.AutoRemove, true);
      order.push("create");
      return { Id: "c".repeat(64), Warnings: [] };
    });
    engine.on("POST", "/images/create", (_r, res) => {
      order.push("pull");
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end('{"status":"Status: Downloaded newer image for busybox:latest"}');
    });
    let exit: (code: number) => void = () => {};
    let attached: import("node:stream").Duplex | undefined;
    engine.onUpgrade("POST", /^\/containers\/c+\/attach$/, (_r, socket) => {
      order.push("attach");
      attached = socket;
    });
    engine.on("POST", /^\/containers\/c+\/wait$/, (r, res) => {
      order.push(`wait:${r.query.get("condition")}`);
      res.writeHead(200, { "Content-Type": "application/json" });
      res.flushHeaders();
      exit = (code) => res.end(JSON.stringify({ StatusCode: code }));
    });
    engine.on("POST", /^\/containers\/c+\/start$/, () => {
      order.push("start");
      setTimeout(() => {
        attached?.end(Buffer.concat([encodeFrame(1, "hi\n"), encodeFrame(2, "oops\n")]));
        exit(3);
      }, 10);
      return undefined;
    });
    const r = await berth(["run", "--rm", "busybox", "sh", "-c", "echo hi; exit 3"]);
    assert.equal(r.out, "hi\n");
    assert.match(r.err, /^Unable to find image 'busybox:latest' locally\nStatus: Downloaded newer image for busybox:latest\noops\n$/);
    assert.equal(r.code, 3);
    assert.deepEqual(order, ["pull", "create", "attach", "wait:removed", "start"]);
  });

  test("run: a start failure for a missing executable exits 127", async () => {
    engine.on("POST", "/containers/create", () => ({ Id: "d".repeat(64), Warnings: ["something odd"] }));
    engine.on("POST", /^\/containers\/d+\/wait$/, (_r, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.flushHeaders();
      setTimeout(() => res.end('{"StatusCode":127}'), 10);
    });
    engine.on("POST", /^\/containers\/d+\/start$/, () => {
      throw fakeError(400, 'failed to create task: exec: "nope": executable file not found in $PATH');
    });
    const r = await berth(["run", "-d", "busybox", "nope"]);
    assert.equal(r.code, 127);
    assert.match(
      r.err,
      /^WARNING: something odd\nberth: Error response from daemon: failed to create task: exec: "nope": executable file not found in \$PATH\n\nRun 'berth run --help' for more information\n$/,
    );
  });

  test("login --password-stdin validates with POST /auth and stores base64 credentials", async () => {
    engine.on("POST", "/auth", (r) => {
      assert.deepEqual(JSON.parse(r.body.toString()), { username: "alice", password: "pw", serveraddress: "localhost:5000" });
      return { Status: "Login Succeeded" };
    });
    const r = await berth(["login", "-u", "alice", "--password-stdin", "localhost:5000"], "pw\n");
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, "Login Succeeded\n");
    assert.match(r.err, /WARNING! Your credentials are stored unencrypted/);
    const cfg = JSON.parse(readFileSync(join(configDir, "config.json"), "utf8"));
    assert.equal(cfg.auths["localhost:5000"].auth, Buffer.from("alice:pw").toString("base64"));
    const o = await berth(["logout", "localhost:5000"]);
    assert.equal(o.out, "Removing login credentials for localhost:5000\n");
    assert.equal(JSON.parse(readFileSync(join(configDir, "config.json"), "utf8")).auths["localhost:5000"], undefined);
  });

  test("build -q: context tar, query, image id from aux; a failing step exits with its code", async () => {
    const ctx = mkdtempSync(join(tmpdir(), "berth-build-"));
    writeFileSync(join(ctx, "Dockerfile"), "FROM busybox\nRUN false\n");
    writeFileSync(join(ctx, "x.txt"), "x");
    let fail = false;
    engine.on("POST", "/build", (r, res) => {
      assert.equal(r.headers["content-type"], "application/x-tar");
      assert.ok(r.body.includes(Buffer.from("FROM busybox")));
      assert.deepEqual(r.query.getAll("t"), ["acc-basic"]);
      assert.equal(r.query.get("dockerfile"), "Dockerfile");
      assert.equal(r.query.get("q"), "1");
      assert.equal(r.query.get("rm"), "1");
      assert.equal(r.query.get("buildargs"), '{"A":"1"}');
      res.writeHead(200, { "Content-Type": "application/json" });
      if (fail)
        res.end(
          '{"stream":"Step 1/2 : FROM busybox\\n"}\n{"errorDetail":{"code":2,"message":"The command \'/bin/sh -c false\' returned a non-zero code: 2"},"error":"x"}\n',
        );
      else res.end('{"stream":"Step 1/2 : FROM busybox\\n"}\n{"aux":{"ID":"sha256:feed"}}\n{"stream":"Successfully built feed\\n"}\n');
    });
    try {
      const r = await berth(["build", "-q", "-t", "acc-basic", "--build-arg", "A=1", ctx]);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, "sha256:feed\n");
      fail = true;
      const f = await berth(["build", "-q", "-t", "acc-basic", "--build-arg", "A=1", ctx]);
      assert.equal(f.code, 2);
      assert.equal(f.err, "Step 1/2 : FROM busybox\nThe command '/bin/sh -c false' returned a non-zero code: 2\n");
    } finally {
      rmSync(ctx, { recursive: true, force: true });
    }
  });

  test("cp both ways with docker's naming rules", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-cp-"));
    const stat = (name: string, dir: boolean) =>
      Buffer.from(
        JSON.stringify({ name, size: 0, mode: dir ? 2 ** 31 + 0o755 : 0o644, mtime: "2024-01-01T00:00:00Z", linkTarget: "" }),
      ).toString("base64");
    engine.on("HEAD", /^\/containers\/c1\/archive$/, (r, res) => {
      const p = r.query.get("path");
      if (p === "/missing") {
        res.writeHead(404, { "Content-Type": "application/json" });
        res.end();
        return;
      }
      res.writeHead(200, {
        "X-Docker-Container-Path-Stat": stat(p === "/d" || p === "/dst" ? (p as string).slice(1) : "f", p === "/d" || p === "/dst"),
      });
      res.end();
    });
    engine.on("GET", /^\/containers\/c1\/archive$/, async (_r, res) => {
      const pack = tar.pack();
      pack.entry({ name: "d/", type: "directory", mode: 0o755 });
      pack.entry({ name: "d/y", mode: 0o644 }, "x\n");
      pack.entry({ name: "d/../../escape", mode: 0o644 }, "no");
      pack.finalize();
      res.writeHead(200, { "Content-Type": "application/x-tar", "X-Docker-Container-Path-Stat": stat("d", true) });
      for await (const c of pack) res.write(c);
      res.end();
    });
    let put: { path: string | null; names: string[] } | undefined;
    engine.on("PUT", /^\/containers\/c1\/archive$/, async (r) => {
      const ex = tar.extract();
      const names: string[] = [];
      const done = (async () => {
        for await (const e of ex) {
          names.push(e.header.name);
          e.resume();
        }
      })();
      ex.end(r.body);
      await done;
      put = { path: r.query.get("path"), names };
      return undefined;
    });
    try {
      const r = await berth(["cp", "c1:/d", join(dir, "copy")]);
      assert.equal(r.code, 1, "an entry escaping the destination is refused");
      assert.match(r.err, /escapes the destination/);
      assert.equal(readFileSync(join(dir, "copy", "y"), "utf8"), "x\n");
      writeFileSync(join(dir, "in.txt"), "into");
      const a = await berth(["cp", join(dir, "in.txt"), "c1:/missing"]);
      assert.equal(a.code, 0, a.err);
      assert.deepEqual(put, { path: "/", names: ["missing"] });
      const b = await berth(["cp", join(dir, "in.txt"), "c1:/dst"]);
      assert.equal(b.code, 0, b.err);
      assert.deepEqual(put, { path: "/dst", names: ["in.txt"] });
      const c = await berth(["cp", "c1:/a", "c2:/b"]);
      assert.equal(c.err, "copying between containers is not supported\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a daemon that is not there", async () => {
    const out = new PassThrough();
    const err = new PassThrough();
    let e = "";
    err.on("data", (c: Buffer) => (e += c.toString()));
    const code = await main(["ps"], {
      out: { stream: out, isTTY: false },
      err: { stream: err, isTTY: false },
      in: { stream: new PassThrough(), isTTY: false },
      env: { BERTH_HOST: "unix:///nonexistent.sock", DOCKER_CONFIG: configDir },
    });
    assert.equal(code, 1);
    assert.equal(e, "Cannot connect to the Docker daemon at unix:///nonexistent.sock. Is the docker daemon running?\n");
  });
});
