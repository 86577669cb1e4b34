/**
 * archive against real things: layers of the registry fixture's images unpacked in order with
 * their lowers (diff IDs must match the configs), and the result mounted with overlayfs to see
 * that whiteouts and opaque directories behave as the kernel expects. Root only; the registry
 * part is skipped when the fixture (../shared/fixtures/registry.sh start) is not running.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { applyLayer } from "../../src/archive/mod.ts";
import { RealHost } from "../../src/base/mod.ts";

const REGISTRY = `http://127.0.0.1:${process.env.BERTH_TEST_REGISTRY_PORT ?? "5000"}`;
const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");
const isRoot = process.getuid?.() === 0;
const host = new RealHost();
let base: string;
const mounts: string[] = [];

before(() => {
  base = mkdtempSync(join(tmpdir(), "berth-archive-it-"));
});
after(async () => {
  for (const m of mounts.reverse()) await host.unmount(m, { lazy: true });
  rmSync(base, { recursive: true, force: true });
});

async function registryUp(): Promise<boolean> {
  try {
    const r = await fetch(`${REGISTRY}/v2/`, { signal: AbortSignal.timeout(2000) });
    return r.ok;
  } catch {
    return false;
  }
}

interface Manifest {
  config: { digest: string };
  layers: { digest: string }[];
}

async function manifest(repo: string, ref: string): Promise<Manifest | undefined> {
  const r = await fetch(`${REGISTRY}/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT } });
  if (!r.ok) return undefined;
  const m = (await r.json()) as Manifest & { manifests?: { digest: string; platform?: { architecture: string; os: string } }[] };
  if (m.manifests) {
    const arch = process.arch === "x64" ? "amd64" : process.arch;
    const pick = m.manifests.find((d) => d.platform?.os === "linux" && d.platform.architecture === arch) ?? m.manifests[0];
    return pick ? await manifest(repo, pick.digest) : undefined;
  }
  return m;
}

async function blob(repo: string, digest: string): Promise<Response> {
  const r = await fetch(`${REGISTRY}/v2/${repo}/blobs/${digest}`);
  assert.ok(r.ok, `blob ${digest}`);
  return r;
}

/** Pulls and unpacks an image's layers in order; returns the layer dirs, topmost first. */
async function unpackImage(repo: string, ref: string): Promise<string[] | undefined> {
  const m = await manifest(repo, ref);
  if (!m) return undefined;
  const config = (await (await blob(repo, m.config.digest)).json()) as { rootfs: { diff_ids: string[] } };
  const dirs: string[] = [];
  for (const [i, l] of m.layers.entries()) {
    const dir = join(base, repo.replace(/\W/g, "_"), String(i), "fs");
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const body = (await blob(repo, l.digest)).body!;
    const r = await applyLayer(Readable.fromWeb(body as import("node:stream/web").ReadableStream), dir, {
      host,
      lowers: [...dirs].reverse(),
      layerName: l.digest,
    });
    assert.equal(r.diffId, config.rootfs.diff_ids[i], `diff ID of layer ${i} of ${repo}:${ref}`);
    dirs.push(dir);
  }
  return dirs.reverse();
}

async function mountOverlay(lowers: string[]): Promise<string> {
  const target = mkdtempSync(join(base, "mnt-"));
  await host.mount("overlay", target, "overlay", [`lowerdir=${lowers.join(":")}`]);
  mounts.push(target);
  return target;
}

describe("registry fixture images", { skip: !isRoot && "needs root" }, () => {
  for (const [repo, ref, probe] of [
    ["library/busybox", "latest", "bin/busybox"],
    ["library/alpine", "latest", "bin/sh"],
    ["library/hello-world", "latest", "hello"],
    ["library/debian", "bookworm", "usr/bin/dpkg"],
  ] as const) {
    test(`${repo}:${ref} unpacks with matching diff IDs`, async (t) => {
      if (!(await registryUp())) return t.skip("registry fixture not running");
      const dirs = await unpackImage(repo, ref);
      if (!dirs) return t.skip(`${repo}:${ref} not in the fixture`);
      const merged = dirs.length === 1 ? dirs[0]! : await mountOverlay(dirs);
      assert.ok(existsSync(join(merged, probe)), `${probe} present`);
      assert.ok(readdirSync(join(merged, "etc")).length > 0);
    });
  }
});

describe("overlayfs sees whiteouts and opaque directories", { skip: !isRoot && "needs root" }, () => {
  test("a deleted file and an opaque directory are hidden in the merged view", async () => {
    const { default: tarStream } = await import("tar-stream");
    async function tar(entries: { name: string; data?: string; type?: "directory" | "file" }[]): Promise<Buffer> {
      const pack = tarStream.pack();
      const parts: Buffer[] = [];
      const done = (async () => {
        for await (const c of pack) parts.push(c as Buffer);
      })();
      for (const e of entries) {
        const type = e.type ?? (e.name.endsWith("/") ? "directory" : "file");
        if (type === "file") pack.entry({ name: e.name, type, mode: 0o644 }, e.data ?? "");
        else pack.entry({ name: e.name, type, mode: 0o755 });
      }
      pack.finalize();
      await done;
      return Buffer.concat(parts);
    }
    const l1 = join(base, "wh1", "fs");
    const l2 = join(base, "wh2", "fs");
    mkdirSync(l1, { recursive: true, mode: 0o755 });
    mkdirSync(l2, { recursive: true, mode: 0o755 });
    await applyLayer(
      Readable.from([
        await tar([
          { name: "etc/" },
          { name: "etc/motd", data: "m" },
          { name: "etc/keep", data: "k" },
          { name: "cache/" },
          { name: "cache/old", data: "o" },
        ]),
      ]),
      l1,
      { host },
    );
    await applyLayer(
      Readable.from([
        await tar([{ name: "etc/.wh.motd" }, { name: "cache/" }, { name: "cache/.wh..wh..opq" }, { name: "cache/new", data: "n" }]),
      ]),
      l2,
      {
        host,
        lowers: [l1],
      },
    );
    const merged = await mountOverlay([l2, l1]);
    assert.equal(existsSync(join(merged, "etc/motd")), false);
    assert.equal(readFileSync(join(merged, "etc/keep"), "utf8"), "k");
    assert.deepEqual(readdirSync(join(merged, "cache")), ["new"]);
  });
});
