/**
 * berth's client of the Docker Engine API: a typed `EngineClient` over a unix socket or TCP
 * (optionally TLS), JSON message and multiplexed stream decoding, hijacked attach/exec
 * connections, and the docker CLI's config file with its credential stores. It imports no engine
 * code, so it works against berthd and a real dockerd alike.
 */
export * from "./errors.ts";
export * from "./transport.ts";
export * from "./streams.ts";
export * from "./types.ts";
export * from "./client.ts";
export * from "./credentials.ts";
export * from "./fake.ts";
