import assert from "node:assert/strict";
import { test } from "node:test";
import { ErrorKind, isCanceled, isInvalidArgument, isNotFound, isUnauthorized, isUnavailable, kindOf } from "../base/mod.ts";
import { parseReference } from "../oci/mod.ts";
import { isTemporary, parseErrorBody, parseRetryAfter, responseError } from "./_errors.ts";
import { redirectTarget } from "./_http.ts";
import { Limiter } from "./_limit.ts";
import { translatePullError } from "./_manifest.ts";
import { mayCredentialRealm, TokenCache } from "./auth.ts";
import {
  isInsecure,
  isLoopback,
  parseChallenges,
  parseMirror,
  parseRegistryAuth,
  pullEndpoints,
  registryDomain,
  registryEndpoint,
} from "./mod.ts";

test("parseChallenges reads Bearer and Basic challenges with quoted parameters", () => {
  assert.deepEqual(
    parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'),
    [
      {
        scheme: "bearer",
        params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/busybox:pull" },
      },
    ],
  );
  assert.deepEqual(parseChallenges('Basic realm="x \\"y\\"", Bearer realm=https://a/t'), [
    { scheme: "basic", params: { realm: 'x "y"' } },
    { scheme: "bearer", params: { realm: "https://a/t" } },
  ]);
  assert.deepEqual(parseChallenges(["Basic", 'Bearer realm="r",error="invalid_token"']), [
    { scheme: "basic", params: {} },
    { scheme: "bearer", params: { realm: "r", error: "invalid_token" } },
  ]);
  assert.deepEqual(parseChallenges(""), []);
});

test("redirects keep credentials only on the same origin and never on a downgrade", () => {
  const from = new URL("https://reg.example/v2/a/blobs/sha256:x");
  const o = from.origin;
  assert.equal(redirectTarget(from, "/v2/b", o).keepCredentials, true);
  assert.equal(redirectTarget(from, "https://storage.example/blob?sig=1", o).keepCredentials, false);
  assert.equal(redirectTarget(from, "http://reg.example/v2/b", o).keepCredentials, false);
  assert.equal(redirectTarget(from, "https://reg.example:8443/v2/b", o).keepCredentials, false);
  assert.equal(redirectTarget(from, "/v2/b", undefined).keepCredentials, false);
  assert.throws(() => redirectTarget(from, "file:///etc/passwd", o), isInvalidArgument);
  assert.throws(() => redirectTarget(from, "http://[bad", o), isInvalidArgument);
});

test("token realms get credentials over HTTPS, or over HTTP on the plain-HTTP registry's own host", () => {
  assert.equal(mayCredentialRealm(new URL("https://auth.docker.io/token"), new URL("https://registry-1.docker.io")), true);
  assert.equal(mayCredentialRealm(new URL("http://auth.example/token"), new URL("https://reg.example")), false);
  assert.equal(mayCredentialRealm(new URL("http://reg.example/token"), new URL("https://reg.example")), false);
  assert.equal(mayCredentialRealm(new URL("http://127.0.0.1:5001/token"), new URL("http://127.0.0.1:5000")), true);
  assert.equal(mayCredentialRealm(new URL("http://localhost:5001/token"), new URL("http://127.0.0.1:5000")), false);
});

test("TokenCache keys on scopes and credentials and expires entries", () => {
  let now = 1000;
  const c = new TokenCache({ now: () => now, max: 2 });
  const k1 = TokenCache.key("r", "s", ["b", "a"], undefined);
  assert.equal(k1, TokenCache.key("r", "s", ["a", "b"], {}));
  assert.notEqual(k1, TokenCache.key("r", "s", ["a", "b"], { username: "u", password: "p" }));
  c.set(k1, { token: "t", refreshAt: 2000 });
  assert.equal(c.get(k1)?.token, "t");
  now = 2000;
  assert.equal(c.get(k1), undefined);
  c.set("a", { token: "a", refreshAt: 9e9 });
  c.set("b", { token: "b", refreshAt: 9e9 });
  c.set("c", { token: "c", refreshAt: 9e9 });
  assert.equal(c.size, 2);
  assert.equal(c.get("a"), undefined);
});

test("parseRegistryAuth decodes the docker CLI's header", () => {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  assert.deepEqual(parseRegistryAuth(enc({ username: "u", password: "p", serveraddress: "localhost:5000" })), {
    credentials: { username: "u", password: "p" },
    serverAddress: "localhost:5000",
  });
  assert.deepEqual(parseRegistryAuth(enc({ identitytoken: "rt" })).credentials, { identityToken: "rt" });
  assert.deepEqual(parseRegistryAuth(enc({ auth: Buffer.from("a:b:c").toString("base64") })).credentials, {
    username: "a",
    password: "b:c",
  });
  assert.deepEqual(parseRegistryAuth(enc({})), { credentials: {} });
  assert.deepEqual(parseRegistryAuth(undefined), { credentials: {} });
  assert.throws(() => parseRegistryAuth("!!!not base64 json"), isInvalidArgument);
  assert.throws(() => parseRegistryAuth(enc([1])), isInvalidArgument);
});

