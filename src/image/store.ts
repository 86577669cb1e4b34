import { conflict, type Db, type Digest, invalidArgument, isDigest, type Migration, notFound, parseDigest } from "../base/mod.ts";
import type { ContentStore } from "../content/mod.ts";
import {
  familiarName,
  familiarString,
  type ImageConfig,
  type Manifest,
  parseImageConfig,
  parseManifest,
  parseReference,
  type Reference,
  referenceString,
  repoName,
  withDefaultTag,
} from "../oci/mod.ts";

/** One image as the store knows it: its ID (config digest) and the manifest that has its layers. */
export interface ImageRecord {
  id: Digest;
  manifestDigest: Digest;
  manifestMediaType: string;
  /** Sum of the uncompressed layer sizes (Docker's `Size`). */
  size: number;
  /** When the image arrived in this store (ms since epoch); orders `before`/`since`. */
  createdAt: number;
}

/** A name of an image: a tag (`repo:tag`) or a digest reference (`repo@sha256:…`). */
export interface ImageName {
  name: string;
  kind: "tag" | "digest";
  imageId: Digest;
  /** The digest the name resolved to in its registry (index or manifest); set for digest names. */
  targetDigest: Digest | undefined;
  createdAt: number;
}

const migrations: Migration[] = [
  {
    version: 1,
    sql: `CREATE TABLE images (
      id TEXT PRIMARY KEY,
      manifest_digest TEXT NOT NULL,
      manifest_media_type TEXT NOT NULL,
      size INTEGER NOT NULL DEFAULT 0,
      created_at INTEGER NOT NULL
    );
    CREATE TABLE image_names (
      name TEXT PRIMARY KEY,
      kind TEXT NOT NULL CHECK (kind IN ('tag', 'digest')),
      image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
      target_digest TEXT,
      created_at INTEGER NOT NULL
    );
    CREATE INDEX image_names_image ON image_names(image_id);
    CREATE TABLE image_blobs (
      image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
      digest TEXT NOT NULL,
      PRIMARY KEY (image_id, digest)
    );
    CREATE INDEX image_blobs_digest ON image_blobs(digest);`,
  },
  {
    // Where a blob is known to be in a registry (pulled from or pushed to), as dockerd's v2
    // metadata: a push to another repository of that registry mounts it from there.
    version: 2,
    sql: `CREATE TABLE blob_sources (
      digest TEXT NOT NULL,
      domain TEXT NOT NULL,
      repo TEXT NOT NULL,
      seen_at INTEGER NOT NULL,
      PRIMARY KEY (digest, domain, repo)
    );`,
  },
];

/** How many repositories are remembered per blob and registry (the most recent). */
const SOURCES_PER_BLOB = 5;

interface ImageRow {
  id: string;
  manifest_digest: string;
  manifest_media_type: string;
  size: number;
  created_at: number;
}
interface NameRow {
  name: string;
  kind: "tag" | "digest";
  image_id: string;
  target_digest: string | null;
  created_at: number;
}

function toRecord(r: ImageRow): ImageRecord {
  return {
    id: r.id as Digest,
    manifestDigest: r.manifest_digest as Digest,
    manifestMediaType: r.manifest_media_type,
    size: r.size,
    createdAt: r.created_at,
  };
}
function toName(r: NameRow): ImageName {
  return {
    name: r.name,
    kind: r.kind,
    imageId: r.image_id as Digest,
    targetDigest: (r.target_digest ?? undefined) as Digest | undefined,
    createdAt: r.created_at,
  };
}

/**
 * The image store: which images exist (by ID = config digest), which names point at them, and
 * which blobs each image holds (for garbage collection). The blobs themselves are in the
 * `ContentStore`; layer snapshots are in the snapshotter, named by chain ID.
 */
export class ImageStore {
  #db: Db;
  #content: ContentStore;
  #configs = new Map<string, ImageConfig>();

  constructor(db: Db, content: ContentStore) {
    this.#db = db;
    this.#content = content;
    db.migrate("images", migrations);
  }

