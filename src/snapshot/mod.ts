export * from "./overlay.ts";
export * from "./unpack.ts";
