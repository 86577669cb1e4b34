import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { isConflict, isNotFound } from "../base/mod.ts";
import {
  ConnectError,
  DaemonError,
  decodeJsonStream,
  demuxStream,
  EngineClient,
  encodeFrame,
  FakeEngine,
  fakeError,
  parseHost,
  pickVersion,
} from "./mod.ts";

describe("parseHost", () => {
  test("unix, tcp and defaults", () => {
    assert.deepEqual(parseHost("unix:///run/x.sock"), { kind: "unix", path: "/run/x.sock", url: "unix:///run/x.sock" });
    assert.deepEqual(parseHost("tcp://10.0.0.1:2376"), {
      kind: "tcp",
      hostname: "10.0.0.1",
      port: 2376,
      tls: false,
      url: "tcp://10.0.0.1:2376",
    });
    assert.equal((parseHost("tcp://h") as { port: number }).port, 2375);
    assert.equal((parseHost("tcp://h", true) as { port: number }).port, 2376);
    assert.equal(parseHost("").url, "unix:///run/berth/berth.sock");
    assert.throws(() => parseHost("ftp://x"), /Invalid bind address/);
  });
});

describe("version negotiation", () => {
  test("the lower of ours and the daemon's", () => {
    assert.equal(pickVersion("1.50"), "1.47");
    assert.equal(pickVersion("1.41"), "1.41");
    assert.equal(pickVersion(undefined), "1.24");
  });
});

describe("streams", () => {
  test("JSON values split across chunks, with and without newlines", async () => {
    const s = new PassThrough();
    const out: unknown[] = [];
    const done = (async () => {
      for await (const m of decodeJsonStream(s)) out.push(m);
    })();
    s.write('{"status":"a"}{"status":');
    s.write('"b \\" } {"}\n  {"id":"x","progressDetail":{"current":1}}');
    s.end('\n{"aux":{"ID":"sha256:1"}}');
    await done;
    assert.deepEqual(out, [
      { status: "a" },
      { status: 'b " } {' },
      { id: "x", progressDetail: { current: 1 } },
      { aux: { ID: "sha256:1" } },
    ]);
  });

  test("stdcopy frames split anywhere; system error frame fails", async () => {
    const data = Buffer.concat([encodeFrame(1, "out\n"), encodeFrame(2, "err\n"), encodeFrame(1, "")]);
    const s = new PassThrough();
    const frames: [number, string][] = [];
    const done = (async () => {
      for await (const f of demuxStream(s)) frames.push([f.stream, f.data.toString()]);
    })();
    for (const b of data) s.write(Buffer.from([b]));
    s.end();
    await done;
    assert.deepEqual(frames, [
      [1, "out\n"],
      [2, "err\n"],
      [1, ""],
    ]);
    const bad = new PassThrough();
    bad.end(encodeFrame(3, "boom"));
    await assert.rejects(async () => {
      for await (const _ of demuxStream(bad)) {
        // drain
      }
    }, /boom/);
  });
});

