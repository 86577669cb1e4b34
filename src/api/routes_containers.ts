import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { conflict, invalidArgument, isNotFound, messageOf, notFound, notImplemented, randomId } from "../base/mod.ts";
import { type ContainerRecord, type ContainerService, type CreateBody, type MountPoint, mountsForInspect } from "../container/mod.ts";
import type { Daemon } from "../daemon/mod.ts";
import { parseLink, parseLinkPath, portsSummary } from "../network/mod.ts";
import { parseTimeFilter } from "../daemon/mod.ts";
import { buildExecProcess, type ExecSession, type ProcessSpec, resolveUser, type StdStream } from "../runtime/mod.ts";
import { type Ctx, qBool, qFilters, qInt, type Router, readJson, sendJson, versionLess } from "./http.ts";

/** Go's units.HumanDuration, as Docker's Status strings use it. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return "Less than a second";
  if (s === 1) return "1 second";
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return "About a minute";
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return "About an hour";
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

function statusString(c: ContainerRecord): string {
  const st = c.State;
  const t = Date.now();
  if (st.Running) {
    if (st.Paused) return `Up ${humanDuration(t - Date.parse(st.StartedAt))} (Paused)`;
    const h = st.Health?.Status;
    const suffix = h === "starting" ? " (health: starting)" : h ? ` (${h})` : "";
    return `Up ${humanDuration(t - Date.parse(st.StartedAt))}${suffix}`;
  }
  if (st.Status === "restarting") return `Restarting (${st.ExitCode}) ${humanDuration(t - Date.parse(st.FinishedAt))} ago`;
  if (st.Status === "removing") return "Removal In Progress";
  if (st.Status === "dead") return "Dead";
  if (st.StartedAt === "0001-01-01T00:00:00Z" && st.Status === "created") return "Created";
  if (st.FinishedAt === "0001-01-01T00:00:00Z") return "Created";
  return `Exited (${st.ExitCode}) ${humanDuration(t - Date.parse(st.FinishedAt))} ago`;
}

function summary(c: ContainerRecord): Record<string, unknown> {
  const cmd = [c.Path, ...c.Args].map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(" ");
  return {
    Id: c.Id,
    Names: [c.Name],
    Image: c.ImageName,
    ImageID: c.Image,
    Command: [c.Path, ...c.Args].join(" ") || cmd,
    Created: Math.floor(Date.parse(c.Created) / 1000),
    Ports: c.State.Running ? portsSummary(c.NetworkSettings.Ports as Parameters<typeof portsSummary>[0]) : [],
    Labels: c.Config.Labels ?? {},
    State: c.State.Status,
    Status: statusString(c),
    HostConfig: { NetworkMode: c.HostConfig.NetworkMode ?? "bridge" },
    NetworkSettings: { Networks: (c.NetworkSettings.Networks as object) ?? {} },
    Mounts: mountsForInspect(c.Mounts as MountPoint[]),
  };
}

function inspectOut(d: Daemon, c: ContainerRecord): Record<string, unknown> {
  const dirs = c.berth.topChainId ? d.snapshots.chainDirs(c.berth.topChainId) : [];
  let upper = "";
  try {
    upper = d.snapshots.dir(c.berth.snapshotKey);
  } catch {
    upper = "";
  }
  const { berth: _b, ImageName: _n, ...rest } = c;
  return {
    ...rest,
    Image: c.Image,
    GraphDriver: {
      Name: "overlay2",
      Data: {
        LowerDir: dirs.join(":"),
        UpperDir: upper,
        MergedDir: join(d.config.dataRoot, "containers", c.Id, "rootfs"),
        WorkDir: upper.replace(/fs$/, "work"),
      },
    },
    Config: { ...c.Config, Image: c.ImageName },
    Mounts: mountsForInspect(c.Mounts as MountPoint[]),
  };
}

function labelMatch(labels: Record<string, string>, f: string): boolean {
  const i = f.indexOf("=");
  return i < 0 ? f in labels : labels[f.slice(0, i)] === f.slice(i + 1);
}

/** Writes a frame of Docker's multiplexed stream (stdcopy): 8-byte header then the payload. */
export function frame(stream: StdStream | "stdin", data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream === "stdin" ? 0 : stream === "stdout" ? 1 : 2;
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
}

