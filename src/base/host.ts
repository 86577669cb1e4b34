import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { BerthError, ErrorKind } from "./errors.ts";

/** Result of a finished command. */
export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  input?: string | Uint8Array;
  signal?: AbortSignal;
  /** Return the result instead of throwing when the command exits non-zero. */
  allowFailure?: boolean;
  /** Cap on captured output, per stream (default 16 MiB). */
  maxOutput?: number;
}

/**
 * The one seam between berth and the operating system's processes and mounts. Only `runtime`,
 * `snapshot`, `network`, `archive` and `daemon` use it; unit tests pass a `FakeHost`.
 * Real file I/O under berth's own directories goes through `node:fs` directly.
 */
export interface Host {
  /** Runs a command to completion, capturing its output. */
  run(cmd: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Starts a long-running process (a monitor, a DNS helper) with the given stdio. */
  spawn(cmd: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** mount(8) with `-t type -o options source target`, run in `cwd` (overlay uses relative lowerdirs). */
  mount(source: string, target: string, type: string, options: readonly string[], cwd?: string): Promise<void>;
  /** umount(8); `lazy` detaches (MNT_DETACH). A target that is not mounted is not an error. */
  unmount(target: string, options?: { lazy?: boolean }): Promise<void>;
}

/** The real host: child_process and mount(8). */
export class RealHost implements Host {
  async run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const max = options.maxOutput ?? 16 * 1024 * 1024;
    return await new Promise<RunResult>((resolve, reject) => {
      const child = spawn(cmd, args, {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: ["pipe", "pipe", "pipe"],
        signal: options.signal,
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outLen = 0;
      let errLen = 0;
      child.stdout?.on("data", (c: Buffer) => {
        if (outLen < max) out.push(c);
        outLen += c.length;
      });
      child.stderr?.on("data", (c: Buffer) => {
        if (errLen < max) err.push(c);
        errLen += c.length;
      });
      child.on("error", (e) => {
        reject(
          new BerthError(
            (e as NodeJS.ErrnoException).code === "ENOENT" ? ErrorKind.NotFound : ErrorKind.Internal,
            `Cannot run "${cmd}": ${e.message}`,
            { cause: e },
          ),
        );
      });
      child.on("close", (code, signal) => {
        const r: RunResult = {
          code: code ?? 128,
          signal,
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
        };
        if (r.code !== 0 && !options.allowFailure) {
          reject(
            new BerthError(ErrorKind.Internal, `${cmd} ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`, {
              detail: { code: r.code, stderr: r.stderr },
            }),
          );
        } else resolve(r);
      });
      child.stdin?.on("error", () => {});
      if (options.input !== undefined) child.stdin?.end(options.input);
      else child.stdin?.end();
    });
  }

  spawn(cmd: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    return spawn(cmd, args, options);
  }

  async mount(source: string, target: string, type: string, options: readonly string[], cwd?: string): Promise<void> {
    const args = ["-t", type];
    if (options.length) args.push("-o", options.join(","));
    args.push(source, target);
    await this.run("mount", args, cwd === undefined ? {} : { cwd });
  }

  async unmount(target: string, options: { lazy?: boolean } = {}): Promise<void> {
    const r = await this.run("umount", options.lazy ? ["-l", target] : [target], { allowFailure: true });
    if (r.code !== 0 && !/not mounted|no mount point|not found|No such file/i.test(r.stderr)) {
      throw new BerthError(ErrorKind.Internal, `Cannot unmount "${target}": ${r.stderr.trim()}`);
    }
  }
}

/** A Host for unit tests: records calls and answers from a script. */
export class FakeHost implements Host {
  calls: { cmd: string; args: string[] }[] = [];
  mounts = new Map<string, { source: string; type: string; options: string[] }>();
  answer: (cmd: string, args: readonly string[]) => RunResult = () => ({ code: 0, signal: null, stdout: "", stderr: "" });
  async run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    this.calls.push({ cmd, args: [...args] });
    const r = this.answer(cmd, args);
    if (r.code !== 0 && !options.allowFailure) throw new BerthError(ErrorKind.Internal, `${cmd} failed: ${r.stderr}`);
    return r;
  }
  spawn(): ChildProcess {
    throw new BerthError(ErrorKind.NotImplemented, "FakeHost cannot spawn");
  }
  async mount(source: string, target: string, type: string, options: readonly string[]): Promise<void> {
    this.mounts.set(target, { source, type, options: [...options] });
  }
  async unmount(target: string): Promise<void> {
    this.mounts.delete(target);
  }
}
