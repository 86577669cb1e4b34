/**
 * Docker's default socket, /var/run/docker.sock, as a link to berthd's own when nothing is
 * there (no dockerd on this host): the docker CLI, docker-compose and the Docker SDKs then find
 * berthd without DOCKER_HOST, as podman-docker does for podman. A dockerd started later replaces
 * the link with its socket; berthd removes the link at its stop only while it still points to
 * berthd.
 */
import { lstatSync, mkdirSync, readlinkSync, symlinkSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";

export const DOCKER_SOCKET = "/var/run/docker.sock";

/** Links `link` to `target` unless something (a socket, a file, another link) is there; true if it did. */
export function linkDockerSocket(target: string, link = DOCKER_SOCKET): boolean {
  if (lstatSync(link, { throwIfNoEntry: false })) return false;
  try {
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(target, link);
    return true;
  } catch {
    return false;
  }
}

/** Removes `link` if it is still the link to `target`. */
export function unlinkDockerSocket(target: string, link = DOCKER_SOCKET): void {
  try {
    if (readlinkSync(link) === target) unlinkSync(link);
  } catch {
    // Gone, or not a link (dockerd's socket): not ours.
  }
}
