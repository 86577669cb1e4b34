import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import * as tar from "tar-stream";
import { cleanPath, isExcluded, packContext, parseDockerignore } from "./build_context.ts";

async function names(stream: NodeJS.ReadableStream): Promise<string[]> {
  const ex = tar.extract();
  const out: string[] = [];
  stream.pipe(ex as unknown as NodeJS.WritableStream);
  for await (const e of ex) {
    out.push(e.header.name + (e.header.uid === 0 && e.header.gid === 0 ? "" : "!owner"));
    e.resume();
  }
  return out;
}

describe(".dockerignore", () => {
  test("patterns, exceptions, ** and parents", () => {
    const p = parseDockerignore("# c\n*.log\n!keep.log\nnode_modules\n/build/**\n**/tmp\n  spaced  \n");
    assert.equal(isExcluded(p, "a.log"), true);
    assert.equal(isExcluded(p, "keep.log"), false);
    assert.equal(isExcluded(p, "sub/a.log"), false, "* does not cross directories");
    assert.equal(isExcluded(p, "node_modules/x/y.js"), true, "a parent match excludes the contents");
    assert.equal(isExcluded(p, "build/out/bin"), true);
    assert.equal(isExcluded(p, "x/y/tmp"), true);
    assert.equal(isExcluded(p, "tmp"), true);
    assert.equal(isExcluded(p, "spaced"), true);
    assert.equal(isExcluded(p, "src/main.ts"), false);
    assert.equal(cleanPath("./a//b/../c/"), "a/c");
  });
});

describe("build context tar", () => {
  test("excluded files are left out; Dockerfile and .dockerignore always sent; owner 0:0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-ctx-"));
    try {
      writeFileSync(join(dir, "Dockerfile"), "FROM busybox\n");
      writeFileSync(join(dir, ".dockerignore"), "secret*\nDockerfile\n.dockerignore\nlogs\n!logs/keep.txt\n");
      writeFileSync(join(dir, "secret.txt"), "x");
      writeFileSync(join(dir, "app.sh"), "echo");
      mkdirSync(join(dir, "logs"));
      writeFileSync(join(dir, "logs", "a.txt"), "a");
      writeFileSync(join(dir, "logs", "keep.txt"), "k");
      symlinkSync("app.sh", join(dir, "link"));
      const got = await names(
        packContext(dir, { keep: ["Dockerfile", ".dockerignore"], extra: [{ name: ".dockerfile.x", data: Buffer.from("FROM x") }] }),
      );
      assert.deepEqual(got, [".dockerignore", "Dockerfile", "app.sh", "link", "logs/keep.txt", ".dockerfile.x"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
