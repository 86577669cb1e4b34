import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Digest } from "../base/mod.ts";
import { type Descriptor, MediaType } from "../oci/mod.ts";

/** A request as the fake registry saw it. */
export interface FakeRequest {
  method: string;
  /** Path and query. */
  url: string;
  headers: IncomingMessage["headers"];
}

/** How the fake registry wants clients to authenticate. */
export type FakeAuth =
  | { kind: "none" }
  | { kind: "basic"; users: Record<string, string> }
  | {
      kind: "bearer";
      users: Record<string, string>;
      /** Anonymous tokens may pull (default true). */
      anonymousPull?: boolean;
      /** The realm advertised; default this server's `/token`. */
      realm?: string;
      /** Token lifetime in seconds (default 300). */
      expiresIn?: number;
    };

interface Repo {
  tags: Map<string, Digest>;
  manifests: Map<Digest, { bytes: Buffer; mediaType: string }>;
  blobs: Set<Digest>;
}

/** What a fake token grants: scopes as `repository:<name>:<actions>`, and who. */
interface TokenClaims {
  access: { name: string; actions: string[] }[];
  exp: number;
  user?: string;
}

/**
 * An in-process registry (distribution spec v2 over node:http on 127.0.0.1) with a token
 * server, for tests of the registry client and of everything built on it. Enough of the spec
 * for pull, push (monolithic, chunked, cross-repository mount), tags and auth; `intercept`
 * lets a test answer any request itself to simulate a misbehaving server.
 */
export class FakeRegistry {
  readonly requests: FakeRequest[] = [];
  readonly blobs = new Map<Digest, Buffer>();
  readonly repos = new Map<string, Repo>();
  /** Tokens the token endpoint issued, by request. */
  readonly tokenRequests: FakeRequest[] = [];
  auth: FakeAuth;
  /** Answer Range requests on blobs (default true). */
  rangeSupport = true;
  /** Delay every blob GET body by this many ms (to observe concurrency). */
  blobDelayMs = 0;
  /** Page size of the tag list. */
  tagPageSize = 100;
  /** Answer upload POSTs with an absolute Location URL. */
  absoluteLocations = false;
  /** Blob GETs in flight now, and the most seen at once. */
  inflightBlobGets = 0;
  maxInflightBlobGets = 0;
  /** Lets a test answer a request: return true when it did. */
  intercept: ((req: IncomingMessage, res: ServerResponse, body: Buffer) => boolean | Promise<boolean>) | undefined;
  #server: Server;
  #uploads = new Map<string, { repo: string; data: Buffer[] }>();
  #refreshTokens = new Map<string, string>();
  #port = 0;