/** Answers an upgrade request with 101 and hands over the raw socket. */
function hijack(ctx: Ctx, multiplexed: boolean): Duplex {
  const sock = ctx.upgradeSocket;
  const ct = multiplexed ? "application/vnd.docker.multiplexed-stream" : "application/vnd.docker.raw-stream";
  if (sock) {
    sock.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${ct}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
    if (ctx.upgradeHead?.length) sock.unshift(ctx.upgradeHead);
    return sock;
  }
  // A client that did not ask to upgrade: answer 200 and use the connection raw (dockerd does the same).
  const s = ctx.req.socket;
  s.write(`HTTP/1.1 200 OK\r\nContent-Type: ${ct}\r\n\r\n`);
  ctx.res.shouldKeepAlive = false;
  return s;
}

interface ExecRecord {
  ID: string;
  ContainerID: string;
  Running: boolean;
  ExitCode: number | null;
  Pid: number;
  OpenStdin: boolean;
  OpenStdout: boolean;
  OpenStderr: boolean;
  ProcessConfig: { tty: boolean; entrypoint: string; arguments: string[]; privileged: boolean; user: string };
  CanRemove: boolean;
  DetachKeys: string;
  body: {
    Cmd: string[];
    Env?: string[];
    User?: string;
    WorkingDir?: string;
    Tty?: boolean;
    Privileged?: boolean;
    /** [height, width] of the client's terminal (API 1.42+). */
    ConsoleSize?: [number, number] | null;
  };
  session?: ExecSession;
  /** A resize that came before the session existed (the docker CLI resizes right after start). */
  pendingSize?: { height: number; width: number };
}

/** A `[height, width]` pair worth applying, or undefined. */
function consoleSizeOf(v: unknown): { height: number; width: number } | undefined {
  if (!Array.isArray(v) || v.length !== 2) return undefined;
  const [height, width] = v.map(Number) as [number, number];
  return height > 0 && width > 0 && height < 65536 && width < 65536 ? { height, width } : undefined;
}

/** Registers the `/containers/*` and `/exec/*` routes. */
/**
 * `DELETE /containers/me/alias?link=1` (`rm -l`): removes the legacy link `alias` of container
 * `me` (its `HostConfig.Links` entry and its /etc/hosts line), with dockerd's errors for a
 * plain container name and for a path that names no link.
 */
async function removeLink(d: Daemon, svc: ContainerService, path: string): Promise<void> {
  const p = parseLinkPath(path);
  if (p === "own") {
    svc.store.mustResolve(path);
    throw conflict("Conflict, cannot remove the default link name of the container");
  }
  const me = p ? svc.store.resolve(p.me) : undefined;
  if (!p || !me?.HostConfig.Links?.some((l) => parseLink(l).alias === p.alias)) throw notFound(`No such container: ${path}`);
  await svc.withLock(me.Id, async (c) => {
    const keep = (c.HostConfig.Links ?? []).filter((l) => parseLink(l).alias !== p.alias);
    c.HostConfig.Links = keep.length ? keep : null;
    svc.store.save(c);
    d.networks.removeLink(c.Id, p.alias);
  });
}

