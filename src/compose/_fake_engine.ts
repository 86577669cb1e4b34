/**
 * An in-process fake of the Engine API on a unix socket, with just what compose uses: images
 * (inspect, pull), containers (create, list with label filters, inspect, start, stop, kill,
 * remove, wait, logs), networks and volumes. Containers "run" until stopped; a container whose
 * command is `["exit", "N"]` exits with N when started. For unit tests of the engine operations.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

interface FakeContainer {
  Id: string;
  Name: string;
  Created: number;
  Config: Record<string, unknown> & { Labels?: Record<string, string>; Image?: string; Cmd?: string[]; Healthcheck?: unknown };
  HostConfig: Record<string, unknown>;
  NetworkingConfig?: unknown;
  State: { Status: string; Running: boolean; ExitCode: number; Health?: { Status: string } };
  networks: string[];
}

/** A running fake daemon; `host` is its `unix://` address. */
export class FakeEngine {
  readonly host: string;
  readonly images = new Map<string, string>([
    ["busybox", "sha256:busybox"],
    ["busybox:latest", "sha256:busybox"],
  ]);
  readonly containers = new Map<string, FakeContainer>();
  readonly networks = new Map<string, { Name: string; Id: string; Labels: Record<string, string>; Driver: string }>();
  readonly volumes = new Map<string, { Name: string; Labels: Record<string, string>; Driver: string }>();
  /** Every request as `METHOD /path` (without the version prefix), for assertions. */
  readonly calls: string[] = [];
  /** Start order of containers, by name. */
  readonly started: string[] = [];
  #server: Server;
  #dir: string;
  #seq = 0;

  private constructor(server: Server, dir: string) {
    this.#server = server;
    this.#dir = dir;
    this.host = `unix://${join(dir, "fake.sock")}`;
  }

  /** Starts a fake daemon. */
  static async start(): Promise<FakeEngine> {
    const dir = mkdtempSync(join(tmpdir(), "compose-fake-"));
    let engine: FakeEngine | undefined;
    const server = createServer((req, res) => {
      void engine?.handle(req, res);
    });
    engine = new FakeEngine(server, dir);
    await new Promise<void>((resolve) => server.listen(join(dir, "fake.sock"), resolve));
    return engine;
  }

