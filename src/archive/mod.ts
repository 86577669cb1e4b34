/**
 * archive: layer tars. Applying a layer blob onto a directory safely (overlayfs whiteouts,
 * lowers, path resolution inside the root), producing layer tars from directories and overlay
 * upper dirs, and layer compression with digests.
 */
export { type ApplyOptions, type ApplyResult, applyLayer, cleanPath, DEFAULT_MAX_SIZE } from "./apply.ts";
export {
  type CompressedLayer,
  type CompressedLayerInfo,
  type Compression,
  type CompressOptions,
  compressLayer,
  type DecompressOptions,
  decompress,
  detectCompression,
  digestLayer,
} from "./compress.ts";
export { diffDirectories, readXattrs, type TarOptions, tarDirectory } from "./create.ts";
export {
  DEFAULT_LIMITS,
  encodeHeader,
  END_OF_ARCHIVE,
  type EntryType,
  type HeaderSpec,
  padding,
  type TarHeader,
  TarReader,
  type TarSink,
} from "./_tar.ts";
