export * from "./overlay.ts";
