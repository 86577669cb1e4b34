/**
 * # registry: berth's distribution-spec (v2) client
 *
 * Moves images between a registry and the content store (src/content). Nothing here unpacks
 * layers or records images: the image store does that on top.
 *
 * ## Terms
 *
 * - **Endpoint**: a base URL serving `/v2/`. A registry domain has one (an insecure one is
 *   tried over HTTPS without verification, then HTTP; loopback over HTTP first); docker.io
 *   also has the `registry-mirrors`, tried in order before `registry-1.docker.io` for pulls.
 *   A mirror that is down, errs or lacks the image (404) falls back to the next endpoint.
 *   Mirrors never see credentials.
 * - **Session**: one repository on one endpoint with credentials. It answers `Bearer` and
 *   `Basic` challenges, caches tokens per (realm, service, scopes, credentials) until they
 *   expire, retries temporary failures (connection reset/refused, 5xx, 429 after its
 *   `Retry-After`) with exponential backoff, and follows redirects itself: at most 10, and the
 *   `Authorization` header never leaves the endpoint's origin nor goes from HTTPS to HTTP.
 * - **Verification**: every manifest is read to a bound (its descriptor size, or 4 MiB),
 *   hashed on its raw bytes and checked against the digest asked for (or, by tag, against
 *   `Docker-Content-Digest`), then parsed strictly (src/oci). Every blob goes through a content
 *   store ingest, which rejects more bytes than the descriptor's size and commits only on a
 *   matching digest. Digests are validated before they are put into a URL.
 *
 * ## A pull, walked through
 *
 * ```ts
 * const registry = new RegistryClient({ store, mirrors: ["http://127.0.0.1:5000"] });
 * const ref = parseReference("busybox");                   // docker.io/library/busybox
 * const current = await registry.headManifest(ref, { auth }); // cheap: "is my copy current?"
 * if (current.digest !== knownDigest) {
 *   const img = await registry.fetchImage(ref, {
 *     auth, signal, platform: "linux/amd64",
 *     onProgress: (e) => send(e),                          // {id, status, current, total}
 *     onLayerFetched: (i, layer) => unpackWhenReady(i, layer), // start unpacking early
 *   });
 *   // img.digest (repo digest), img.manifest, img.config, img.layers: all in `store`.
 * }
 * ```
 *
 * Layers download `maxConcurrentDownloads` (3) at a time over all pulls of the client, in
 * manifest order. A partial download resumes with a `Range` request from the ingest's
 * offset, after a dropped connection or a daemon restart; a server that ignores `Range` is
 * read from the start. Two pulls of one layer download it once (`ContentStore.ingestOnce`).
 *
 * ## A push
 *
 * `pushImage(ref, { manifestBytes, mediaType, blobs, manifests?, mountFrom?, auth })` HEADs
 * each blob (skipped when present: "Layer already exists"), else tries a cross-repository
 * mount from each `mountFrom` repository ("Mounted from x"), else uploads it (POST, then one
 * PUT, or PATCH chunks with `chunkSize`), `maxConcurrentUploads` (5) at a time; then puts the
 * child manifests of an index by digest and the manifest under the tag, returning its digest.
 *
 * ## Errors
 *
 * Registry error bodies (`errors[0].code/message`) become berth errors with docker's wording:
 * `manifest for x:tag not found: manifest unknown: manifest unknown` (NotFound),
 * `pull access denied for x, repository does not exist or may require 'docker login': …`,
 * `no matching manifest for linux/amd64 in the manifest list entries` (NotFound),
 * UNAUTHORIZED → Unauthorized, DENIED → PermissionDenied, 5xx/429/network → Unavailable.
 *
 * `FakeRegistry` is an in-process registry with a token server for tests.
 */
export {
  type AuthResult,
  type CallOptions,
  type FetchImageOptions,
  type ProgressEvent,
  type PulledImage,
  type PushedImage,
  type PushImageOptions,
  RegistryClient,
  type RegistryClientOptions,
} from "./client.ts";
export type { FetchedManifest } from "./_manifest.ts";
export { selectManifest } from "./_manifest.ts";
export type { RetryPolicy } from "./_http.ts";
export {
  type Challenge,
  type Credentials,
  hasCredentials,
  parseChallenges,
  parseRegistryAuth,
  type RegistryAuth,
} from "./auth.ts";
export {
  DOCKER_HUB_REGISTRY,
  type Endpoint,
  isInsecure,
  isLoopback,
  parseMirror,
  pullEndpoints,
  type RegistryHostsConfig,
  registryDomain,
  registryEndpoint,
} from "./hosts.ts";
export { FakeRegistry, type FakeAuth, type FakeRequest } from "./fake.ts";
