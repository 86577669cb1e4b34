import type { Daemon } from "../daemon/mod.ts";
import { Router } from "./http.ts";
import { archiveRoutes } from "./routes_archive.ts";
import { berthRoutes } from "./routes_berth.ts";
import { buildRoutes } from "./routes_build.ts";
import { containerRoutes } from "./routes_containers.ts";
import { imageRoutes } from "./routes_images.ts";
import { networkRoutes } from "./routes_networks.ts";
import { systemRoutes } from "./routes_system.ts";
import { volumeRoutes } from "./routes_volumes.ts";

/** Every Engine API route berthd serves. */
export function buildRouter(d: Daemon): Router {
  const r = new Router();
  systemRoutes(r, d, { counts: () => d.containerCounts() });
  imageRoutes(r, d);
  containerRoutes(r, d, d.containers);
  archiveRoutes(r, d);
  volumeRoutes(r, d);
  networkRoutes(r, d);
  berthRoutes(r, d);
  buildRoutes(r, d);
  return r;
}