  /** Stops the daemon and removes its socket directory. */
  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #id(): string {
    this.#seq++;
    return this.#seq.toString(16).padStart(64, "0");
  }

  #find(ref: string): FakeContainer | undefined {
    const name = decodeURIComponent(ref);
    for (const c of this.containers.values()) if (c.Id === name || c.Name === `/${name}` || c.Id.startsWith(name)) return c;
    return undefined;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname.replace(/^\/v[\d.]+/, "");
    const method = req.method ?? "GET";
    this.calls.push(`${method} ${path}`);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const body = text && (req.headers["content-type"] ?? "").includes("json") ? (JSON.parse(text) as Record<string, unknown>) : {};
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json", "Api-Version": "1.47" });
      res.end(JSON.stringify(value));
    };
    const notFound = (what: string) => json(404, { message: what });
    const empty = () => {
      res.writeHead(204, { "Api-Version": "1.47" });
      res.end();
    };
    let m: RegExpExecArray | null;
    if (path === "/_ping") {
      res.writeHead(200, { "Api-Version": "1.47" });
      return void res.end("OK");
    }
    if ((m = /^\/images\/(.+)\/json$/.exec(path))) {
      const id = this.images.get(decodeURIComponent(m[1] as string));
      return id ? json(200, { Id: id, Size: 1000 }) : notFound(`No such image: ${m[1]}`);
    }
    if (path === "/images/create") {
      const name = `${url.searchParams.get("fromImage")}:${url.searchParams.get("tag")}`;
      const short = name.replace(/^docker\.io\//, "").replace(/^library\//, "");
      if (short.startsWith("missing")) return json(404, { message: `pull access denied for ${short}` });
      this.images.set(short, `sha256:${short}`);
      this.images.set(short.replace(/:latest$/, ""), `sha256:${short}`);
      return json(200, { status: "Pulled" });
    }
    if (path === "/containers/json") {
      const filters = JSON.parse(url.searchParams.get("filters") ?? "{}") as { label?: Record<string, boolean> };
      const labels = Object.keys(filters.label ?? {});
      const all = url.searchParams.get("all") === "1" || url.searchParams.get("all") === "true";
      const out = [...this.containers.values()]
        .filter((c) => all || c.State.Running)
        .filter((c) =>
          labels.every((l) => {
            const [k, v] = l.split("=");
            const have = c.Config.Labels?.[k as string];
            return v === undefined ? have !== undefined : have === v;
          }),
        )
        .map((c) => ({
          Id: c.Id,
          Names: [c.Name],
          Image: c.Config.Image,
          ImageID: this.images.get(String(c.Config.Image)) ?? "",
          Command: (c.Config.Cmd ?? []).join(" "),
          Created: c.Created,
          Ports: [],
          Labels: c.Config.Labels ?? {},
          State: c.State.Status,
          Status: c.State.Running ? "Up 1 second" : `Exited (${c.State.ExitCode}) 1 second ago`,
          Mounts: [],
        }));
      return json(200, out);
    }
    if (path === "/containers/create") {
      const name = url.searchParams.get("name") ?? "";
      if (this.#find(name)) return json(409, { message: `Conflict. The container name "/${name}" is already in use` });
      if (!this.images.has(String(body.Image))) return notFound(`No such image: ${String(body.Image)}`);
      const id = this.#id();
      const hc = (body.HostConfig ?? {}) as Record<string, unknown>;
      const net = String(hc.NetworkMode ?? "bridge");
      if (!["bridge", "host", "none"].includes(net) && !net.startsWith("container:") && !this.networks.has(net)) {
        return notFound(`network ${net} not found`);
      }
      this.containers.set(id, {
        Id: id,
        Name: `/${name}`,
        Created: Math.floor(Date.now() / 1000),
        Config: body as FakeContainer["Config"],
        HostConfig: hc,
        NetworkingConfig: body.NetworkingConfig,
        State: { Status: "created", Running: false, ExitCode: 0 },
        networks: [net],
      });
      return json(201, { Id: id, Warnings: [] });
    }
    if (
      (m = /^\/containers\/([^/]+)\/(json|start|stop|kill|wait|restart|logs)$/.exec(path)) ||
      (m = /^\/containers\/([^/]+)$/.exec(path))
    ) {
      const c = this.#find(m[1] as string);
      if (!c) return notFound(`No such container: ${m[1]}`);
      const action = m[2];
      if (action === undefined && method === "DELETE") {
        if (c.State.Running && url.searchParams.get("force") !== "1" && url.searchParams.get("force") !== "true") {
          return json(409, { message: "You cannot remove a running container" });
        }
        this.containers.delete(c.Id);
        return empty();
      }
      switch (action) {
        case "json":
          return json(200, {
            Id: c.Id,
            Name: c.Name,
            Config: { ...c.Config, Tty: false },
            HostConfig: c.HostConfig,
            State: c.State,
            NetworkSettings: { Ports: {}, Networks: {} },
            Mounts: [],
          });
        case "start": {
          const cmd = c.Config.Cmd ?? [];
          this.started.push(c.Name.slice(1));
          if (cmd[0] === "exit") c.State = { Status: "exited", Running: false, ExitCode: Number(cmd[1]) };
          else {
            c.State = { Status: "running", Running: true, ExitCode: 0 };
            if (c.Config.Healthcheck) c.State.Health = { Status: cmd[0] === "unhealthy" ? "unhealthy" : "healthy" };
          }
          return empty();
        }
        case "stop":
        case "kill":
          c.State = { Status: "exited", Running: false, ExitCode: action === "kill" ? 137 : 0 };
          return empty();
        case "restart":
          c.State = { Status: "running", Running: true, ExitCode: 0 };
          return empty();
        case "wait":
          return json(200, { StatusCode: c.State.ExitCode });
        case "logs":
          res.writeHead(200, { "Content-Type": "application/vnd.docker.multiplexed-stream" });
          return void res.end();
      }
    }
    if ((m = /^\/networks\/([^/]+)\/connect$/.exec(path))) {
      const c = this.#find(String(body.Container));
      if (!c) return notFound("no such container");
      c.networks.push(decodeURIComponent(m[1] as string));
      return empty();
    }
    if (path === "/networks" && method === "GET") return json(200, [...this.networks.values()]);
    if (path === "/networks/create") {
      const name = String(body.Name);
      if (this.networks.has(name)) return json(409, { message: `network with name ${name} already exists` });
      this.networks.set(name, {
        Name: name,
        Id: this.#id(),
        Labels: (body.Labels ?? {}) as Record<string, string>,
        Driver: String(body.Driver ?? "bridge"),
      });
      return json(201, { Id: this.networks.get(name)?.Id });
    }
    if ((m = /^\/networks\/([^/]+)$/.exec(path))) {
      const name = decodeURIComponent(m[1] as string);
      const n = this.networks.get(name);
      if (!n) return notFound(`network ${name} not found`);
      if (method === "DELETE") {
        this.networks.delete(name);
        return empty();
      }
      return json(200, n);
    }
    if (path === "/volumes" && method === "GET") return json(200, { Volumes: [...this.volumes.values()], Warnings: null });
    if (path === "/volumes/create") {
      const name = String(body.Name);
      const v = { Name: name, Labels: (body.Labels ?? {}) as Record<string, string>, Driver: String(body.Driver ?? "local") };
      this.volumes.set(name, v);
      return json(201, v);
    }
    if ((m = /^\/volumes\/([^/]+)$/.exec(path))) {
      const name = decodeURIComponent(m[1] as string);
      const v = this.volumes.get(name);
      if (!v) return notFound(`get ${name}: no such volume`);
      if (method === "DELETE") {
        this.volumes.delete(name);
        return empty();
      }
      return json(200, v);
    }
    json(404, { message: "page not found" });
  }
}
