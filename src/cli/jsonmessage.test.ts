import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, test } from "node:test";
import type { JsonMessage } from "../client/mod.ts";
import { displayJsonMessages, goDurationSeconds, JsonMessageError, progressString } from "./jsonmessage.ts";

async function* from(msgs: JsonMessage[]): AsyncGenerator<JsonMessage> {
  for (const m of msgs) yield m;
}

async function render(msgs: JsonMessage[], isTTY: boolean, columns = 200): Promise<{ text: string; error?: Error }> {
  const s = new PassThrough();
  const chunks: Buffer[] = [];
  s.on("data", (c: Buffer) => chunks.push(c));
  let error: Error | undefined;
  try {
    await displayJsonMessages(from(msgs), { stream: s, isTTY, columns });
  } catch (e) {
    error = e as Error;
  }
  return { text: Buffer.concat(chunks).toString(), ...(error ? { error } : {}) };
}

const PULL: JsonMessage[] = [
  { status: "Pulling from library/busybox", id: "latest" },
  { status: "Pulling fs layer", progressDetail: {}, id: "8fd1b27bbe85" },
  { status: "Downloading", progressDetail: { current: 1000, total: 2000 }, progress: "[=>  ]", id: "8fd1b27bbe85" },
  { status: "Download complete", progressDetail: {}, id: "8fd1b27bbe85" },
  { status: "Pull complete", progressDetail: {}, id: "8fd1b27bbe85" },
  { status: "Digest: sha256:abc" },
  { status: "Status: Downloaded newer image for busybox:latest" },
];

describe("jsonmessage display", () => {
  test("plain lines without progress bars off a terminal", async () => {
    const { text } = await render(PULL, false);
    assert.equal(
      text,
      [
        "latest: Pulling from library/busybox",
        "8fd1b27bbe85: Pulling fs layer",
        "8fd1b27bbe85: Download complete",
        "8fd1b27bbe85: Pull complete",
        "Digest: sha256:abc",
        "Status: Downloaded newer image for busybox:latest",
        "",
      ].join("\n"),
    );
  });

  test("lines updated in place on a terminal", async () => {
    const { text } = await render(PULL.slice(0, 3), true);
    assert.equal(
      text,
      "latest: Pulling from library/busybox\n" +
        "\n\x1b[1A\x1b[2K\r8fd1b27bbe85: Pulling fs layer \r\x1b[1B" +
        "\x1b[1A\x1b[2K\r8fd1b27bbe85: Downloading [=========================>                         ]      1kB/2kB\r\x1b[1B",
    );
  });

  test("errorDetail ends the stream with the daemon's message", async () => {
    const r = await render([{ status: "a" }, { errorDetail: { message: "manifest unknown" }, error: "manifest unknown" }], false);
    assert.equal(r.text, "a\n");
    assert.ok(r.error instanceof JsonMessageError);
    assert.equal(r.error?.message, "manifest unknown");
  });

  test("aux messages go to the callback, streams print as is", async () => {
    const s = new PassThrough();
    let out = "";
    s.on("data", (c: Buffer) => (out += c.toString()));
    const aux: unknown[] = [];
    await displayJsonMessages(
      from([{ stream: "Step 1/2 : FROM busybox\n" }, { aux: { ID: "sha256:1" } }]),
      { stream: s, isTTY: false },
      { onAux: (a) => aux.push(a) },
    );
    assert.equal(out, "Step 1/2 : FROM busybox\n");
    assert.deepEqual(aux, [{ ID: "sha256:1" }]);
  });
});

describe("progress bar", () => {
  test("narrow terminals lose the bar; time left when start is known", () => {
    assert.equal(progressString({ current: 500, total: 1000 }, 80), "    500B/1kB");
    assert.equal(progressString({ current: 1500 }, 200), "   1.5kB");
    assert.equal(progressString({ current: 5, total: 10, units: "items" }, 80), "5/10 items");
    assert.equal(progressString({ current: 50, total: 100, start: 1000 }, 80, 1_010_000), "     50B/100B 10s");
    assert.equal(goDurationSeconds(3725), "1h2m5s");
  });
});
