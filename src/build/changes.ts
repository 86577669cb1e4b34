/**
 * `docker import --change` and `docker commit --change`: Dockerfile metadata instructions
 * applied to a container config, parsed and evaluated exactly as the builder does.
 */
import { invalidArgument, isInvalidArgument, messageOf } from "../base/mod.ts";
import type { ContainerConfig, ImageConfig } from "../oci/mod.ts";
import { applyMeta, expandInstruction, getEnv } from "./config.ts";
import { parseInstruction } from "./instructions.ts";
import { DockerfileError, parseDockerfile } from "./parser.ts";

/** Instructions `import -c` and `commit -c` accept (dockerd's list, plus SHELL). */
const ALLOWED = new Set([
  "cmd",
  "entrypoint",
  "env",
  "expose",
  "healthcheck",
  "label",
  "onbuild",
  "shell",
  "stopsignal",
  "user",
  "volume",
  "workdir",
]);

/**
 * Applies Dockerfile-style changes (`CMD ["sh"]`, `ENV A=b`, ...) to a container config and
 * returns the new config; the input is not modified. Throws InvalidArgument for instructions
 * outside the allowed set and for syntax errors.
 */
export function applyChanges(config: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const text = changes.join("\n");
  if (text.trim() === "") return { ...config };
  let nodes: ReturnType<typeof parseDockerfile>["nodes"];
  let esc: string;
  try {
    const r = parseDockerfile(text);
    nodes = r.nodes;
    esc = r.escape;
  } catch (e) {
    if (e instanceof DockerfileError && e.reason === "file with no instructions") return { ...config };
    throw invalidArgument(e instanceof DockerfileError ? e.reason : messageOf(e));
  }
  const img: ImageConfig = {
    architecture: "",
    os: "",
    rootfs: { type: "layers", diff_ids: [] },
    config: structuredClone(config),
  };
  const meta = { cmdSet: false };
  for (const n of nodes) {
    if (!ALLOWED.has(n.cmd)) throw invalidArgument(`${n.cmd.toUpperCase()} is not a valid change command`);
    try {
      const inst = expandInstruction(parseInstruction(n), (k) => getEnv(img.config?.Env, k), esc);
      // A CMD given together with an ENTRYPOINT in the same change set is kept.
      applyMeta(img, inst, meta);
    } catch (e) {
      if (e instanceof DockerfileError) throw invalidArgument(e.reason);
      if (isInvalidArgument(e)) throw e;
      throw invalidArgument(messageOf(e));
    }
  }
  return img.config ?? {};
}
