/**
 * Attaching to a TTY container over the Engine API, as the docker CLI does (a hijacked
 * connection): a client that goes away (detach, dropped terminal) must not close the process's
 * stdin, so that the next attach can type into it again; without a TTY, "stdin once" closes
 * stdin when the first client's input ends.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, test } from "node:test";
import { ok, run, SOCKET, uniq, until } from "./_lib.ts";

const skip = !SOCKET || process.getuid?.() !== 0 ? "needs root and BERTH_TEST_SOCKET (scripts/test.sh)" : false;
const made: string[] = [];
after(() => {
  if (made.length) run("docker", ["rm", "-f", ...made]);
});

/** POST /containers/{id}/attach with stdin, upgraded to a raw stream; resolves once the upgrade is answered. */
async function attach(id: string): Promise<{ sock: Socket; output: () => string }> {
  const sock = connect(SOCKET);
  let buf = "";
  let upgraded = false;
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    sock.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      if (!upgraded && buf.includes("\r\n\r\n")) {
        upgraded = true;
        assert.match(buf, /^HTTP\/1\.1 101/);
        buf = buf.slice(buf.indexOf("\r\n\r\n") + 4);
        resolve();
      }
    });
    sock.write(
      `POST /containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`,
    );
  });
  return { sock, output: () => buf };
}

test("a TTY container keeps its stdin when an attached client goes away", { skip }, async () => {
  const name = uniq("e2e-tty");
  made.push(name);
  const id = ok("docker", ["create", "-it", "--name", name, "busybox", "sh"]);
  ok("docker", ["start", name]);
  const first = await attach(id);
  first.sock.write("echo one-$((40+2))\n");
  assert.ok(await until(() => first.output().includes("one-42")), `first attach: ${first.output()}`);
  first.sock.destroy();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(ok("docker", ["inspect", "-f", "{{.State.Running}}", name]), "true");
  const second = await attach(id);
  second.sock.write("echo two-$((40+3))\n");
  assert.ok(await until(() => second.output().includes("two-43")), `second attach got: ${JSON.stringify(second.output())}`);
  second.sock.write("exit 4\n");
  assert.ok(await until(() => run("docker", ["inspect", "-f", "{{.State.Running}}", name]).out.trim() === "false"));
  second.sock.destroy();
  assert.equal(ok("docker", ["inspect", "-f", "{{.State.ExitCode}}", name]), "4");
});

test("without a TTY, stdin once closes stdin when the first client's input ends", { skip }, () => {
  assert.equal(ok("docker", ["run", "--rm", "-i", "busybox", "wc", "-c"], { input: "12345" }), "5");
});
