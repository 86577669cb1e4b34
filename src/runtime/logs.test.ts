import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { formatTimestampNanos, type LogEntry, parseDockerTime, parseTimestampNanos, readLogs, rotateLog } from "./logs.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-logs-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function all(path: string, opts: Parameters<typeof readLogs>[1] = {}): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of readLogs(path, opts)) out.push(e);
  return out;
}

const LOG = [
  "2026-01-01T10:00:00.000000001+00:00 stdout F first",
  "2026-01-01T10:00:01.500000000+00:00 stderr P part-a ",
  "2026-01-01T10:00:01.600000000+00:00 stdout F second",
  "2026-01-01T10:00:01.700000000+00:00 stderr F part-b",
  "garbage line that is not a log entry",
  "2026-01-01T12:00:02.000000000+02:00 stdout F third (local offset)",
  "2026-01-01T10:00:03.000000000+00:00 stdout P unterminated",
  "",
].join("\n");

test("entries: streams, joined partial lines, trailing partial, timestamps in UTC", async () => {
  const p = join(dir, "a.log");
  writeFileSync(p, LOG);
  const e = await all(p);
  assert.deepEqual(
    e.map((x) => [x.stream, x.data.toString(), x.time]),
    [
      ["stdout", "first\n", "2026-01-01T10:00:00.000000001Z"],
      ["stdout", "second\n", "2026-01-01T10:00:01.6Z"],
      ["stderr", "part-a part-b\n", "2026-01-01T10:00:01.5Z"],
      ["stdout", "third (local offset)\n", "2026-01-01T10:00:02Z"],
      ["stdout", "unterminated", "2026-01-01T10:00:03Z"],
    ],
  );
});

test("tail, stream filters, since and until", async () => {
  const p = join(dir, "b.log");
  writeFileSync(p, LOG);
  assert.deepEqual(
    (await all(p, { tail: 2 })).map((x) => x.data.toString()),
    ["third (local offset)\n", "unterminated"],
  );
  assert.deepEqual(await all(p, { tail: 0 }), []);
  assert.deepEqual(
    (await all(p, { stdout: false })).map((x) => x.data.toString()),
    ["part-a part-b\n"],
  );
  const since = parseDockerTime("1767261601.6");
  assert.deepEqual(
    (await all(p, { sinceNanos: since })).map((x) => x.data.toString()),
    ["second\n", "third (local offset)\n", "unterminated"],
  );
  assert.deepEqual(
    (await all(p, { untilNanos: parseDockerTime("2026-01-01T10:00:01.6Z") })).map((x) => x.data.toString()),
    ["first\n", "part-a part-b\n"],
  );
});

test("a missing file is empty", async () => {
  assert.deepEqual(await all(join(dir, "nope.log")), []);
});

test("follow: new entries until stopWhen settles, then the rest", async () => {
  const p = join(dir, "c.log");
  writeFileSync(p, "2026-01-01T10:00:00.0+00:00 stdout F one\n");
  let stop!: () => void;
  const stopWhen = new Promise<void>((r) => {
    stop = r;
  });
  const got: string[] = [];
  const done = (async () => {
    for await (const e of readLogs(p, { follow: true, stopWhen, pollMs: 10 })) got.push(e.data.toString());
  })();
  await new Promise((r) => setTimeout(r, 50));
  writeFileSync(p, "2026-01-01T10:00:00.0+00:00 stdout F one\n2026-01-01T10:00:01.0+00:00 stdout P tw");
  await new Promise((r) => setTimeout(r, 50));
  writeFileSync(
    p,
    "2026-01-01T10:00:00.0+00:00 stdout F one\n2026-01-01T10:00:01.0+00:00 stdout P tw\n2026-01-01T10:00:01.1+00:00 stdout F o\n",
  );
  stop();
  await done;
  assert.deepEqual(got, ["one\n", "two\n"]);
});

test("timestamp parsing and formatting", () => {
  assert.equal(parseTimestampNanos("1970-01-01T00:00:01.5+00:00"), 1500000000n);
  assert.equal(parseTimestampNanos("1970-01-01T01:00:01+01:00"), 1000000000n);
  assert.equal(parseTimestampNanos("not a time"), undefined);
  assert.equal(formatTimestampNanos(1500000000n), "1970-01-01T00:00:01.5Z");
  assert.equal(formatTimestampNanos(1000000000n), "1970-01-01T00:00:01Z");
  assert.equal(parseDockerTime("10"), 10000000000n);
  assert.equal(parseDockerTime("10.000000001"), 10000000001n);
  assert.throws(() => parseDockerTime("yesterday"));
});

const line = (i: number) => `2026-01-01T10:00:${String(i % 60).padStart(2, "0")}.000000000+00:00 stdout F line-${i}\n`;

test("rotation keeps max-file files; reading goes oldest first; a follower crosses a rotation", async () => {
  const p = join(dir, "rot.log");
  writeFileSync(p, "");
  const ac = new AbortController();
  const seen: string[] = [];
  let stop: () => void = () => {};
  const stopped = new Promise<void>((r) => {
    stop = r;
  });
  const follower = (async () => {
    for await (const e of readLogs(p, { follow: true, pollMs: 5, stopWhen: stopped, signal: ac.signal }))
      seen.push(e.data.toString().trim());
  })();
  for (let i = 1; i <= 40; i++) {
    appendFileSync(p, line(i)); // conmon appends (O_APPEND): after a truncation it writes at 0
    if (i % 5 === 0) await rotateLog(p, 100, 3);
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.equal(await rotateLog(p, 1_000_000, 3), false, "under max-size: no rotation");
  assert.ok(existsSync(`${p}.1`) && existsSync(`${p}.2`) && !existsSync(`${p}.3`), "max-file 3: the live file and two rotated");
  const kept = (await all(p)).map((e) => e.data.toString().trim());
  assert.deepEqual(kept, ["line-31", "line-32", "line-33", "line-34", "line-35", "line-36", "line-37", "line-38", "line-39", "line-40"]);
  assert.deepEqual(
    (await all(p, { tail: 3 })).map((e) => e.data.toString().trim()),
    ["line-38", "line-39", "line-40"],
  );
  stop();
  await follower;
  assert.deepEqual(
    seen,
    Array.from({ length: 40 }, (_, i) => `line-${i + 1}`),
    "the follower saw every line once",
  );
});