export function containerRoutes(router: Router, d: Daemon, svc: ContainerService): void {
  const execs = new Map<string, ExecRecord>();

  router.add("POST", "/containers/create", async ({ req, res, query }) => {
    const body = await readJson<CreateBody>(req);
    if (!body) throw invalidArgument("config cannot be empty in order to create a container");
    const r = await svc.create(body, query.get("name") || undefined, query.get("platform") || undefined).catch((e: unknown) => {
      // Only a missing image is a 404 here: the docker CLI pulls on a 404 from create, so any other
      // missing thing (--volumes-from, a network, a user) is a bad parameter, as dockerd answers.
      if (isNotFound(e) && !/^(No such image|image with reference)/.test(messageOf(e))) throw invalidArgument(messageOf(e), { cause: e });
      throw e;
    });
    sendJson(res, 201, r);
  });

  router.add("GET", "/containers/json", async ({ res, query }) => {
    const all = qBool(query, "all");
    const limit = qInt(query, "limit") ?? -1;
    const f = qFilters(query);
    const known = [
      "id",
      "name",
      "label",
      "label!",
      "status",
      "exited",
      "ancestor",
      "before",
      "since",
      "health",
      "network",
      "volume",
      "publish",
      "expose",
      "is-task",
    ];
    for (const k of f.keys()) if (!known.includes(k)) throw invalidArgument(`invalid filter '${k}'`);
    for (const s of f.get("status") ?? []) {
      if (!["created", "restarting", "running", "removing", "paused", "exited", "dead"].includes(s))
        throw invalidArgument(`invalid filter 'status=${s}'`);
    }
    const before = f.get("before")?.[0];
    const since = f.get("since")?.[0];
    const beforeC = before ? svc.store.mustResolve(before) : undefined;
    const sinceC = since ? svc.store.mustResolve(since) : undefined;
    let list = svc.store.list();
    if (!all && !f.has("status") && limit <= 0) list = list.filter((c) => c.State.Running || c.State.Status === "restarting");
    list = list.filter((c) => {
      for (const [k, vs] of f) {
        const ok = (fn: (v: string) => boolean) => vs.some(fn);
        switch (k) {
          case "id":
            if (!ok((v) => c.Id.startsWith(v))) return false;
            break;
          case "name":
            if (!ok((v) => new RegExp(v.replace(/^\//, "")).test(c.Name.slice(1)))) return false;
            break;
          case "label":
            if (!vs.every((v) => labelMatch(c.Config.Labels ?? {}, v))) return false;
            break;
          case "label!":
            if (vs.some((v) => labelMatch(c.Config.Labels ?? {}, v))) return false;
            break;
          case "status":
            if (!ok((v) => c.State.Status === v)) return false;
            break;
          case "exited":
            if (!ok((v) => !c.State.Running && c.State.Status === "exited" && String(c.State.ExitCode) === v)) return false;
            break;
          case "ancestor":
            if (
              !ok((v) => {
                if (c.ImageName === v || c.Image === v || c.Image.slice(7).startsWith(v)) return true;
                const img = d.images.store.resolve(v);
                return img !== undefined && img.id === c.Image;
              })
            )
              return false;
            break;
          case "health":
            if (!ok((v) => (c.State.Health?.Status ?? "none") === v)) return false;
            break;
          case "before":
            if (beforeC && Date.parse(c.Created) >= Date.parse(beforeC.Created)) return false;
            break;
          case "since":
            if (sinceC && Date.parse(c.Created) <= Date.parse(sinceC.Created)) return false;
            break;
          case "network": {
            const nets = (c.NetworkSettings.Networks ?? {}) as Record<string, { NetworkID?: string }>;
            const match = (v: string) =>
              (c.HostConfig.NetworkMode ?? "bridge") === v || v in nets || Object.values(nets).some((n) => n.NetworkID?.startsWith(v));
            if (!ok(match)) return false;
            break;
          }
          case "volume":
            if (!ok((v) => (c.Mounts as MountPoint[]).some((m) => m.Name === v || m.Source === v || m.Destination === v))) return false;
            break;
          case "publish":
          case "expose": {
            const ports = (c.NetworkSettings.Ports ?? {}) as Record<string, { HostPort?: string }[] | null>;
            const exposed = Object.keys({ ...(c.Config.ExposedPorts ?? {}), ...ports });
            const match = (v: string) => {
              const [p = "", proto = "tcp"] = v.split("/");
              if (k === "expose") return exposed.includes(`${p}/${proto}`);
              return Object.values(ports).some((list) => (list ?? []).some((b) => b.HostPort === p));
            };
            if (!ok(match)) return false;
            break;
          }
          default:
            break;
        }
      }
      return true;
    });
    if (limit > 0) list = list.slice(0, limit);
    const out = list.map(summary);
    if (qBool(query, "size")) {
      for (let i = 0; i < list.length; i++) {
        const c = list[i];
        const o = out[i];
        if (!c || !o) continue;
        const rw = await svc.sizeRw(c);
        o.SizeRw = rw;
        o.SizeRootFs = rw + (d.images.store.get(c.Image as never)?.size ?? 0);
      }
    }
    sendJson(res, 200, out);
  });

  router.add("GET", "/containers/{id}/json", async ({ res, params, query }) => {
    const c = svc.store.mustResolve(params.id ?? "");
    const out = inspectOut(d, c);
    if (qBool(query, "size")) {
      const rw = await svc.sizeRw(c);
      out.SizeRw = rw;
      out.SizeRootFs = rw + (d.images.store.get(c.Image as never)?.size ?? 0);
    }
    sendJson(res, 200, out);
  });

  router.add("POST", "/containers/{id}/start", async ({ res, params }) => {
    const c = svc.store.mustResolve(params.id ?? "");
    if (c.State.Running) {
      res.writeHead(304);
      res.end();
      return;
    }
    await svc.start(c.Id);
    res.writeHead(204);
    res.end();
  });

  router.add("POST", "/containers/{id}/stop", async ({ res, params, query }) => {
    const t = qInt(query, "t") ?? qInt(query, "timeout");
    const changed = await svc.stop(params.id ?? "", { timeout: t, signal: query.get("signal") ?? undefined });
    res.writeHead(changed ? 204 : 304);
    res.end();
  });

  router.add("POST", "/containers/{id}/restart", async ({ res, params, query }) => {
    await svc.restart(params.id ?? "", { timeout: qInt(query, "t"), signal: query.get("signal") ?? undefined });
    res.writeHead(204);
    res.end();
  });

  router.add("POST", "/containers/{id}/kill", async ({ res, params, query }) => {
    await svc.kill(params.id ?? "", query.get("signal") || "SIGKILL");
    res.writeHead(204);
    res.end();
  });

  router.add("POST", "/containers/{id}/pause", async ({ res, params }) => {
    await svc.pause(params.id ?? "");
    res.writeHead(204);
    res.end();
  });

  router.add("POST", "/containers/{id}/unpause", async ({ res, params }) => {
    await svc.unpause(params.id ?? "");
    res.writeHead(204);
    res.end();
  });

  router.add("POST", "/containers/{id}/rename", ({ res, params, query }) => {
    svc.rename(params.id ?? "", query.get("name") ?? "");
    res.writeHead(204);
    res.end();
  });

  // `{id*}`: `rm -l me/alias` sends the link's path, slash and all.
  router.add("DELETE", "/containers/{id*}", async ({ res, params, query }) => {
    if (qBool(query, "link")) await removeLink(d, svc, params.id ?? "");
    else await svc.remove(params.id ?? "", { force: qBool(query, "force"), volumes: qBool(query, "v") });
    res.writeHead(204);
    res.end();
  });

  router.add("POST", "/containers/{id}/wait", async ({ req, res, params, query }) => {
    const c = svc.store.mustResolve(params.id ?? "");
    const ac = new AbortController();
    req.socket.on("close", () => ac.abort());
    // Headers first, as dockerd does, so that the client knows the wait is registered.
    res.writeHead(200, { "Content-Type": "application/json" });
    res.flushHeaders();
    try {
      const r = await svc.wait(c.Id, query.get("condition") ?? "", ac.signal);
      res.end(`${JSON.stringify(r)}\n`);
    } catch (e) {
      res.end(`${JSON.stringify({ StatusCode: -1, Error: { Message: messageOf(e) } })}\n`);
    }
  });

  router.add("POST", "/containers/{id}/resize", async ({ res, params, query }) => {
    const c = svc.store.mustResolve(params.id ?? "");
    if (!c.State.Running) throw conflict(`Container ${c.Id} is not running`);
    await svc.runtime.resize(c.Id, qInt(query, "h") ?? 24, qInt(query, "w") ?? 80).catch(() => {});
    res.writeHead(200);
    res.end();
  });

  router.add("GET", "/containers/{id}/top", async ({ res, params, query }) => {
    sendJson(res, 200, await svc.top(params.id ?? "", query.get("ps_args") ?? ""));
  });

  router.add("GET", "/containers/{id}/logs", async ({ req, res, params, query }) => {
    const c = svc.store.mustResolve(params.id ?? "");
    const stdout = qBool(query, "stdout");
    const stderr = qBool(query, "stderr");
    if (!stdout && !stderr) throw invalidArgument("Bad parameters: you must choose at least one stream");
    if (c.HostConfig.LogConfig?.Type === "none") throw notImplemented("configured logging driver does not support reading");
    const tailQ = query.get("tail");
    const tail = tailQ && tailQ !== "all" ? Number(tailQ) : undefined;
    const ts = qBool(query, "timestamps");
    // --details: the log's extra attributes before each line (berth records none: an empty set, as Docker prints it).
    const details = qBool(query, "details") ? Buffer.from(" ") : undefined;
    const tty = c.Config.Tty === true;
    const ac = new AbortController();
    req.socket.on("close", () => ac.abort());
    res.writeHead(200, { "Content-Type": tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream" });
    res.flushHeaders();
    const since = query.get("since") ?? undefined;
    const until = query.get("until") ?? undefined;
    for await (const e of svc.logs(c.Id, {
      stdout,
      stderr,
      follow: qBool(query, "follow"),
      tail,
      since: since ? String(parseTimeFilter(since) / 1000) : undefined,
      until: until ? String(parseTimeFilter(until) / 1000) : undefined,
      signal: ac.signal,
    })) {
      const parts = [...(ts ? [Buffer.from(`${e.time} `)] : []), ...(details ? [details] : []), e.data];
      const data = parts.length === 1 ? e.data : Buffer.concat(parts);
      res.write(tty ? data : frame(e.stream, data));
    }
    res.end();
  });

  router.add("POST", "/containers/{id}/attach", async (ctx) => {
    const { params, query, version } = ctx;
    const c = svc.store.mustResolve(params.id ?? "");
    const stream = qBool(query, "stream");
    const logs = qBool(query, "logs");
    const wantStdin = qBool(query, "stdin");
    const wantStdout = qBool(query, "stdout");
    const wantStderr = qBool(query, "stderr");
    const tty = c.Config.Tty === true;
    const sock = hijack(ctx, !tty && !versionLess(version, "1.42"));
    const send = (s: StdStream, data: Buffer) => {
      if (!sock.writable) return;
      sock.write(tty ? data : frame(s, data));
    };
    if (logs) {
      for await (const e of svc.logs(c.Id, { stdout: wantStdout, stderr: wantStderr, follow: false })) send(e.stream, e.data);
    }
    if (!stream) {
      sock.end();
      return;
    }
    let ended = false;
    const att = await svc.attach(c.Id, {
      stdin: wantStdin,
      stdout: wantStdout,
      stderr: wantStderr,
      onData: send,
      onEnd: () => {
        if (ended) return;
        ended = true;
        sock.end();
      },
    });
    const detachKeys = parseDetachKeys(query.get("detachKeys") ?? "ctrl-p,ctrl-q");
    let matched = 0;
    sock.on("data", (chunk: Buffer) => {
      if (!wantStdin) return;
      if (tty && detachKeys.length) {
        for (const b of chunk) {
          matched = b === detachKeys[matched] ? matched + 1 : b === detachKeys[0] ? 1 : 0;
          if (matched === detachKeys.length) {
            att.detach();
            ended = true;
            sock.end();
            d.events.publish("container", "detach", c.Id, { name: c.Name.slice(1) });
            return;
          }
        }
      }
      att.write(chunk);
    });
    sock.on("end", () => att.end());
    sock.on("close", () => {
      if (!ended) att.detach();
    });
    sock.on("error", () => att.detach());
    sock.resume();
    // A container that is not running and will not start: nothing to stream.
    if (!c.State.Running && c.State.Status === "exited" && !stream) sock.end();
  });

  router.add("POST", "/containers/{id}/exec", async ({ req, res, params }) => {
    const c = svc.mustRun(params.id ?? "");
    const body = (await readJson<
      ExecRecord["body"] & { AttachStdin?: boolean; AttachStdout?: boolean; AttachStderr?: boolean; DetachKeys?: string }
    >(req)) ?? { Cmd: [] };
    if (!Array.isArray(body.Cmd) || body.Cmd.length === 0) throw invalidArgument("No exec command specified");
    const id = randomId();
    execs.set(id, {
      ID: id,
      ContainerID: c.Id,
      Running: false,
      ExitCode: null,
      Pid: 0,
      OpenStdin: body.AttachStdin === true,
      OpenStdout: body.AttachStdout !== false,
      OpenStderr: body.AttachStderr !== false,
      ProcessConfig: {
        tty: body.Tty === true,
        entrypoint: body.Cmd[0] ?? "",
        arguments: body.Cmd.slice(1),
        privileged: body.Privileged === true,
        user: body.User ?? "",
      },
      CanRemove: false,
      DetachKeys: body.DetachKeys ?? "",
      body,
    });
    c.ExecIDs = [...(c.ExecIDs ?? []), id];
    svc.store.save(c);
    d.events.publish("container", `exec_create: ${body.Cmd.join(" ")}`, c.Id, { name: c.Name.slice(1), execID: id });
    sendJson(res, 201, { Id: id });
  });

  router.add("GET", "/exec/{id}/json", ({ res, params }) => {
    const e = execs.get(params.id ?? "");
    if (!e) throw notFound(`No such exec instance: ${params.id}`);
    const { body: _b, session: _s, ...out } = e;
    sendJson(res, 200, out);
  });

  router.add("POST", "/exec/{id}/resize", async ({ res, params, query }) => {
    const e = execs.get(params.id ?? "");
    if (!e) throw notFound(`No such exec instance: ${params.id}`);
    const height = qInt(query, "h") ?? 24;
    const width = qInt(query, "w") ?? 80;
    if (e.session) await e.session.resize(height, width).catch(() => {});
    else e.pendingSize = { height, width };
    res.writeHead(200);
    res.end();
  });

  router.add("POST", "/exec/{id}/start", async (ctx) => {
    const { req, params, version } = ctx;
    const e = execs.get(params.id ?? "");
    if (!e) throw notFound(`No such exec instance: ${params.id}`);
    if (e.Running || e.ExitCode !== null) throw conflict(`Exec command ${e.ID} has already run`);
    let startBody: { Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null } = {};
    if (ctx.upgradeSocket) {
      if (ctx.upgradeBody?.length) {
        try {
          startBody = JSON.parse(ctx.upgradeBody.toString("utf8")) as typeof startBody;
        } catch {
          throw invalidArgument("Invalid exec start body");
        }
      }
    } else startBody = (await readJson<typeof startBody>(req)) ?? {};
    const c = svc.mustRun(e.ContainerID);
    const spec = JSON.parse(await readFile(join(svc.dir(c.Id), "config.json"), "utf8")) as { process: ProcessSpec; root: { path: string } };
    const user = e.body.User ? await resolveUser(spec.root.path, e.body.User, []) : undefined;
    const input: Parameters<typeof buildExecProcess>[1] = {
      args: e.body.Cmd,
      env: e.body.Env ?? [],
      tty: e.ProcessConfig.tty,
      privileged: e.ProcessConfig.privileged,
    };
    if (user) input.user = user;
    if (e.body.WorkingDir) input.cwd = e.body.WorkingDir;
    const proc = buildExecProcess(spec.process, input);
    const tty = e.ProcessConfig.tty;
    // The terminal starts at the client's size (sent with create or start), not 0x0 until a resize.
    const size = consoleSizeOf(startBody.ConsoleSize) ?? consoleSizeOf(e.body.ConsoleSize);
    if (tty && size) proc.consoleSize = size;
    const detach = startBody.Detach === true;
    let sock: Duplex | undefined;
    if (!detach) sock = hijack(ctx, !tty && !versionLess(version, "1.42"));
    const send = (s: StdStream, data: Buffer) => {
      if (!sock?.writable) return;
      if ((s === "stdout" && !e.OpenStdout) || (s === "stderr" && !e.OpenStderr)) return;
      sock.write(tty ? data : frame(s, data));
    };
    d.events.publish("container", `exec_start: ${e.body.Cmd.join(" ")}`, c.Id, { name: c.Name.slice(1), execID: e.ID });
    let session: ExecSession;
    try {
      session = await svc.runtime.exec(c.Id, { process: proc, stdin: e.OpenStdin, onData: send });
    } catch (err) {
      e.ExitCode = ((err as { detail?: { exitCode?: number } }).detail?.exitCode as number | undefined) ?? 126;
      if (sock) {
        sock.write(tty ? Buffer.from(`${messageOf(err)}\r\n`) : frame("stderr", Buffer.from(`${messageOf(err)}\n`)));
        sock.end();
        return;
      }
      throw err;
    }
    e.session = session;
    e.Running = true;
    e.Pid = session.pid;
    if (tty && e.pendingSize) void session.resize(e.pendingSize.height, e.pendingSize.width).catch(() => {});
    if (!detach) ctx.res.statusCode = 101;
    else {
      ctx.res.writeHead(200, { "Content-Type": "application/json", "Content-Length": 0 });
      ctx.res.end();
    }
    if (sock) {
      sock.on("data", (chunk: Buffer) => {
        if (e.OpenStdin) void session.write(chunk).catch(() => {});
      });
      sock.on("end", () => session.end());
      sock.on("error", () => {});
      sock.resume();
    }
    const { exitCode } = await session.exit;
    e.Running = false;
    e.ExitCode = exitCode;
    d.events.publish("container", "exec_die", c.Id, { name: c.Name.slice(1), execID: e.ID, exitCode: String(exitCode) });
    sock?.end();
  });

  router.add("GET", "/containers/{id}/stats", async ({ req, res, params, query }) => {
    const c = svc.store.mustResolve(params.id ?? "");
    const stream = qBool(query, "stream", true) && !qBool(query, "one-shot");
    const empty = () => ({
      read: "0001-01-01T00:00:00Z",
      preread: "0001-01-01T00:00:00Z",
      pids_stats: {},
      blkio_stats: {
        io_service_bytes_recursive: null,
        io_serviced_recursive: null,
        io_queue_recursive: null,
        io_service_time_recursive: null,
        io_wait_time_recursive: null,
        io_merged_recursive: null,
        io_time_recursive: null,
        sectors_recursive: null,
      },
      num_procs: 0,
      storage_stats: {},
      cpu_stats: {
        cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
        throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
      },
      precpu_stats: {
        cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
        throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
      },
      memory_stats: {},
      name: c.Name,
      id: c.Id,
    });
    const sample = async (): Promise<Record<string, unknown>> => {
      const cur = svc.store.get(c.Id);
      if (!cur?.State.Running) return empty();
      const st = (await svc.runtime.stats(c.Id)) as unknown as Record<string, unknown>;
      return { ...st, name: c.Name, id: c.Id };
    };
    let prev = await sample().catch(() => empty());
    const withPre = (cur: Record<string, unknown>, pre: Record<string, unknown>) => ({
      ...cur,
      preread: pre.read,
      precpu_stats: pre.cpu_stats,
    });
    res.writeHead(200, { "Content-Type": "application/json" });
    if (!stream) {
      // docker stats --no-stream needs two samples for a CPU percentage.
      if (!qBool(query, "one-shot")) {
        await new Promise((r) => setTimeout(r, 1000));
        const cur = await sample().catch(() => empty());
        res.end(`${JSON.stringify(withPre(cur, prev))}\n`);
      } else res.end(`${JSON.stringify(withPre(prev, empty()))}\n`);
      return;
    }
    let closed = false;
    req.socket.on("close", () => {
      closed = true;
    });
    res.write(`${JSON.stringify(withPre(prev, empty()))}\n`);
    while (!closed) {
      await new Promise((r) => setTimeout(r, 1000));
      if (closed) break;
      const cur = await sample().catch(() => empty());
      res.write(`${JSON.stringify(withPre(cur, prev))}\n`);
      prev = cur;
    }
    res.end();
  });

  router.add("POST", "/containers/{id}/update", async ({ req, res, params }) => {
    const body = (await readJson<Record<string, unknown>>(req)) ?? {};
    await svc.update(params.id ?? "", body);
    sendJson(res, 200, { Warnings: [] });
  });

  router.add("POST", "/containers/prune", async ({ res, query }) => {
    const f = qFilters(query);
    const untilV = f.get("until")?.[0];
    const untilMs = untilV ? parseTimeFilter(untilV) : undefined;
    const deleted: string[] = [];
    for (const c of svc.store.list()) {
      if (c.State.Running || c.State.Status === "restarting" || c.State.Paused) continue;
      if (untilMs !== undefined && Date.parse(c.Created) >= untilMs) continue;
      if (f.get("label") && !(f.get("label") ?? []).every((l) => labelMatch(c.Config.Labels ?? {}, l))) continue;
      if ((f.get("label!") ?? []).some((l) => labelMatch(c.Config.Labels ?? {}, l))) continue;
      await svc.remove(c.Id, { force: false });
      deleted.push(c.Id);
    }
    sendJson(res, 200, { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: 0 });
  });
}

function parseDetachKeys(s: string): number[] {
  if (!s) return [];
  return s.split(",").map((k) => {
    const m = /^ctrl-(.)$/.exec(k.trim());
    if (m?.[1]) {
      const ch = m[1];
      if (ch === "@") return 0;
      if (ch >= "a" && ch <= "z") return ch.charCodeAt(0) - 96;
      return { "[": 27, "\\": 28, "]": 29, "^": 30, _: 31 }[ch] ?? 0;
    }
    return k.charCodeAt(0);
  });
}
