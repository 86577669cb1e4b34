/**
 * berth compose: Compose v2 implemented client-side over the Engine API. The loader reads and
 * normalises Compose files (`loadProject`, `renderConfig`); `runCompose` is the `compose`
 * command line that `berth compose ...` dispatches to.
 */
export { type ComposeIo, runCompose } from "./cli.ts";
export { renderConfig, projectModel } from "./config.ts";
export { loadProject, findComposeFiles, normalizeProjectName, type LoadOptions } from "./loader.ts";
export type { Project, Service } from "./model.ts";
export { serviceHash, COMPOSE_VERSION } from "./labels.ts";
