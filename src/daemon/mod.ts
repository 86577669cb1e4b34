export * from "./config.ts";
export * from "./daemon.ts";
export * from "./events.ts";
export * from "./images.ts";
export * from "./image_io.ts";
export * from "./check.ts";
