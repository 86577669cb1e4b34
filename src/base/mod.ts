export * from "./errors.ts";
export * from "./digest.ts";
export * from "./log.ts";
export * from "./host.ts";
export * from "./fs.ts";
export * from "./db.ts";
export * from "./lock.ts";
