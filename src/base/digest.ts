import { createHash, type Hash } from "node:crypto";
import { invalidArgument } from "./errors.ts";

/** A validated content digest such as `sha256:<64 hex>`. Only sha256 and sha512 are accepted. */
export type Digest = string & { readonly __digest: unique symbol };

const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** Parses a digest, rejecting anything that could be unsafe in a path or URL. */
export function parseDigest(s: string): Digest {
  if (typeof s !== "string" || !DIGEST_RE.test(s)) throw invalidArgument(`Invalid digest "${String(s).slice(0, 200)}"`);
  return s as Digest;
}

export function isDigest(s: unknown): s is Digest {
  return typeof s === "string" && DIGEST_RE.test(s);
}

/** The algorithm and hex parts of a digest. */
export function splitDigest(d: Digest): { algorithm: "sha256" | "sha512"; hex: string } {
  const i = d.indexOf(":");
  return { algorithm: d.slice(0, i) as "sha256" | "sha512", hex: d.slice(i + 1) };
}

/** sha256 digest of bytes. */
export function sha256(data: Uint8Array | string): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}` as Digest;
}

/** An incremental digester that also counts bytes. */
export class Digester {
  #hash: Hash;
  #algorithm: string;
  size = 0;
  constructor(algorithm: "sha256" | "sha512" = "sha256") {
    this.#algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.size += chunk.length;
  }
  digest(): Digest {
    return `${this.#algorithm}:${this.#hash.digest("hex")}` as Digest;
  }
}

/** The 64-hex ID for a sha256 digest (Docker's image and chain IDs print without the prefix). */
export function shortHex(d: string, n = 12): string {
  const hex = d.includes(":") ? d.slice(d.indexOf(":") + 1) : d;
  return hex.slice(0, n);
}

/** Random 64-hex ID, as Docker uses for containers, execs and networks. */
export function randomId(): string {
  return createHash("sha256")
    .update(crypto.getRandomValues(new Uint8Array(32)))
    .digest("hex");
}
