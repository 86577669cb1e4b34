/**
 * Fixtures for the runtime integration tests: a busybox root filesystem, a scratch directory
 * per container, and a runner that creates, attaches, starts and collects output.
 */
import { existsSync, mkdtempSync, readdirSync, rmdirSync } from "node:fs";
import { chmod, cp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RealHost } from "../../src/base/mod.ts";
import {
  type ContainerRuntime,
  type GenerateSpecInput,
  generateSpec,
  type RuntimeSpec,
  readHostInfo,
  type StdStream,
} from "../../src/runtime/mod.ts";

export const host = new RealHost();
export const hostInfo = readHostInfo();
export const CGROUP_PARENT = "berth-test";

/** Whether the integration tests can run here (root, runc, conmon). */
export function canRun(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root";
  if (!existsSync("/usr/bin/conmon")) return "needs conmon";
  if (!existsSync("/usr/sbin/runc") && !existsSync("/usr/bin/runc")) return "needs runc";
  if (!existsSync("/bin/busybox")) return "needs busybox-static";
  return undefined;
}

let baseRoot: string | undefined;

/** A pristine busybox root (built once per process from /bin/busybox, or copied from the shared fixture). */
export async function busyboxRoot(scratch: string): Promise<string> {
  if (baseRoot) return baseRoot;
  const r = join(scratch, "busybox-root");
  const shared = "/var/tmp/berth-fixtures/busybox-root";
  if (existsSync(join(shared, "bin/busybox"))) {
    await cp(shared, r, { recursive: true, verbatimSymlinks: true });
  } else {
    for (const d of ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "home", "var", "usr/bin", "usr/sbin", "sbin"]) {
      await mkdir(join(r, d), { recursive: true });
    }
    await chmod(join(r, "tmp"), 0o1777);
    await cp("/bin/busybox", join(r, "bin/busybox"));
    const list = await host.run(join(r, "bin/busybox"), ["--list"]);
    for (const a of list.stdout.split("\n").filter(Boolean)) if (a !== "busybox") await symlink("busybox", join(r, "bin", a));
    await writeFile(join(r, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n");
    await writeFile(join(r, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
  }
  baseRoot = r;
  return r;
}

/** A scratch area for one test file, removed by `cleanup`. */
export function scratchDir(): string {
  return mkdtempSync("/tmp/berth-rt-");
}

/** A new container directory with its own copy of the root filesystem. */
export async function newContainer(scratch: string, name: string): Promise<{ id: string; dir: string; rootfs: string }> {
  const id = `${name}-${Math.random().toString(16).slice(2, 10)}`;
  const dir = join(scratch, id);
  const rootfs = join(dir, "rootfs");
  await mkdir(dir, { recursive: true });
  await cp(await busyboxRoot(scratch), rootfs, { recursive: true, verbatimSymlinks: true });
  return { id, dir, rootfs };
}

/** Generates a spec for the test container (private netns, test cgroup parent). */
export async function specFor(
  c: { id: string; rootfs: string },
  input: Partial<GenerateSpecInput> & { args: string[] },
): Promise<RuntimeSpec> {
  const { spec } = await generateSpec({
    rootfs: c.rootfs,
    cgroupsPath: `/${CGROUP_PARENT}/${c.id}`,
    hostname: c.id.slice(0, 12),
    host: hostInfo,
    ...input,
  });
  return spec;
}

/** Collected output of an attach session. */
export class Output {
  stdout = "";
  stderr = "";
  onData = (stream: StdStream, data: Buffer) => {
    if (stream === "stdout") this.stdout += data.toString();
    else this.stderr += data.toString();
  };
  /** Waits until stdout contains `text`. */
  async waitFor(text: string, ms = 10000): Promise<void> {
    const end = Date.now() + ms;
    while (!this.stdout.includes(text)) {
      if (Date.now() > end) throw new Error(`Timed out waiting for ${JSON.stringify(text)}; got ${JSON.stringify(this.stdout)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Rejects after `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`Timed out: ${what}`)), ms);
    }),
  ]);
}

/** Deletes a container (forced), ignoring "unknown to this runtime". */
export async function destroy(rt: ContainerRuntime, id: string): Promise<void> {
  try {
    await rt.delete(id, { force: true });
  } catch {
    // Not created, or already deleted.
  }
}

/** Removes the scratch area and the test cgroup parents. */
export async function cleanup(scratch: string): Promise<void> {
  await rm(scratch, { recursive: true, force: true });
  for (const root of ["/sys/fs/cgroup", ...listDirs("/sys/fs/cgroup").map((d) => join("/sys/fs/cgroup", d))]) {
    const p = join(root, CGROUP_PARENT);
    if (!existsSync(p)) continue;
    for (const child of listDirs(p)) rmdirQuiet(join(p, child));
    rmdirQuiet(p);
  }
}

function listDirs(p: string): string[] {
  try {
    return readdirSync(p, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

function rmdirQuiet(p: string): void {
  try {
    rmdirSync(p);
  } catch {
    // Busy or gone.
  }
}
