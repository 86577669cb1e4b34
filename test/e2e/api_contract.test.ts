/**
 * API contract: berthd's responses validated against the Engine API schemas (test/e2e/schemas).
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, test } from "node:test";
import AjvModule from "ajv";
import { ok, run, SOCKET, uniq } from "./_lib.ts";
import * as schemas from "./schemas/engine.ts";

const skip = !SOCKET || process.getuid?.() !== 0 ? "needs root and BERTH_TEST_SOCKET (scripts/test.sh)" : false;
const Ajv = AjvModule as unknown as typeof AjvModule.default;
const ajv = new Ajv({ allErrors: true, strict: false });

function get(path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: SOCKET, path: `/v1.47${path}`, method: "GET" }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8") || "null") }));
    });
    req.on("error", reject);
    req.end();
  });
}

function check(schema: object, data: unknown, what: string): void {
  const v = ajv.compile(schema);
  assert.ok(v(data), `${what} does not match the Engine API schema: ${ajv.errorsText(v.errors)}`);
}

const name = uniq("e2e-contract");
before(() => {
  if (skip) return;
  ok("docker", ["pull", "-q", "busybox"]);
  ok("docker", ["run", "-d", "--name", name, "-l", "a=b", "-v", "/data", "--health-cmd", "true", "busybox", "sleep", "300"]);
});
after(() => {
  if (!skip) run("docker", ["rm", "-f", "-v", name]);
});

test("container inspect and list match the schema", { skip }, async () => {
  const i = await get(`/containers/${name}/json`);
  assert.equal(i.status, 200);
  check(schemas.containerInspect, i.body, "GET /containers/{id}/json");
  const l = await get("/containers/json?all=1");
  check(schemas.containerSummary, l.body, "GET /containers/json");
});

test("image inspect and list match the schema", { skip }, async () => {
  check(schemas.imageInspect, (await get("/images/busybox/json")).body, "GET /images/{name}/json");
  check(schemas.imageSummary, (await get("/images/json")).body, "GET /images/json");
});

test("info and version match the schema", { skip }, async () => {
  check(schemas.systemInfo, (await get("/info")).body, "GET /info");
  check(schemas.systemVersion, (await get("/version")).body, "GET /version");
});

test("errors are JSON with Docker's wording and status", { skip }, async () => {
  const r = await get("/containers/no-such-container-zz/json");
  assert.equal(r.status, 404);
  assert.deepEqual(r.body, { message: "No such container: no-such-container-zz" });
  const i = await get("/images/no-such-image-zz:1/json");
  assert.equal(i.status, 404);
  assert.deepEqual(i.body, { message: "No such image: no-such-image-zz:1" });
});
