/**
 * Golden tests of the loader: each folder of testdata/ holds a Compose project (compose.yaml and
 * whatever it refers to), an optional args.json (`files`, `projectName`, `projectDirectory`,
 * `env`, `envFiles`, `profiles`, `services`) and the expected `result.yaml` (what `compose
 * config` prints) or `error.txt` (the loader's message). The folder's path is written `<dir>`.
 * `UPDATE_GOLDEN=1` rewrites the expectations.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { renderConfig } from "./config.ts";
import { type LoadOptions, loadProject } from "./loader.ts";

const root = new URL("./testdata/", import.meta.url).pathname;
const update = process.env.UPDATE_GOLDEN === "1";

interface Args {
  files?: string[];
  projectName?: string;
  projectDirectory?: string;
  env?: Record<string, string>;
  envFiles?: string[];
  profiles?: string[];
  services?: string[];
  cwd?: string;
}

for (const name of readdirSync(root).sort()) {
  const dir = join(root, name);
  test(`loader golden: ${name}`, async () => {
    const argsPath = join(dir, "args.json");
    const args: Args = existsSync(argsPath) ? JSON.parse(readFileSync(argsPath, "utf8")) : {};
    const o: LoadOptions = { cwd: args.cwd ? join(dir, args.cwd) : dir, env: { ...args.env } };
    if (args.files) o.files = args.files;
    if (args.projectName) o.projectName = args.projectName;
    if (args.projectDirectory) o.projectDirectory = args.projectDirectory;
    if (args.envFiles) o.envFiles = args.envFiles;
    if (args.profiles) o.profiles = args.profiles;
    if (args.services) o.services = args.services;
    let actual: string;
    let file: string;
    try {
      const project = await loadProject(o);
      actual = renderConfig(project);
      file = "result.yaml";
    } catch (e) {
      actual = `${(e as Error).message}\n`;
      file = "error.txt";
    }
    actual = actual.split(dir).join("<dir>");
    const expectedPath = join(dir, file);
    if (update) {
      writeFileSync(expectedPath, actual);
      return;
    }
    const other = file === "result.yaml" ? "error.txt" : "result.yaml";
    if (!existsSync(expectedPath) && existsSync(join(dir, other))) {
      assert.fail(`expected ${other} but got ${file}:\n${actual}`);
    }
    assert.equal(actual, readFileSync(expectedPath, "utf8"));
  });
}
