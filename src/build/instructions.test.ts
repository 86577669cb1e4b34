import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDuration, parseRunMount, parseSize, parseStages } from "./instructions.ts";

test("parseRunMount: the four mount types and their defaults", () => {
  assert.deepEqual(parseRunMount("type=cache,target=/root/.cache"), {
    type: "cache",
    target: "/root/.cache",
    readonly: false,
    id: "/root/.cache",
  });
  assert.deepEqual(parseRunMount("target=/src,source=app,rw"), { type: "bind", target: "/src", source: "app", readonly: false });
  assert.deepEqual(parseRunMount("type=bind,dst=/x,from=builder,src=/out"), {
    type: "bind",
    target: "/x",
    from: "builder",
    source: "/out",
    readonly: true,
  });
  assert.deepEqual(parseRunMount("type=tmpfs,target=/tmp,size=64m"), {
    type: "tmpfs",
    target: "/tmp",
    readonly: false,
    size: 64 * 1024 * 1024,
  });
  assert.deepEqual(parseRunMount("type=secret,id=tok"), { type: "secret", target: "/run/secrets/tok", readonly: true, id: "tok" });
  assert.deepEqual(parseRunMount("type=secret,target=/etc/key,required,mode=0440,uid=1,gid=2"), {
    type: "secret",
    target: "/etc/key",
    readonly: true,
    id: "key",
    required: true,
    mode: 0o440,
    uid: 1,
    gid: 2,
  });
  assert.deepEqual(parseRunMount('type=cache,"target=/a,b",sharing=locked'), {
    type: "cache",
    target: "/a,b",
    readonly: false,
    id: "/a,b",
    sharing: "locked",
  });
});

test("parseRunMount: errors", () => {
  assert.throws(() => parseRunMount("type=volume,target=/x"), /unsupported mount type "volume"/);
  assert.throws(() => parseRunMount("type=cache"), /mount destination not specified/);
  assert.throws(() => parseRunMount("type=cache,target=/x,bogus=1"), /unexpected key 'bogus'/);
  assert.throws(() => parseRunMount("type=cache,target=/x,sharing=maybe"), /unsupported sharing value/);
  assert.throws(() => parseRunMount("type=secret"), /one of id or target/);
  assert.throws(() => parseRunMount("type=cache,target=/x,uid=-1"), /invalid value for uid/);
});

test("parseDuration and parseSize", () => {
  assert.equal(parseDuration("30s"), 30e9);
  assert.equal(parseDuration("1m30s"), 90e9);
  assert.equal(parseDuration("1.5h"), 5400e9);
  assert.equal(parseDuration("250ms"), 250e6);
  assert.throws(() => parseDuration("30"), /invalid duration/);
  assert.throws(() => parseDuration("abc"), /invalid duration/);
  assert.equal(parseSize("1g"), 1024 ** 3);
  assert.equal(parseSize("512"), 512);
  assert.throws(() => parseSize("lots"), /invalid size/);
});

test("HEALTHCHECK flags become the config's nanoseconds", () => {
  const df = parseStages("FROM x\nHEALTHCHECK --interval=5s --timeout=1m --retries=3 --start-period=2s CMD true\n");
  const h = df.stages[0]?.instructions[0];
  assert.ok(h?.kind === "healthcheck");
  assert.deepEqual(h.health, { Test: ["CMD-SHELL", "true"], Interval: 5e9, Timeout: 60e9, StartPeriod: 2e9, Retries: 3 });
  assert.throws(() => parseStages("FROM x\nHEALTHCHECK --interval=1us CMD true\n"), /line 2: Interval "interval" cannot be less than 1ms/);
  assert.throws(() => parseStages("FROM x\nHEALTHCHECK --retries=-1 CMD true\n"), /cannot be negative/);
});

test("COPY keeps heredoc sources apart from paths", () => {
  const df = parseStages("FROM x\nCOPY a <<EOF b /dst/\nhello\nEOF\n");
  const c = df.stages[0]?.instructions[0];
  assert.ok(c?.kind === "copy");
  assert.deepEqual(c.sources, ["a", "b"]);
  assert.deepEqual(c.inline, [{ path: "EOF", data: "hello\n", expand: true, chomp: false }]);
  assert.equal(c.dest, "/dst/");
});