test("hosts: loopback, insecure registries by name and CIDR, mirrors, login addresses", () => {
  assert.ok(isLoopback("localhost:5000"));
  assert.ok(isLoopback("127.0.0.2:5000"));
  assert.ok(isLoopback("[::1]:5000"));
  assert.ok(!isLoopback("example.com"));
  const cfg = { insecureRegistries: ["myreg:5000", "10.1.0.0/16", "plain.example"] };
  assert.ok(isInsecure("myreg:5000", cfg));
  assert.ok(!isInsecure("myreg:6000", cfg));
  assert.ok(isInsecure("10.1.2.3:5000", cfg));
  assert.ok(!isInsecure("10.2.0.1", cfg));
  assert.ok(isInsecure("plain.example:443", cfg));
  assert.deepEqual(registryEndpoint("myreg:5000", cfg).candidates.map(String), ["https://myreg:5000/", "http://myreg:5000/"]);
  assert.deepEqual(registryEndpoint("localhost:5000", cfg).candidates.map(String), ["http://localhost:5000/", "https://localhost:5000/"]);
  assert.deepEqual(registryEndpoint("ghcr.io", cfg).candidates.map(String), ["https://ghcr.io/"]);
  const eps = pullEndpoints("docker.io", { mirrors: ["https://m1.example", "http://127.0.0.1:5000/"] });
  assert.deepEqual(
    eps.map((e) => [e.candidates[0]?.origin, e.mirror]),
    [
      ["https://m1.example", true],
      ["http://127.0.0.1:5000", true],
      ["https://registry-1.docker.io", false],
    ],
  );
  assert.equal(pullEndpoints("ghcr.io", { mirrors: ["https://m1.example"] }).length, 1);
  assert.throws(() => parseMirror("https://u:p@m.example"), isInvalidArgument);
  assert.throws(() => parseMirror("https://m.example/path"), isInvalidArgument);
  assert.throws(() => parseMirror("ftp://m.example"), isInvalidArgument);
  assert.equal(registryDomain("https://index.docker.io/v1/"), "docker.io");
  assert.equal(registryDomain("localhost:5000"), "localhost:5000");
  assert.equal(registryDomain("https://MyReg.example/"), "myreg.example");
  assert.throws(() => registryDomain("a b"), isInvalidArgument);
});

test("registry error bodies become error kinds with docker's wording", () => {
  const e = (status: number, body: unknown) =>
    responseError({
      status,
      method: "GET",
      url: "https://r/v2/x?token=secret",
      entries: parseErrorBody(Buffer.from(JSON.stringify(body))),
    });
  const unknown = e(404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] });
  assert.ok(isNotFound(unknown));
  assert.equal(unknown.message, "manifest unknown: manifest unknown");
  assert.ok(isUnauthorized(e(401, { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] })));
  assert.equal(
    kindOf(e(403, { errors: [{ code: "DENIED", message: "requested access to the resource is denied" }] })),
    ErrorKind.PermissionDenied,
  );
  const busy = e(503, "x");
  assert.ok(isUnavailable(busy) && isTemporary(busy));
  assert.equal(busy.message, "unexpected status from GET request to https://r/v2/x: 503");
  assert.ok(!isTemporary(e(400, {})));
  assert.deepEqual(parseErrorBody(Buffer.from('{"details":"incorrect username or password"}')), [
    { code: "", message: "incorrect username or password" },
  ]);
  assert.deepEqual(parseErrorBody(Buffer.from("<html>")), []);
  assert.equal(parseRetryAfter("5"), 5000);
  assert.equal(parseRetryAfter("100000"), 60_000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 8000), 2000);
  assert.equal(parseRetryAfter("soon"), undefined);

  const hub = parseReference("nosuch/thing");
  const denied = translatePullError(e(401, { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }), hub) as Error;
  assert.ok(isUnauthorized(denied));
  assert.equal(
    denied.message,
    "pull access denied for nosuch/thing, repository does not exist or may require 'docker login': unauthorized: authentication required",
  );
  const d2 = translatePullError(
    e(403, { errors: [{ code: "DENIED", message: "requested access to the resource is denied" }] }),
    parseReference("x.io/a"),
  ) as Error;
  assert.ok(isNotFound(d2));
  assert.match(d2.message, /^pull access denied for x\.io\/a, /);
  const nf = translatePullError(e(404, {}), parseReference("busybox:nope")) as Error;
  assert.equal(nf.message, "manifest for busybox:nope not found: manifest unknown: manifest unknown");
  const name = translatePullError(
    e(404, { errors: [{ code: "NAME_UNKNOWN", message: "repository name not known to registry" }] }),
    parseReference("x.io/a:b"),
  ) as Error;
  assert.equal(name.message, "repository x.io/a not found: name unknown: repository name not known to registry");
});

test("Limiter caps holders and serves waiters in order, and aborts waiting", async () => {
  const l = new Limiter(2);
  assert.ok(l.tryAcquire());
  assert.ok(l.tryAcquire());
  assert.ok(!l.tryAcquire());
  const order: number[] = [];
  const a = l.acquire().then(() => order.push(1));
  const b = l.acquire().then(() => order.push(2));
  const ctl = new AbortController();
  const c = l.acquire(ctl.signal);
  ctl.abort();
  await assert.rejects(c, isCanceled);
  l.release();
  l.release();
  await Promise.all([a, b]);
  assert.deepEqual(order, [1, 2]);
  assert.equal(l.active, 2);
  l.release();
  l.release();
  assert.equal(l.active, 0);
});
