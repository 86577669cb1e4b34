import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_DETACH_KEYS, detachKeysToBytes, EscapeProxy } from "./hijack.ts";

describe("detach keys", () => {
  test("docker's key syntax", () => {
    assert.deepEqual(detachKeysToBytes("ctrl-p,ctrl-q"), DEFAULT_DETACH_KEYS);
    assert.deepEqual(detachKeysToBytes("ctrl-@,a,ctrl-[,ctrl-_"), [0, 0x61, 27, 31]);
    assert.throws(() => detachKeysToBytes("ctrl-pp"), /Unknown character/);
    assert.throws(() => detachKeysToBytes("abc"), /Unknown character/);
  });

  test("the sequence is held back, completed or flushed", () => {
    const p = new EscapeProxy(DEFAULT_DETACH_KEYS);
    let r = p.feed(Buffer.from([0x61, 0x10]));
    assert.deepEqual([...r.forward], [0x61]);
    assert.equal(r.detached, false);
    r = p.feed(Buffer.from([0x62]));
    assert.deepEqual([...r.forward], [0x10, 0x62], "a broken sequence is forwarded");
    r = p.feed(Buffer.from([0x10, 0x10]));
    assert.deepEqual([...r.forward], [0x10]);
    r = p.feed(Buffer.from([0x11, 0x63]));
    assert.equal(r.detached, true);
    assert.deepEqual([...r.forward], []);
  });
});
