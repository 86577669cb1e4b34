/**
 * Error kinds shared by every layer of berth (containerd's errdefs). Subsystems throw a
 * `BerthError` with a kind; only `api` maps kinds to HTTP status codes, only `cli` to exit codes.
 * Use the predicates (`isNotFound`, ...) rather than `instanceof` checks on subclasses.
 */
export const ErrorKind = {
  NotFound: "NotFound",
  AlreadyExists: "AlreadyExists",
  InvalidArgument: "InvalidArgument",
  Conflict: "Conflict",
  FailedPrecondition: "FailedPrecondition",
  Unavailable: "Unavailable",
  Unauthorized: "Unauthorized",
  PermissionDenied: "PermissionDenied",
  NotImplemented: "NotImplemented",
  Canceled: "Canceled",
  Internal: "Internal",
} as const;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

/** An error with a kind; `detail` carries the failing input (path, digest, line:column). */
export class BerthError extends Error {
  readonly kind: ErrorKind;
  readonly detail: Record<string, unknown> | undefined;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = `BerthError(${kind})`;
    this.kind = kind;
    this.detail = options?.detail;
  }
}

function make(kind: ErrorKind) {
  return (message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) => new BerthError(kind, message, options);
}

export const notFound = make(ErrorKind.NotFound);
export const alreadyExists = make(ErrorKind.AlreadyExists);
export const invalidArgument = make(ErrorKind.InvalidArgument);
export const conflict = make(ErrorKind.Conflict);
export const failedPrecondition = make(ErrorKind.FailedPrecondition);
export const unavailable = make(ErrorKind.Unavailable);
export const unauthorized = make(ErrorKind.Unauthorized);
export const permissionDenied = make(ErrorKind.PermissionDenied);
export const notImplemented = make(ErrorKind.NotImplemented);
export const canceled = make(ErrorKind.Canceled);
export const internal = make(ErrorKind.Internal);

/** The kind of any thrown value; unknown errors are Internal, aborts are Canceled. */
export function kindOf(err: unknown): ErrorKind {
  if (err instanceof BerthError) return err.kind;
  if (err instanceof Error && err.name === "AbortError") return ErrorKind.Canceled;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ENOENT") return ErrorKind.NotFound;
  if (code === "EEXIST") return ErrorKind.AlreadyExists;
  if (code === "EACCES" || code === "EPERM") return ErrorKind.PermissionDenied;
  return ErrorKind.Internal;
}

const is = (kind: ErrorKind) => (err: unknown) => kindOf(err) === kind;
export const isNotFound = is(ErrorKind.NotFound);
export const isAlreadyExists = is(ErrorKind.AlreadyExists);
export const isInvalidArgument = is(ErrorKind.InvalidArgument);
export const isConflict = is(ErrorKind.Conflict);
export const isFailedPrecondition = is(ErrorKind.FailedPrecondition);
export const isUnavailable = is(ErrorKind.Unavailable);
export const isUnauthorized = is(ErrorKind.Unauthorized);
export const isCanceled = is(ErrorKind.Canceled);

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
