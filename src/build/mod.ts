/**
 * build: Dockerfiles to images. The front end (`parseDockerfile`, `parseStages`, the shell
 * word lexer), `.dockerignore` matching, the step cache, and the `Builder` that runs stages
 * with RUN containers and snapshot layers. `applyChanges` serves `import`/`commit --change`.
 */
export {
  type BuildCacheRecord,
  Builder,
  type BuilderDeps,
  type BuilderImages,
  type BuildOptions,
  type BuildProgress,
  type BuildRegistryAuth,
  type BuildResult,
  BuildStepError,
} from "./builder.ts";
export { BuildCache, type BuildState, type CacheEntry } from "./cache.ts";
export { applyChanges } from "./changes.ts";
export { applyMeta, DEFAULT_SHELL, expandInstruction } from "./config.ts";
export { cleanPath, parseDockerignore, PatternMatcher } from "./ignore.ts";
export {
  type Dockerfile,
  type HealthConfig,
  type Instruction,
  parseInstruction,
  parseRunMount,
  parseStages,
  type RunMount,
  type Stage,
} from "./instructions.ts";
export { type EnvLookup, type LexOptions, ShellLex } from "./lex.ts";
export { DockerfileError, dumpNode, type Heredoc, type Node, type ParseResult, parseDockerfile } from "./parser.ts";
export { type BuildNetwork, hostNetwork, type NetworkAttachment, serviceNetwork } from "./run.ts";