  private constructor(auth: FakeAuth) {
    this.auth = auth;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((e) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(e));
      });
    });
  }

  /** Starts a fake registry on 127.0.0.1 at a random port. */
  static async start(options: { auth?: FakeAuth } = {}): Promise<FakeRegistry> {
    const r = new FakeRegistry(options.auth ?? { kind: "none" });
    await new Promise<void>((resolve) => r.#server.listen(0, "127.0.0.1", resolve));
    r.#port = (r.#server.address() as AddressInfo).port;
    return r;
  }

  get port(): number {
    return this.#port;
  }
  /** `127.0.0.1:<port>`, the registry domain in references. */
  get host(): string {
    return `127.0.0.1:${this.#port}`;
  }
  get url(): string {
    return `http://${this.host}`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #repo(name: string): Repo {
    let r = this.repos.get(name);
    if (!r) {
      r = { tags: new Map(), manifests: new Map(), blobs: new Set() };
      this.repos.set(name, r);
    }
    return r;
  }

  /** Adds a blob to a repository. */
  addBlob(repo: string, bytes: Uint8Array, mediaType: string = MediaType.OciLayerGzip): Descriptor {
    const b = Buffer.from(bytes);
    const digest = digestOf(b);
    this.blobs.set(digest, b);
    this.#repo(repo).blobs.add(digest);
    return { mediaType, digest, size: b.length };
  }

  /** Adds a manifest (object or raw bytes) to a repository, under a tag when given. */
  addManifest(repo: string, tag: string | undefined, doc: unknown, mediaType: string): Descriptor {
    const bytes = Buffer.isBuffer(doc) ? doc : Buffer.from(typeof doc === "string" ? doc : JSON.stringify(doc));
    const digest = digestOf(bytes);
    const r = this.#repo(repo);
    r.manifests.set(digest, { bytes, mediaType });
    if (tag) r.tags.set(tag, digest);
    return { mediaType, digest, size: bytes.length };
  }

  /** Adds an image made of the given layer bytes (with a matching config) under `repo:tag`. */
  addImage(
    repo: string,
    tag: string | undefined,
    layerBytes: Uint8Array[],
    options: { architecture?: string; os?: string; variant?: string; mediaType?: string } = {},
  ): { manifest: Descriptor; config: Descriptor; layers: Descriptor[]; configBytes: Buffer; manifestBytes: Buffer } {
    const oci = (options.mediaType ?? MediaType.OciManifest) === MediaType.OciManifest;
    const layers = layerBytes.map((b) => this.addBlob(repo, b, oci ? MediaType.OciLayerGzip : MediaType.DockerLayerGzip));
    const cfg = {
      architecture: options.architecture ?? "amd64",
      os: options.os ?? "linux",
      ...(options.variant ? { variant: options.variant } : {}),
      config: { Cmd: ["sh"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
    };
    const configBytes = Buffer.from(JSON.stringify(cfg));
    const config = this.addBlob(repo, configBytes, oci ? MediaType.OciConfig : MediaType.DockerConfig);
    const mt = options.mediaType ?? MediaType.OciManifest;
    const doc = { schemaVersion: 2, mediaType: mt, config, layers };
    const manifestBytes = Buffer.from(JSON.stringify(doc));
    const manifest = this.addManifest(repo, tag, manifestBytes, mt);
    return { manifest, config, layers, configBytes, manifestBytes };
  }

  // ---- HTTP ----

  async #handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? "/", this.url);
    if (url.pathname === "/token") {
      this.tokenRequests.push({ method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers });
      return this.#token(req, res, url, body);
    }
    this.requests.push({ method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers });
    if (this.intercept && (await this.intercept(req, res, body))) return;
    const m = /^\/v2\/(.+?)\/(manifests\/[^/]+|blobs\/uploads\/[^/]*|blobs\/[^/]+|tags\/list)$/.exec(url.pathname);
    const method = req.method ?? "GET";
    if (url.pathname === "/v2/" || url.pathname === "/v2") {
      if (!this.#authorize(req, res, undefined, "pull")) return;
      return json(res, 200, {});
    }
    if (!m) return json(res, 404, { errors: [{ code: "NOT_FOUND", message: "not found" }] });
    const name = m[1] ?? "";
    const rest = m[2] ?? "";
    const push = method !== "GET" && method !== "HEAD";
    if (!this.#authorize(req, res, name, push ? "push" : "pull", url)) return;
    if (rest.startsWith("manifests/")) return this.#manifest(method, name, decodeURIComponent(rest.slice(10)), req, res, body);
    if (rest === "tags/list") return this.#tags(name, url, res);
    if (rest.startsWith("blobs/uploads/")) return this.#upload(method, name, rest.slice(14), url, req, res, body);
    return this.#blob(method, name, rest.slice(6), req, res);
  }

  #authorize(req: IncomingMessage, res: ServerResponse, name: string | undefined, action: "pull" | "push", url?: URL): boolean {
    const a = this.auth;
    if (a.kind === "none") return true;
    const h = req.headers.authorization ?? "";
    if (a.kind === "basic") {
      const m = /^Basic (.+)$/.exec(h);
      const plain = m?.[1] ? Buffer.from(m[1], "base64").toString() : "";
      const i = plain.indexOf(":");
      if (i > 0 && a.users[plain.slice(0, i)] === plain.slice(i + 1)) return true;
      res.setHeader("www-authenticate", 'Basic realm="fake"');
      json(res, 401, { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] });
      return false;
    }
    const scope = name ? `repository:${name}:${action === "push" ? "pull,push" : "pull"}` : undefined;
    const challenge = () => {
      res.setHeader(
        "www-authenticate",
        `Bearer realm="${a.realm ?? `${this.url}/token`}",service="fake"${scope ? `,scope="${scope}"` : ""}`,
      );
      json(res, 401, { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] });
      return false;
    };
    const m = /^Bearer (.+)$/.exec(h);
    const claims = m?.[1] ? decodeToken(m[1]) : undefined;
    if (!claims || claims.exp < Date.now()) return challenge();
    if (!name) return true;
    const grants = (n: string, act: string) => claims.access.some((x) => x.name === n && x.actions.includes(act));
    if (!grants(name, action)) return challenge();
    const from = url?.searchParams.get("from");
    if (from && url?.searchParams.get("mount") && !grants(from, "pull")) {
      // Like distribution: without pull on the source, the mount silently becomes an upload.
      url.searchParams.delete("mount");
    }
    return true;
  }

  #token(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer) {
    const a = this.auth;
    if (a.kind !== "bearer") return json(res, 404, {});
    let user: string | undefined;
    let scopes: string[];
    let offline = url.searchParams.get("offline_token") === "true";
    if (req.method === "POST") {
      const form = new URLSearchParams(body.toString());
      if (form.get("grant_type") !== "refresh_token") return json(res, 400, { error: "unsupported_grant_type" });
      user = this.#refreshTokens.get(form.get("refresh_token") ?? "");
      if (!user) return json(res, 401, { error: "invalid_grant", error_description: "invalid refresh token" });
      scopes = (form.get("scope") ?? "").split(" ").filter(Boolean);
      offline = form.get("access_type") === "offline";
    } else {
      const h = req.headers.authorization ?? "";
      const m = /^Basic (.+)$/.exec(h);
      if (m?.[1]) {
        const plain = Buffer.from(m[1], "base64").toString();
        const i = plain.indexOf(":");
        const u = plain.slice(0, i);
        if (i <= 0 || a.users[u] !== plain.slice(i + 1)) return json(res, 401, { details: "incorrect username or password" });
        user = u;
      }
      scopes = url.searchParams.getAll("scope");
    }
    const access: TokenClaims["access"] = [];
    for (const s of scopes) {
      const [kind, name, actions] = s.split(":");
      if (kind !== "repository" || !name) continue;
      const granted = (actions ?? "")
        .split(",")
        .filter((x) => (x === "pull" && (user || a.anonymousPull !== false)) || (x === "push" && user));
      access.push({ name, actions: granted });
    }
    const expiresIn = a.expiresIn ?? 300;
    const claims: TokenClaims = { access, exp: Date.now() + expiresIn * 1000, ...(user ? { user } : {}) };
    const token = `fake.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
    // OAuth2 answers (POST) name the token `access_token`, the docker token protocol `token`.
    const out: Record<string, unknown> = {
      [req.method === "POST" ? "access_token" : "token"]: token,
      expires_in: expiresIn,
      issued_at: new Date().toISOString(),
    };
    if (offline && user) {
      const rt = randomUUID();
      this.#refreshTokens.set(rt, user);
      out.refresh_token = rt;
    }
    json(res, 200, out);
  }

  #manifest(method: string, name: string, ref: string, req: IncomingMessage, res: ServerResponse, body: Buffer) {
    const repo = this.repos.get(name);
    if (method === "PUT") {
      const r = this.#repo(name);
      let doc: { config?: { digest: Digest }; layers?: { digest: Digest }[]; manifests?: { digest: Digest }[] };
      try {
        doc = JSON.parse(body.toString());
      } catch {
        return json(res, 400, { errors: [{ code: "MANIFEST_INVALID", message: "manifest invalid" }] });
      }
      for (const d of [doc.config, ...(doc.layers ?? [])]) {
        if (d && !r.blobs.has(d.digest))
          return json(res, 400, { errors: [{ code: "MANIFEST_BLOB_UNKNOWN", message: `blob unknown to registry: ${d.digest}` }] });
      }
      for (const d of doc.manifests ?? []) {
        if (!r.manifests.has(d.digest))
          return json(res, 400, { errors: [{ code: "MANIFEST_UNKNOWN", message: `manifest unknown: ${d.digest}` }] });
      }
      const digest = digestOf(body);
      if (ref.includes(":") && ref !== digest)
        return json(res, 400, { errors: [{ code: "DIGEST_INVALID", message: "provided digest did not match" }] });
      r.manifests.set(digest, { bytes: body, mediaType: String(req.headers["content-type"] ?? "") });
      if (!ref.includes(":")) r.tags.set(ref, digest);
      res.writeHead(201, { "docker-content-digest": digest, location: `/v2/${name}/manifests/${digest}`, "content-length": "0" });
      res.end();
      return;
    }
    const digest = ref.includes(":") ? (ref as Digest) : repo?.tags.get(ref);
    const m = digest ? repo?.manifests.get(digest) : undefined;
    if (!m || !digest)
      return json(res, 404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: { Tag: ref } }] }, method);
    res.writeHead(200, { "content-type": m.mediaType, "docker-content-digest": digest, "content-length": String(m.bytes.length) });
    res.end(method === "HEAD" ? undefined : m.bytes);
  }

  #tags(name: string, url: URL, res: ServerResponse) {
    const repo = this.repos.get(name);
    if (!repo) return json(res, 404, { errors: [{ code: "NAME_UNKNOWN", message: "repository name not known to registry" }] });
    const all = [...repo.tags.keys()].sort();
    const last = url.searchParams.get("last");
    const n = Number(url.searchParams.get("n") ?? this.tagPageSize) || this.tagPageSize;
    const start = last ? all.findIndex((t) => t > last) : 0;
    const page = start < 0 ? [] : all.slice(start, start + n);
    if (start >= 0 && start + n < all.length) {
      res.setHeader("link", `</v2/${name}/tags/list?n=${n}&last=${encodeURIComponent(page[page.length - 1] ?? "")}>; rel="next"`);
    }
    json(res, 200, { name, tags: page });
  }

  async #blob(method: string, name: string, d: string, req: IncomingMessage, res: ServerResponse) {
    const repo = this.repos.get(name);
    const digest = d as Digest;
    const data = repo?.blobs.has(digest) ? this.blobs.get(digest) : undefined;
    if (method === "DELETE") {
      repo?.blobs.delete(digest);
      res.writeHead(202).end();
      return;
    }
    if (!data) return json(res, 404, { errors: [{ code: "BLOB_UNKNOWN", message: "blob unknown to registry" }] }, method);
    if (method === "HEAD") {
      res.writeHead(200, {
        "content-length": String(data.length),
        "docker-content-digest": digest,
        "content-type": "application/octet-stream",
      });
      res.end();
      return;
    }
    this.inflightBlobGets++;
    this.maxInflightBlobGets = Math.max(this.maxInflightBlobGets, this.inflightBlobGets);
    try {
      if (this.blobDelayMs) await new Promise((r) => setTimeout(r, this.blobDelayMs));
      const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ""));
      if (range && this.rangeSupport) {
        const start = Number(range[1]);
        if (start >= data.length) {
          res.writeHead(416, { "content-range": `bytes */${data.length}` }).end();
          return;
        }
        res.writeHead(206, {
          "content-length": String(data.length - start),
          "content-range": `bytes ${start}-${data.length - 1}/${data.length}`,
          "docker-content-digest": digest,
        });
        res.end(data.subarray(start));
        return;
      }
      res.writeHead(200, {
        "content-length": String(data.length),
        "docker-content-digest": digest,
        "content-type": "application/octet-stream",
      });
      res.end(data);
    } finally {
      this.inflightBlobGets--;
    }
  }

  #upload(method: string, name: string, id: string, url: URL, req: IncomingMessage, res: ServerResponse, body: Buffer) {
    const r = this.#repo(name);
    if (method === "POST") {
      const mount = url.searchParams.get("mount") as Digest | null;
      const from = url.searchParams.get("from");
      if (mount && from && this.repos.get(from)?.blobs.has(mount)) {
        r.blobs.add(mount);
        res.writeHead(201, { location: `/v2/${name}/blobs/${mount}`, "docker-content-digest": mount, "content-length": "0" });
        res.end();
        return;
      }
      const uuid = randomUUID();
      this.#uploads.set(uuid, { repo: name, data: body.length ? [body] : [] });
      const loc = `/v2/${name}/blobs/uploads/${uuid}?_state=s${uuid.slice(0, 4)}`;
      res.writeHead(202, {
        location: this.absoluteLocations ? `${this.url}${loc}` : loc,
        "docker-upload-uuid": uuid,
        range: "0-0",
        "content-length": "0",
      });
      res.end();
      return;
    }
    const up = this.#uploads.get(id);
    if (!up || up.repo !== name)
      return json(res, 404, { errors: [{ code: "BLOB_UPLOAD_UNKNOWN", message: "blob upload unknown to registry" }] });
    if (method === "DELETE") {
      this.#uploads.delete(id);
      res.writeHead(204).end();
      return;
    }
    if (body.length) up.data.push(body);
    const size = up.data.reduce((n, b) => n + b.length, 0);
    if (method === "PATCH") {
      const cr = req.headers["content-range"];
      if (cr) {
        const m = /^(\d+)-(\d+)$/.exec(String(cr));
        if (!m || Number(m[1]) !== size - body.length)
          return json(res, 416, { errors: [{ code: "BLOB_UPLOAD_INVALID", message: "bad range" }] });
      }
      res.writeHead(202, { location: `/v2/${name}/blobs/uploads/${id}?_state=p${size}`, range: `0-${size - 1}`, "content-length": "0" });
      res.end();
      return;
    }
    if (method === "PUT") {
      const want = url.searchParams.get("digest");
      const all = Buffer.concat(up.data);
      const got = digestOf(all);
      if (want !== got)
        return json(res, 400, { errors: [{ code: "DIGEST_INVALID", message: "provided digest did not match uploaded content" }] });
      this.#uploads.delete(id);
      this.blobs.set(got, all);
      r.blobs.add(got);
      res.writeHead(201, { location: `/v2/${name}/blobs/${got}`, "docker-content-digest": got, "content-length": "0" });
      res.end();
      return;
    }
    json(res, 405, {});
  }
}

function json(res: ServerResponse, status: number, doc: unknown, method?: string): void {
  const b = Buffer.from(JSON.stringify(doc));
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": String(b.length) });
  res.end(method === "HEAD" ? undefined : b);
}

function digestOf(b: Uint8Array): Digest {
  return `sha256:${createHash("sha256").update(b).digest("hex")}` as Digest;
}

function decodeToken(t: string): TokenClaims | undefined {
  if (!t.startsWith("fake.")) return undefined;
  try {
    return JSON.parse(Buffer.from(t.slice(5), "base64url").toString()) as TokenClaims;
  } catch {
    return undefined;
  }
}
