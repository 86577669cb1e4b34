import { createHash } from "node:crypto";
import { BerthError, type Digest, ErrorKind, invalidArgument, isDigest, kindOf, notFound, splitDigest, unauthorized } from "../base/mod.ts";
import {
  DEFAULT_DOMAIN,
  type Descriptor,
  familiarName,
  familiarString,
  formatPlatform,
  type Index,
  isManifestMediaType,
  MAX_MANIFEST_SIZE,
  manifestAccept,
  type ParsedManifest,
  type Platform,
  parseManifest,
  platformMatches,
  type Reference,
} from "../oci/mod.ts";
import { registryCode, registryStatus } from "./_errors.ts";
import { discard, header, readBounded } from "./_http.ts";
import type { Session } from "./_session.ts";

/** A manifest or index as fetched: raw bytes, their verified digest and the parsed document. */
export interface FetchedManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
  parsed: ParsedManifest;
}

/** Digest of bytes with the algorithm of `like` (sha256 by default). */
export function digestOf(bytes: Uint8Array, like?: string): Digest {
  const algorithm = like && isDigest(like) ? splitDigest(like).algorithm : "sha256";
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}` as Digest;
}

/**
 * GETs a manifest by tag or digest and verifies it: at most `expected.size` (or 4 MiB) bytes
 * are read; by digest, the bytes must hash to it; by tag, `Docker-Content-Digest` must agree
 * with the computed digest when the registry sends it; the document must parse strictly.
 */
export async function fetchManifest(
  session: Session,
  reference: string,
  expected?: { digest: Digest; size?: number },
): Promise<FetchedManifest> {
  const res = await session.request("GET", `manifests/${reference}`, { headers: { accept: manifestAccept } });
  const limit = expected?.size !== undefined ? Math.min(expected.size, MAX_MANIFEST_SIZE) : MAX_MANIFEST_SIZE;
  const what = `Manifest "${session.repo}:${reference}"`;
  if (expected?.size !== undefined && expected.size > MAX_MANIFEST_SIZE) {
    discard(res);
    throw invalidArgument(`${what} is larger than ${MAX_MANIFEST_SIZE} bytes`);
  }
  const bytes = await readBounded(res, limit, what);
  const headerDigest = header(res, "docker-content-digest");
  let digest: Digest;
  if (expected) {
    digest = digestOf(bytes, expected.digest);
    if (digest !== expected.digest)
      throw invalidArgument(`Manifest digest mismatch: expected "${expected.digest}", content hashes to "${digest}"`);
    if (expected.size !== undefined && bytes.length !== expected.size) {
      throw invalidArgument(`Manifest "${expected.digest}" has size ${bytes.length}, expected ${expected.size}`);
    }
  } else {
    digest = digestOf(bytes, headerDigest);
    if (headerDigest !== undefined) {
      if (!isDigest(headerDigest)) throw invalidArgument(`${what}: invalid Docker-Content-Digest "${headerDigest.slice(0, 200)}"`);
      if (headerDigest !== digest) {
        throw invalidArgument(`${what}: Docker-Content-Digest "${headerDigest}" does not match the content digest "${digest}"`);
      }
    }
  }
  const parsed = parseManifest(bytes, header(res, "content-type"));
  return { digest, mediaType: parsed.mediaType, bytes, parsed };
}

/** HEADs a manifest: its descriptor, or, when the registry does not send a digest, a GET. */
export async function headManifest(session: Session, reference: string): Promise<Descriptor> {
  const res = await session.request("HEAD", `manifests/${reference}`, { headers: { accept: manifestAccept } });
  await res.body.dump().catch(() => {});
  const d = header(res, "docker-content-digest");
  const ct = header(res, "content-type")?.split(";")[0]?.trim();
  const size = Number(header(res, "content-length"));
  if (d && isDigest(d) && ct && Number.isSafeInteger(size) && size > 0) {
    if (isDigest(reference) && d !== reference) throw invalidArgument(`Registry answered digest "${d}" for manifest "${reference}"`);
    return { mediaType: ct, digest: d, size };
  }
  const m = await fetchManifest(session, reference, isDigest(reference) ? { digest: reference } : undefined);
  return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
}

/**
 * Chooses the manifest for a platform from an index, as docker does: the first entry that is
 * an image manifest and matches, preferring an exact variant match.
 */
export function selectManifest(index: Index, platform: Platform): Descriptor {
  const candidates = index.manifests.filter(
    (m) => (m.mediaType === undefined || isManifestMediaType(m.mediaType)) && platformMatches(m.platform, platform),
  );
  const exact = platform.variant ? candidates.find((m) => m.platform?.variant === platform.variant) : undefined;
  const chosen = exact ?? candidates[0];
  if (!chosen) throw notFound(`no matching manifest for ${formatPlatform(platform)} in the manifest list entries`);
  return chosen;
}

const DENIED_HINT = "repository does not exist or may require 'docker login'";

/**
 * Words registry errors as docker does for a pull of `ref`: a missing manifest or repository,
 * denied access. Other errors pass unchanged.
 */
export function translatePullError(err: unknown, ref: Reference): unknown {
  if (!(err instanceof BerthError)) return err;
  const status = registryStatus(err);
  const code =
    registryCode(err) ??
    (status === 404 && kindOf(err) === ErrorKind.NotFound ? "MANIFEST_UNKNOWN" : status === 401 ? "UNAUTHORIZED" : undefined);
  if (!code || status === undefined) return err;
  const cause = err.message.startsWith("unexpected status") ? undefined : err.message;
  const opts = { cause: err, detail: err.detail as Record<string, unknown> };
  const hub = ref.domain === DEFAULT_DOMAIN;
  switch (code) {
    case "MANIFEST_UNKNOWN":
      return notFound(`manifest for ${familiarString(ref)} not found: ${cause ?? "manifest unknown: manifest unknown"}`, opts);
    case "NAME_UNKNOWN":
      if (hub) return notFound(`pull access denied for ${familiarName(ref)}, ${DENIED_HINT}: ${cause ?? "name unknown"}`, opts);
      return notFound(`repository ${familiarName(ref)} not found: ${cause ?? "name unknown"}`, opts);
    case "DENIED":
      return notFound(`pull access denied for ${familiarName(ref)}, ${DENIED_HINT}: ${cause ?? "denied"}`, opts);
    case "UNAUTHORIZED":
      if (hub) return unauthorized(`pull access denied for ${familiarName(ref)}, ${DENIED_HINT}: ${cause ?? "unauthorized"}`, opts);
      return err;
    default:
      return err;
  }
}