describe("EngineClient against a fake engine", () => {
  const engine = new FakeEngine();
  let client: EngineClient;
  before(async () => {
    await engine.start();
    client = new EngineClient({ host: engine.host });
  });
  after(async () => {
    client.close();
    await engine.stop();
  });

  test("negotiates the version once and prefixes paths", async () => {
    engine.apiVersion = "1.45";
    engine.on("GET", "/version", () => ({ Version: "27.0.0", ApiVersion: "1.45", Os: "linux", Arch: "amd64" }));
    const v = await client.version();
    assert.equal(v.Version, "27.0.0");
    const r = engine.requests.filter((x) => x.path === "/version").at(-1);
    assert.equal(r?.version, "1.45");
    await client.version();
    assert.equal(engine.requests.filter((x) => x.path === "/_ping").length, 1);
  });

  test("daemon errors carry the message and a kind", async () => {
    engine.on("GET", /^\/images\/.*\/json$/, () => {
      throw fakeError(404, "No such image: nope:latest");
    });
    engine.on("POST", /^\/containers\/.*\/start$/, () => {
      throw fakeError(409, "conflict here");
    });
    await assert.rejects(
      client.imageInspect("nope"),
      (e: unknown) => e instanceof DaemonError && e.message === "No such image: nope:latest" && isNotFound(e),
    );
    await assert.rejects(client.containerStart("x"), (e: unknown) => isConflict(e) && (e as DaemonError).status === 409);
  });

  test("304 Not Modified is success (stop of a stopped container)", async () => {
    engine.on("POST", /^\/containers\/.*\/stop$/, (_r, res) => {
      res.writeHead(304);
      res.end();
    });
    await client.containerStop("x", { timeout: 1 });
    const r = engine.requests.at(-1);
    assert.equal(r?.query.get("t"), "1");
  });

  test("pull sends fromImage, tag and X-Registry-Auth; the stream decodes", async () => {
    engine.on("POST", "/images/create", (_r, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end('{"status":"Pulling from library/busybox","id":"latest"}\r\n{"status":"Done"}\r\n');
    });
    const msgs = [];
    for await (const m of await client.imagePull("busybox", { registryAuth: "e30=" })) msgs.push(m);
    assert.equal(msgs.length, 2);
    const r = engine.requests.at(-1);
    assert.equal(r?.query.get("fromImage"), "docker.io/library/busybox");
    assert.equal(r?.query.get("tag"), "latest");
    assert.equal(r?.headers["x-registry-auth"], "e30=");
  });

  test("filters are sent as docker's JSON map", async () => {
    engine.on("GET", "/containers/json", () => []);
    await client.containerList({ all: true, filters: { label: { "a=b": true } } });
    const r = engine.requests.at(-1);
    assert.equal(r?.query.get("all"), "1");
    assert.equal(r?.query.get("filters"), '{"label":{"a=b":true}}');
  });

  test("wait resolves after registration, result later", async () => {
    let finish: () => void = () => {};
    engine.on("POST", /^\/containers\/.*\/wait$/, (_r, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.flushHeaders();
      finish = () => res.end('{"StatusCode":3}');
    });
    const { result } = await client.containerWait("c1", "next-exit");
    finish();
    assert.equal((await result).StatusCode, 3);
  });

  test("hijacked attach: stdin half-close reaches the daemon, output flows after it", async () => {
    engine.onUpgrade("POST", /^\/containers\/.*\/attach$/, (_r, socket) => {
      const got: Buffer[] = [];
      socket.on("data", (c: Buffer) => got.push(c));
      socket.on("end", () => {
        socket.end(encodeFrame(1, `echo:${Buffer.concat(got).toString()}`));
      });
    });
    const conn = await client.containerAttach("c1", { stdin: true, stdout: true, stderr: true });
    conn.socket.write("hello");
    conn.closeWrite();
    const frames: string[] = [];
    for await (const f of demuxStream(conn.socket as AsyncIterable<Buffer>)) frames.push(f.data.toString());
    assert.deepEqual(frames, ["echo:hello"]);
    const r = engine.requests.at(-1);
    assert.equal(r?.query.get("stdin"), "1");
    assert.equal(r?.headers.upgrade, "tcp");
  });

  test("inspectRaw keeps the daemon's text", async () => {
    engine.on("GET", /^\/containers\/.*\/json$/, (_r, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end('{"Id":"abc","Big":12345678901234567890}');
    });
    const r = await client.inspectRaw("container", "abc");
    assert.equal(r.raw, '{"Id":"abc","Big":12345678901234567890}');
  });

  test("archive stat header is decoded", async () => {
    const stat = { name: "f", size: 3, mode: 420, mtime: "2024-01-01T00:00:00Z", linkTarget: "" };
    engine.on("HEAD", /^\/containers\/.*\/archive$/, (_r, res) => {
      res.writeHead(200, { "X-Docker-Container-Path-Stat": Buffer.from(JSON.stringify(stat)).toString("base64") });
      res.end();
    });
    assert.deepEqual(await client.containerStatPath("c", "/f"), stat);
  });
});

test("a missing socket is a ConnectError with docker's wording", async () => {
  const c = new EngineClient({ host: "unix:///nonexistent/berth.sock" });
  await assert.rejects(
    c.ping(),
    (e: unknown) =>
      e instanceof ConnectError && /Cannot connect to the Docker daemon at unix:\/\/\/nonexistent\/berth.sock/.test((e as Error).message),
  );
  c.close();
});
