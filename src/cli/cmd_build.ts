/** `berth build`: the classic builder (POST /build with a tar of the context). */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import * as tar from "tar-stream";
import type { AuthConfig, QueryValue } from "../client/mod.ts";
import { packContext } from "./build_context.ts";
import { type Cli, type OutStream, StatusError } from "./cli.ts";
import type { Command } from "./command.ts";
import { parseUlimit } from "./container_opts.ts";
import { displayJsonMessages, JsonMessageError } from "./jsonmessage.ts";
import { kvToMap } from "./opts.ts";

/** The `X-Registry-Config` header: every stored credential, keyed by registry (base64url JSON). */
async function registryConfig(cli: Cli): Promise<string> {
  const cfg = cli.configFile();
  const out: Record<string, AuthConfig> = {};
  for (const key of Object.keys(cfg.data.auths ?? {})) {
    try {
      const c = await cfg.get(key);
      const a: AuthConfig = { serveraddress: key };
      if (c.username) a.username = c.username;
      if (c.password) a.password = c.password;
      if (c.identityToken) a.identitytoken = c.identityToken;
      out[key] = a;
    } catch {
      // A helper that fails for one registry does not stop the build.
    }
  }
  return Buffer.from(JSON.stringify(out)).toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}

/** A tar with a single Dockerfile (for `berth build - < Dockerfile`). */
function dockerfileTar(data: Buffer): Readable {
  const pack = tar.pack();
  pack.entry({ name: "Dockerfile", mode: 0o600, size: data.length, mtime: new Date(), type: "file" }, data, () => pack.finalize());
  return pack as unknown as Readable;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === "string" ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks);
}

function isArchive(head: Buffer): boolean {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true;
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return true;
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return true;
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return true;
  return head.length >= 262 && head.subarray(257, 262).toString("latin1") === "ustar";
}

/** Where one `--secret` comes from: a file or an environment variable. */
export interface SecretSpec {
  id: string;
  src?: string;
  env?: string;
}

/**
 * Parses `--secret` as buildx does: `id=ID[,type=file|env][,src=PATH|source=PATH][,env=VAR]`.
 * Without `src` or `env`, the environment variable named `id` is used when it is set, else the
 * file named `id`; `type=env` reads the variable named by `src`/`env`, or by `id`.
 */
export function parseSecretSpec(value: string, env: NodeJS.ProcessEnv): SecretSpec {
  const fields = new Map<string, string>();
  for (const part of value.split(",")) {
    const i = part.indexOf("=");
    if (i <= 0) throw new StatusError(1, `invalid secret "${value}": "${part}" is not key=value`);
    const key = part.slice(0, i).trim().toLowerCase();
    if (!["id", "type", "src", "source", "env"].includes(key))
      throw new StatusError(1, `invalid secret "${value}": unexpected key "${key}"`);
    fields.set(key === "source" ? "src" : key, part.slice(i + 1));
  }
  const type = fields.get("type");
  if (type !== undefined && type !== "file" && type !== "env")
    throw new StatusError(1, `invalid secret "${value}": unsupported type "${type}"`);
  const src = fields.get("src");
  const envName = fields.get("env");
  const id = fields.get("id") || envName || src?.split("/").pop() || "";
  if (!id) throw new StatusError(1, `invalid secret "${value}": id is required`);
  if (type === "env") return { id, env: envName || src || id };
  if (envName !== undefined) return { id, env: envName };
  if (src !== undefined) return { id, src };
  if (type !== "file" && env[id] !== undefined) return { id, env: id };
  return { id, src: id };
}

/** Encoded size of all secrets together that still fits in a request line. */
const MAX_SECRETS = 12 * 1024;

/** Reads the secrets of `--secret` flags into berth's `secrets` query parameter (id → base64). */
export function readSecrets(values: string[], env: NodeJS.ProcessEnv): string | undefined {
  if (values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const s = parseSecretSpec(v, env);
    let data: Buffer;
    if (s.env !== undefined) {
      const x = env[s.env];
      if (x === undefined) throw new StatusError(1, `secret "${s.id}": environment variable ${s.env} is not set`);
      data = Buffer.from(x);
    } else {
      try {
        data = readFileSync(s.src ?? s.id);
      } catch (e) {
        throw new StatusError(1, `secret "${s.id}": cannot read ${s.src}: ${(e as Error).message}`);
      }
    }
    out[s.id] = data.toString("base64");
  }
  const json = JSON.stringify(out);
  // They travel in the query string, which the daemon's HTTP parser bounds (16 KiB of headers).
  if (json.length > MAX_SECRETS) throw new StatusError(1, `secrets too large: ${json.length} bytes once encoded, at most ${MAX_SECRETS}`);
  return json;
}

