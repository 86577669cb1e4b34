/** Container commands (filled in as they are written). */
import type { Command } from "./command.ts";

/** `berth container <verb>` commands. */
export const CONTAINER_COMMANDS: Command[] = [];
/** Container commands that are also top-level (`berth run`, `berth ps`...). */
export const CONTAINER_TOP_LEVEL: Command[] = [];
