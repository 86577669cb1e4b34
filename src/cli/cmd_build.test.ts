import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseSecretSpec, readSecrets } from "./cmd_build.ts";

test("--secret specs: file, env, type=env, the id alone", () => {
  const env = { TOKEN: "t0k", OTHER: "x" };
  assert.deepEqual(parseSecretSpec("id=a,src=/tmp/a.txt", env), { id: "a", src: "/tmp/a.txt" });
  assert.deepEqual(parseSecretSpec("id=a,source=rel/a", env), { id: "a", src: "rel/a" });
  assert.deepEqual(parseSecretSpec("id=a,env=OTHER", env), { id: "a", env: "OTHER" });
  assert.deepEqual(parseSecretSpec("id=a,type=env,src=OTHER", env), { id: "a", env: "OTHER" });
  assert.deepEqual(parseSecretSpec("id=TOKEN,type=env", env), { id: "TOKEN", env: "TOKEN" });
  // The id alone: its environment variable when set, else a file of that name.
  assert.deepEqual(parseSecretSpec("id=TOKEN", env), { id: "TOKEN", env: "TOKEN" });
  assert.deepEqual(parseSecretSpec("id=missing", env), { id: "missing", src: "missing" });
  assert.deepEqual(parseSecretSpec("id=TOKEN,type=file", env), { id: "TOKEN", src: "TOKEN" });
  // No id: the env name or the file's base name.
  assert.deepEqual(parseSecretSpec("env=OTHER", env), { id: "OTHER", env: "OTHER" });
  assert.deepEqual(parseSecretSpec("src=/run/x/key.pem", env), { id: "key.pem", src: "/run/x/key.pem" });
  assert.throws(() => parseSecretSpec("id=a,type=ssh", env), /unsupported type "ssh"/);
  assert.throws(() => parseSecretSpec("id=a,bogus=1", env), /unexpected key "bogus"/);
  assert.throws(() => parseSecretSpec("id=a,src", env), /is not key=value/);
});

test("readSecrets encodes contents as base64 by id and refuses what it cannot read", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-secret-"));
  try {
    const file = join(dir, "s.txt");
    writeFileSync(file, "from-file\n");
    const json = readSecrets([`id=f,src=${file}`, "id=e,env=TOKEN"], { TOKEN: "from-env" });
    const parsed = JSON.parse(json ?? "{}") as Record<string, string>;
    assert.equal(Buffer.from(parsed.f ?? "", "base64").toString(), "from-file\n");
    assert.equal(Buffer.from(parsed.e ?? "", "base64").toString(), "from-env");
    assert.equal(readSecrets([], {}), undefined);
    assert.throws(() => readSecrets([`id=f,src=${join(dir, "nope")}`], {}), /secret "f": cannot read/);
    assert.throws(() => readSecrets(["id=e,env=UNSET"], {}), /environment variable UNSET is not set/);
    writeFileSync(file, Buffer.alloc(20_000, 1));
    assert.throws(() => readSecrets([`id=f,src=${file}`], {}), /secrets too large/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
