/**
 * The modes of a `-v src:dst:mode` (Docker's volume specification), by kind: a specification
 * may name at most one of each kind. Shared by the daemon (container/mounts.ts) and compose.
 */
export const VOLUME_MODE_KINDS: readonly (readonly string[])[] = [
  ["ro", "rw"],
  ["shared", "rshared", "slave", "rslave", "private", "rprivate"],
  ["z", "Z"],
  ["consistent", "cached", "delegated"],
  ["nocopy"],
];

/** Every mode a volume specification may name. */
export const VOLUME_MODES: ReadonlySet<string> = new Set(VOLUME_MODE_KINDS.flat());