  /** Records an image and its blobs (idempotent), and points `names` at it, in one transaction. */
  put(
    image: Omit<ImageRecord, "createdAt"> & { createdAt?: number },
    blobs: readonly Digest[],
    names: readonly { name: string; kind: "tag" | "digest"; targetDigest?: Digest | undefined }[] = [],
  ): { previous: Map<string, Digest> } {
    const previous = new Map<string, Digest>();
    this.#db.tx(() => {
      const now = Date.now();
      const have = this.#db.get<ImageRow>("SELECT * FROM images WHERE id = ?", image.id);
      if (!have) {
        this.#db.run(
          "INSERT INTO images (id, manifest_digest, manifest_media_type, size, created_at) VALUES (?, ?, ?, ?, ?)",
          image.id,
          image.manifestDigest,
          image.manifestMediaType,
          image.size,
          image.createdAt ?? now,
        );
      }
      for (const d of new Set(blobs)) this.#db.run("INSERT OR IGNORE INTO image_blobs (image_id, digest) VALUES (?, ?)", image.id, d);
      for (const n of names) {
        const old = this.#db.get<NameRow>("SELECT * FROM image_names WHERE name = ?", n.name);
        if (old && old.image_id !== image.id) previous.set(n.name, old.image_id as Digest);
        this.#db.run(
          `INSERT INTO image_names (name, kind, image_id, target_digest, created_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, target_digest = excluded.target_digest, kind = excluded.kind,
             created_at = CASE WHEN image_names.image_id = excluded.image_id THEN image_names.created_at ELSE excluded.created_at END`,
          n.name,
          n.kind,
          image.id,
          n.targetDigest ?? null,
          now,
        );
      }
    });
    return { previous };
  }

  get(id: Digest): ImageRecord | undefined {
    const r = this.#db.get<ImageRow>("SELECT * FROM images WHERE id = ?", id);
    return r ? toRecord(r) : undefined;
  }

  list(): ImageRecord[] {
    return this.#db.all<ImageRow>("SELECT * FROM images ORDER BY created_at DESC, id").map(toRecord);
  }

  names(id?: Digest): ImageName[] {
    const rows = id
      ? this.#db.all<NameRow>("SELECT * FROM image_names WHERE image_id = ? ORDER BY created_at, name", id)
      : this.#db.all<NameRow>("SELECT * FROM image_names ORDER BY created_at, name");
    return rows.map(toName);
  }

  name(name: string): ImageName | undefined {
    const r = this.#db.get<NameRow>("SELECT * FROM image_names WHERE name = ?", name);
    return r ? toName(r) : undefined;
  }

  /** Points a tag at an image. */
  tag(id: Digest, ref: Reference): { previous?: Digest } {
    if (ref.tag === undefined || ref.digest !== undefined) throw invalidArgument("refusing to create a tag with a digest reference");
    const img = this.get(id);
    if (!img) throw notFound(`No such image: ${id}`);
    const { previous } = this.put(img, [], [{ name: referenceString(ref), kind: "tag" }]);
    const p = previous.get(referenceString(ref));
    return p ? { previous: p } : {};
  }

  /** Removes one name. */
  untag(name: string): void {
    this.#db.run("DELETE FROM image_names WHERE name = ?", name);
  }

  /** Deletes an image row (its names and blob links cascade). Blobs and snapshots are left to GC. */
  delete(id: Digest): void {
    this.#db.tx(() => {
      this.#db.run("DELETE FROM image_names WHERE image_id = ?", id);
      this.#db.run("DELETE FROM images WHERE id = ?", id);
    });
  }

  /** Every blob some image holds. */
  referencedBlobs(): Set<string> {
    return new Set(this.#db.all<{ digest: string }>("SELECT DISTINCT digest FROM image_blobs").map((r) => r.digest));
  }

  /**
   * Finds an image the way `docker` does: a full or short ID (`sha256:abc…`, `abc1`), a name
   * with an implied `:latest`, or `name@digest`.
   */
  resolve(input: string): ImageRecord | undefined {
    const s = input.trim();
    if (s.startsWith("sha256:") && isDigest(s)) {
      const img = this.get(s as Digest);
      if (img) return img;
    }
    let ref: Reference | undefined;
    try {
      ref = parseReference(s);
    } catch {
      ref = undefined;
    }
    if (ref) {
      const full = withDefaultTag(ref);
      if (full.digest !== undefined) {
        // A digest reference: by name, or any image whose name targets this digest.
        const named = this.name(`${repoName(full)}@${full.digest}`);
        if (named) return this.get(named.imageId);
        const r = this.#db.get<NameRow>(
          "SELECT * FROM image_names WHERE target_digest = ? AND name LIKE ? LIMIT 1",
          full.digest,
          `${repoName(full)}%`,
        );
        if (r) return this.get(r.image_id as Digest);
        const m = this.#db.get<ImageRow>("SELECT * FROM images WHERE manifest_digest = ?", full.digest);
        if (m) return toRecord(m);
      } else {
        const named = this.name(referenceString(full));
        if (named) return this.get(named.imageId);
      }
    }
    const hex = s.startsWith("sha256:") ? s.slice(7) : s;
    if (/^[a-f0-9]{1,64}$/.test(hex)) {
      const rows = this.#db.all<ImageRow>("SELECT * FROM images WHERE id LIKE ? LIMIT 2", `sha256:${hex}%`);
      if (rows.length === 1 && rows[0]) return toRecord(rows[0]);
      if (rows.length > 1) throw conflict(`multiple IDs found with provided prefix: ${hex}`);
    }
    return undefined;
  }

  /** Records that these blobs are in `repo` of the registry `domain` (after a pull or a push). */
  addBlobSources(digests: readonly string[], domain: string, repo: string): void {
    const now = Date.now();
    this.#db.tx(() => {
      for (const d of digests) {
        this.#db.run(
          "INSERT INTO blob_sources (digest, domain, repo, seen_at) VALUES (?, ?, ?, ?) ON CONFLICT(digest, domain, repo) DO UPDATE SET seen_at = excluded.seen_at",
          d,
          domain,
          repo,
          now,
        );
        this.#db.run(
          "DELETE FROM blob_sources WHERE digest = ? AND domain = ? AND repo NOT IN (SELECT repo FROM blob_sources WHERE digest = ? AND domain = ? ORDER BY seen_at DESC LIMIT ?)",
          d,
          domain,
          d,
          domain,
          SOURCES_PER_BLOB,
        );
      }
    });
  }

  /** Repositories of registry `domain` known to hold the blob, most recent first. */
  blobSources(digest: string, domain: string): string[] {
    return this.#db
      .all<{ repo: string }>("SELECT repo FROM blob_sources WHERE digest = ? AND domain = ? ORDER BY seen_at DESC", digest, domain)
      .map((r) => r.repo);
  }

  /** Forgets where a blob was seen (it left the content store). */
  forgetBlobSources(digest: string): void {
    this.#db.run("DELETE FROM blob_sources WHERE digest = ?", digest);
  }

  /** Like `resolve`, but throws Docker's "No such image" error. */
  mustResolve(input: string): ImageRecord {
    const img = this.resolve(input);
    if (!img) throw notFound(`No such image: ${notFoundName(input)}`);
    return img;
  }

  /** The image's config, parsed (cached; configs are immutable). */
  async config(id: Digest): Promise<ImageConfig> {
    const c = this.#configs.get(id);
    if (c) return c;
    const cfg = parseImageConfig(await this.#content.readBytes(parseDigest(id)));
    this.#configs.set(id, cfg);
    return cfg;
  }

  /** The image's platform manifest. */
  async manifest(img: ImageRecord): Promise<Manifest> {
    const p = parseManifest(await this.#content.readBytes(img.manifestDigest, 4 * 1024 * 1024), img.manifestMediaType);
    if (p.kind !== "manifest") throw invalidArgument(`Image ${img.id} has no platform manifest`);
    return p.manifest;
  }

  /** `RepoTags` as Docker prints them: familiar names (`busybox:latest`). */
  repoTags(id: Digest): string[] {
    return this.names(id)
      .filter((n) => n.kind === "tag")
      .map((n) => familiarString(parseReference(n.name)));
  }

  /** `RepoDigests`: `repo@digest` for every repository the image is known in. */
  repoDigests(id: Digest): string[] {
    const out = new Set<string>();
    for (const n of this.names(id)) {
      if (n.kind !== "digest") continue;
      const r = parseReference(n.name);
      out.add(`${familiarName(r)}@${n.targetDigest ?? r.digest}`);
    }
    return [...out];
  }
}

/** How dockerd names a reference it did not find: `busybox` → `busybox:latest`, as parsed. */
function notFoundName(input: string): string {
  if (/^[0-9a-f]{64}$/.test(input)) return `sha256:${input}`;
  try {
    const r = parseReference(input);
    return familiarString(r.digest !== undefined || r.tag !== undefined ? r : withDefaultTag(r));
  } catch {
    return input;
  }
}