/** An output that keeps what is written (for `-q`: shown only when the build fails). */
function bufferOut(): { out: OutStream; text: () => string } {
  const s = new PassThrough();
  const chunks: Buffer[] = [];
  s.on("data", (c: Buffer) => chunks.push(c));
  return { out: { stream: s, isTTY: false }, text: () => Buffer.concat(chunks).toString() };
}

export const buildCommand: Command = {
  name: "build",
  usage: "[OPTIONS] PATH | URL | -",
  short: "Build an image from a Dockerfile",
  aliasPaths: ["image build", "build", "builder build"],
  args: { exact: 1 },
  flags: [
    { long: "add-host", kind: "list", help: 'Add a custom host-to-IP mapping ("host:ip")' },
    { long: "build-arg", kind: "list", help: "Set build-time variables" },
    { long: "cache-from", kind: "slice", help: "Images to consider as cache sources" },
    { long: "cgroup-parent", kind: "string", help: 'Set the parent cgroup for the "RUN" instructions during build' },
    { long: "compress", kind: "bool", help: "Compress the build context using gzip" },
    { long: "cpu-period", kind: "int", help: "Limit the CPU CFS (Completely Fair Scheduler) period" },
    { long: "cpu-quota", kind: "int", help: "Limit the CPU CFS (Completely Fair Scheduler) quota" },
    { long: "cpu-shares", short: "c", kind: "int", help: "CPU shares (relative weight)" },
    { long: "cpuset-cpus", kind: "string", help: "CPUs in which to allow execution (0-3, 0,1)" },
    { long: "cpuset-mems", kind: "string", help: "MEMs in which to allow execution (0-3, 0,1)" },
    { long: "disable-content-trust", kind: "bool", help: "Skip image verification", defaultText: "true" },
    { long: "file", short: "f", kind: "string", help: 'Name of the Dockerfile (Default is "PATH/Dockerfile")' },
    { long: "force-rm", kind: "bool", help: "Always remove intermediate containers" },
    { long: "iidfile", kind: "string", help: "Write the image ID to the file" },
    { long: "isolation", kind: "string", help: "Container isolation technology" },
    { long: "label", kind: "list", help: "Set metadata for an image" },
    { long: "memory", short: "m", kind: "bytes", help: "Memory limit" },
    { long: "memory-swap", kind: "bytes", help: "Swap limit equal to memory plus swap: -1 to enable unlimited swap" },
    { long: "network", kind: "string", help: "Set the networking mode for the RUN instructions during build", defaultText: '"default"' },
    { long: "no-cache", kind: "bool", help: "Do not use cache when building the image" },
    { long: "platform", kind: "string", help: "Set platform if server is multi-platform capable" },
    { long: "pull", kind: "bool", help: "Always attempt to pull a newer version of the image" },
    { long: "quiet", short: "q", kind: "bool", help: "Suppress the build output and print image ID on success" },
    { long: "rm", kind: "bool", help: "Remove intermediate containers after a successful build", defaultText: "true" },
    { long: "secret", kind: "list", help: 'Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")' },
    { long: "security-opt", kind: "slice", help: "Security options" },
    { long: "shm-size", kind: "bytes", help: 'Size of "/dev/shm"' },
    { long: "squash", kind: "bool", help: "Squash newly built layers into a single new layer" },
    { long: "tag", short: "t", kind: "list", help: 'Name and optionally a tag in the "name:tag" format' },
    { long: "target", kind: "string", help: "Set the target build stage to build." },
    { long: "ulimit", kind: "list", typeName: "ulimit", help: "Ulimit options", defaultText: "[]" },
  ],
  async run(cli, { flags, args }) {
    const source = args[0] as string;
    const quiet = flags.bool("quiet");
    // Read before anything is sent: a missing secret file fails the command up front.
    const secrets = readSecrets(flags.list("secret"), cli.env);
    const query: Record<string, QueryValue> = {};
    let body: Readable;
    let dockerfileName = flags.string("file");
    if (source === "-") {
      if (dockerfileName === "-") throw new StatusError(1, "invalid argument: can't use stdin for both build context and dockerfile");
      const data = await readAll(cli.in.stream);
      body = isArchive(data.subarray(0, 512)) ? (new PassThrough().end(data) as unknown as Readable) : dockerfileTar(data);
    } else if (/^(https?:\/\/|git@|git:\/\/|github\.com\/)/.test(source)) {
      query.remote = source;
      body = new PassThrough().end() as unknown as Readable;
    } else {
      const dir = resolve(source);
      let extra: { name: string; data: Buffer }[] = [];
      let rel = "Dockerfile";
      if (dockerfileName === "-") {
        const data = await readAll(cli.in.stream);
        rel = `.dockerfile.${randomBytes(10).toString("hex")}`;
        extra = [{ name: rel, data }];
      } else if (dockerfileName) {
        const abs = isAbsolute(dockerfileName) ? dockerfileName : resolve(dockerfileName);
        const r = relative(dir, abs);
        if (r.startsWith("..") || isAbsolute(r)) {
          // A Dockerfile outside the context travels inside it under a random name, as docker does.
          let data: Buffer;
          try {
            data = readFileSync(abs);
          } catch {
            throw new StatusError(1, `unable to prepare context: the Dockerfile (${dockerfileName}) cannot be empty`);
          }
          rel = `.dockerfile.${randomBytes(10).toString("hex")}`;
          extra = [{ name: rel, data }];
        } else rel = r.split("\\").join("/");
      }
      try {
        readFileSync(resolve(dir, rel === "Dockerfile" ? "Dockerfile" : rel), { flag: "r" });
      } catch (e) {
        if (extra.length === 0) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === "ENOENT") {
            throw new StatusError(
              1,
              `unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${resolve(dir, rel)}: no such file or directory`,
            );
          }
        }
      }
      dockerfileName = rel;
      body = packContext(dir, { keep: [rel, ".dockerignore"], extra });
    }
    if (dockerfileName) query.dockerfile = dockerfileName;
    const buildArgs: Record<string, string | null> = {};
    for (const a of flags.list("build-arg")) {
      const i = a.indexOf("=");
      if (i >= 0) buildArgs[a.slice(0, i)] = a.slice(i + 1);
      else buildArgs[a] = cli.env[a] ?? null;
    }
    Object.assign(query, {
      t: flags.list("tag"),
      q: quiet || undefined,
      nocache: flags.bool("no-cache") || undefined,
      rm: flags.has("rm") ? flags.bool("rm") : true,
      forcerm: flags.bool("force-rm") || undefined,
      pull: flags.bool("pull") || undefined,
      memory: flags.number("memory"),
      memswap: flags.number("memory-swap"),
      cpushares: flags.number("cpu-shares"),
      cpuperiod: flags.number("cpu-period"),
      cpuquota: flags.number("cpu-quota"),
      cpusetcpus: flags.string("cpuset-cpus") || undefined,
      cpusetmems: flags.string("cpuset-mems") || undefined,
      cgroupparent: flags.string("cgroup-parent") || undefined,
      shmsize: flags.number("shm-size"),
      networkmode: flags.string("network") || undefined,
      platform: flags.string("platform") || undefined,
      target: flags.string("target") || undefined,
      squash: flags.bool("squash") || undefined,
      isolation: flags.string("isolation") || undefined,
      buildargs: Object.keys(buildArgs).length ? JSON.stringify(buildArgs) : undefined,
      labels: flags.list("label").length ? JSON.stringify(kvToMap(flags.list("label"))) : undefined,
      cachefrom: flags.list("cache-from").length ? JSON.stringify(flags.list("cache-from")) : undefined,
      extrahosts: flags.list("add-host").length ? flags.list("add-host").join(",") : undefined,
      securityopt: flags.list("security-opt").length ? JSON.stringify(flags.list("security-opt")) : undefined,
      ulimits: flags.list("ulimit").length ? JSON.stringify(flags.list("ulimit").map(parseUlimit)) : undefined,
      secrets,
    });
    const progress = await cli.client.imageBuild(body, query, { registryConfig: await registryConfig(cli) });
    let imageId = "";
    const buffered = bufferOut();
    try {
      await displayJsonMessages(progress, quiet ? buffered.out : cli.out, {
        onAux: (aux) => {
          const id = (aux as { ID?: string } | null)?.ID;
          if (typeof id === "string") imageId = id;
        },
      });
    } catch (e) {
      if (e instanceof JsonMessageError) {
        if (quiet) cli.err.stream.write(buffered.text());
        throw new StatusError(e.code || 1, e.message);
      }
      throw e;
    }
    if (quiet) await cli.println(imageId);
    if (flags.string("iidfile") && imageId) writeFileSync(flags.string("iidfile"), imageId);
    return 0;
  },
};
