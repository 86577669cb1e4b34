/**
 * The `com.docker.compose.*` labels as Compose v2 writes them on containers, networks and volumes
 * (docker/compose `pkg/api/labels.go`), so that berth compose and docker compose recognise each
 * other's resources, and the service hash that decides when a container must be recreated.
 */
import { createHash } from "node:crypto";
import type { Service } from "./model.ts";

export const PROJECT_LABEL = "com.docker.compose.project";
export const SERVICE_LABEL = "com.docker.compose.service";
export const CONFIG_HASH_LABEL = "com.docker.compose.config-hash";
export const CONTAINER_NUMBER_LABEL = "com.docker.compose.container-number";
export const VOLUME_LABEL = "com.docker.compose.volume";
export const NETWORK_LABEL = "com.docker.compose.network";
export const WORKING_DIR_LABEL = "com.docker.compose.project.working_dir";
export const CONFIG_FILES_LABEL = "com.docker.compose.project.config_files";
export const ENVIRONMENT_FILE_LABEL = "com.docker.compose.project.environment_file";
export const ONEOFF_LABEL = "com.docker.compose.oneoff";
export const SLUG_LABEL = "com.docker.compose.slug";
export const IMAGE_DIGEST_LABEL = "com.docker.compose.image";
export const DEPENDENCIES_LABEL = "com.docker.compose.depends_on";
export const VERSION_LABEL = "com.docker.compose.version";
export const REPLACE_LABEL = "com.docker.compose.replace";

/** The Compose version berth compose reports and writes in `com.docker.compose.version`. */
export const COMPOSE_VERSION = "2.29.7";

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

/**
 * The configuration hash of a service: a digest of everything that shapes its containers. Keys
 * that do not (how the image is obtained, how many replicas run, start order, profiles) are left
 * out, so changing them does not recreate running containers.
 */
export function serviceHash(service: Service): string {
  const s: Record<string, unknown> = { ...service };
  for (const k of ["build", "pull_policy", "scale", "profiles", "depends_on", "attach"]) delete s[k];
  if (service.deploy) {
    const d = { ...service.deploy };
    delete d.replicas;
    s.deploy = d;
  }
  return createHash("sha256")
    .update(JSON.stringify(sortKeys(s)))
    .digest("hex");
}

/** The value of `com.docker.compose.depends_on`: `service:condition:restart` joined by commas. */
export function dependsOnLabel(service: Service): string {
  return Object.entries(service.depends_on ?? {})
    .map(([name, d]) => `${name}:${d.condition}:${d.restart ?? false}`)
    .join(",");
}
