export * from "./media.ts";
export * from "./types.ts";
export * from "./reference.ts";
export * from "./platform.ts";
export * from "./parse.ts";
export * from "./volume_modes.ts";
