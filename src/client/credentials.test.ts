import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { FakeHost, RealHost } from "../base/mod.ts";
import { ConfigFile, convertToHostname, decodeRegistryAuth, encodeRegistryAuth, INDEX_SERVER, registryKeyForImage } from "./mod.ts";

describe("X-Registry-Auth", () => {
  test("base64url of the JSON credentials, padded like Go's URLEncoding", () => {
    const h = encodeRegistryAuth({ serverAddress: "localhost:5000", username: "u", password: "p?>~" });
    assert.match(h, /^[A-Za-z0-9_=-]+$/);
    assert.equal(h.length % 4, 0);
    assert.deepEqual(decodeRegistryAuth(h), { username: "u", password: "p?>~", serveraddress: "localhost:5000" });
    assert.equal(encodeRegistryAuth(undefined), "e30=");
    assert.deepEqual(decodeRegistryAuth(encodeRegistryAuth({ serverAddress: "r", identityToken: "tok" })), {
      serveraddress: "r",
      identitytoken: "tok",
    });
  });

  test("registry keys", () => {
    assert.equal(registryKeyForImage("busybox"), INDEX_SERVER);
    assert.equal(registryKeyForImage("docker.io/library/busybox:1"), INDEX_SERVER);
    assert.equal(registryKeyForImage("localhost:5000/a/b@sha256:" + "a".repeat(64)), "localhost:5000");
    assert.equal(convertToHostname("https://r.example.com:5000/v2/"), "r.example.com:5000");
    assert.equal(convertToHostname("r.example.com/path"), "r.example.com");
  });
});

describe("config file store", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "berth-cfg-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("store/get/erase with base64 auth, unknown keys kept, mode 0600", async () => {
    writeFileSync(join(dir, "config.json"), JSON.stringify({ psFormat: "table {{.ID}}", other: { x: 1 } }));
    const cfg = ConfigFile.load(dir, new FakeHost());
    const r = await cfg.store({ serverAddress: "localhost:5000", username: "alice", password: "s3cret:with:colons" });
    assert.equal(r.plaintext, true);
    const saved = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    assert.equal(saved.auths["localhost:5000"].auth, Buffer.from("alice:s3cret:with:colons").toString("base64"));
    assert.deepEqual(saved.other, { x: 1 });
    const again = ConfigFile.load(dir, new FakeHost());
    assert.deepEqual(await again.get("localhost:5000"), {
      serverAddress: "localhost:5000",
      username: "alice",
      password: "s3cret:with:colons",
    });
    // A URL form of the key matches by hostname, as docker's file store does.
    assert.equal((await again.get("http://localhost:5000/")).username, "alice");
    assert.equal(await again.erase("localhost:5000"), true);
    assert.equal((await again.get("localhost:5000")).username, undefined);
  });
});

describe("credential helpers", () => {
  let dir: string;
  let bin: string;
  let oldPath: string | undefined;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "berth-helper-"));
    bin = join(dir, "bin");
    const store = join(dir, "store.json");
    writeFileSync(store, "{}");
    // A fake docker-credential-test speaking the helper protocol, backed by a JSON file.
    const script = `#!/bin/sh
input=$(cat)
export STORE='${store}' INPUT="$input" ACTION="$1"
exec ${process.execPath} -e '
const fs = require("fs");
const s = JSON.parse(fs.readFileSync(process.env.STORE, "utf8"));
const a = process.env.ACTION, i = process.env.INPUT;
if (a === "store") { const c = JSON.parse(i); s[c.ServerURL] = c; fs.writeFileSync(process.env.STORE, JSON.stringify(s)); }
else if (a === "get") { if (!s[i]) { process.stdout.write("credentials not found in native keychain"); process.exit(1); } process.stdout.write(JSON.stringify(s[i])); }
else if (a === "erase") { delete s[i]; fs.writeFileSync(process.env.STORE, JSON.stringify(s)); }
'
`;
    mkdirSync(bin);
    writeFileSync(join(bin, "docker-credential-test"), script);
    chmodSync(join(bin, "docker-credential-test"), 0o755);
    oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath ?? ""}`;
  });
  after(() => {
    process.env.PATH = oldPath;
    rmSync(dir, { recursive: true, force: true });
  });

  test("credsStore: store, get, identity tokens, erase; the file keeps no secret", async () => {
    const cfgDir = join(dir, "cfg");
    const cfg = new ConfigFile(cfgDir, { credsStore: "test" }, new RealHost());
    assert.deepEqual(await cfg.get(INDEX_SERVER), { serverAddress: INDEX_SERVER });
    const r = await cfg.store({ serverAddress: INDEX_SERVER, username: "bob", password: "pw" });
    assert.equal(r.plaintext, false);
    assert.deepEqual(await cfg.get(INDEX_SERVER), { serverAddress: INDEX_SERVER, username: "bob", password: "pw" });
    const file = JSON.parse(readFileSync(join(cfgDir, "config.json"), "utf8"));
    assert.deepEqual(file.auths[INDEX_SERVER], {});
    await cfg.store({ serverAddress: "r.io", identityToken: "tok" });
    assert.deepEqual(await cfg.get("r.io"), { serverAddress: "r.io", identityToken: "tok" });
    await cfg.erase(INDEX_SERVER);
    assert.deepEqual(await cfg.get(INDEX_SERVER), { serverAddress: INDEX_SERVER });
  });

  test("credHelpers wins over credsStore for its registry; a missing helper is an error", async () => {
    const cfg = new ConfigFile(join(dir, "cfg2"), { credsStore: "nonexistent", credHelpers: { "r.io": "test" } }, new RealHost());
    assert.equal(cfg.helperFor("r.io"), "test");
    assert.equal(cfg.helperFor("other.io"), "nonexistent");
    await assert.rejects(cfg.get("other.io"), /docker-credential-nonexistent/);
  });
});
