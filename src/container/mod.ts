export * from "./model.ts";
export * from "./names.ts";
export * from "./service.ts";
export * from "./health.ts";
export * from "./mounts.ts";
export * from "./archive.ts";
