import { type Digest, isDigest } from "../base/mod.ts";
import { invalidArgument } from "../base/mod.ts";

/**
 * A normalised image reference: `docker.io/library/busybox:latest`, `localhost:5000/a/b@sha256:…`.
 * Parsed with the distribution/reference grammar and Docker's normalisation (docker.io and
 * library/ added to familiar names, `latest` added when neither tag nor digest is given by
 * `withDefaultTag`). Use `familiar()` to print it as the docker CLI does.
 */
export interface Reference {
  /** Registry host, e.g. `docker.io`, `localhost:5000`. */
  domain: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  path: string;
  tag?: string;
  digest?: Digest;
}

const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const PATH_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const ANCHORED_ID = /^[a-f0-9]{64}$/;

export const DEFAULT_DOMAIN = "docker.io";
export const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
export const DEFAULT_TAG = "latest";

function bad(s: string, why?: string): Error {
  return invalidArgument(why ? `invalid reference format: ${why}` : `invalid reference format`, { detail: { reference: s.slice(0, 300) } });
}

/** Parses and normalises a reference as the docker CLI does (`ParseNormalizedNamed`). */
export function parseReference(input: string): Reference {
  const s = input;
  if (s.length === 0) throw bad(s);
  if (ANCHORED_ID.test(s)) {
    throw invalidArgument(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  }
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw bad(s, d.startsWith("sha256:") ? "invalid checksum digest length" : "invalid digest");
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(s);
  }
  let domain: string;
  let path: string;
  const slash = rest.indexOf("/");
  const first = slash < 0 ? "" : rest.slice(0, slash);
  if (slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase())) {
    domain = first;
    path = rest.slice(slash + 1);
  } else {
    domain = DEFAULT_DOMAIN;
    path = rest;
  }
  if (!DOMAIN_RE.test(domain)) throw bad(s);
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (path !== path.toLowerCase()) throw bad(s, `repository name (${path}) must be lowercase`);
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) path = `library/${path}`;
  if (!PATH_RE.test(path)) throw bad(s);
  if (domain.length + 1 + path.length > 255) throw bad(s, "repository name must not be more than 255 characters");
  const ref: Reference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** Adds `:latest` when the reference has neither tag nor digest. */
export function withDefaultTag(r: Reference): Reference {
  return r.tag === undefined && r.digest === undefined ? { ...r, tag: DEFAULT_TAG } : r;
}

/** `docker.io/library/busybox` */
export function repoName(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** The familiar repository name: `busybox`, `user/app`, `localhost:5000/a`. */
export function familiarName(r: Reference): string {
  if (r.domain === DEFAULT_DOMAIN) return r.path.startsWith("library/") ? r.path.slice(8) : r.path;
  return `${r.domain}/${r.path}`;
}

/** Fully qualified string: `docker.io/library/busybox:latest` or `…@sha256:…`. */
export function referenceString(r: Reference): string {
  let s = repoName(r);
  if (r.tag !== undefined) s += `:${r.tag}`;
  if (r.digest !== undefined) s += `@${r.digest}`;
  return s;
}

/** Familiar string: `busybox:latest`, `localhost:5000/a@sha256:…`. */
export function familiarString(r: Reference): string {
  let s = familiarName(r);
  if (r.tag !== undefined) s += `:${r.tag}`;
  if (r.digest !== undefined) s += `@${r.digest}`;
  return s;
}

/** Parses a repository name and tag separately, as the tag and push endpoints receive them. */
export function parseRepoTag(repo: string, tag?: string): Reference {
  const r = parseReference(tag ? `${repo}:${tag}` : repo);
  return r;
}
