import { BerthError, type ErrorKind, ErrorKind as K } from "../base/mod.ts";

/**
 * An error answered by the daemon (a non-2xx status). `message` is the daemon's own text, so the
 * CLI can print it as docker does: `Error response from daemon: <message>`. The kind follows the
 * HTTP status so callers can use the base predicates (`isNotFound`, `isConflict`, ...).
 */
export class DaemonError extends BerthError {
  readonly status: number;
  constructor(status: number, message: string) {
    super(kindForStatus(status), message, { detail: { status } });
    this.name = "DaemonError";
    this.status = status;
  }
}

/**
 * The daemon could not be reached at all (socket missing, connection refused). The CLI prints it
 * as docker does: `Cannot connect to the Docker daemon at <host>. Is the docker daemon running?`
 */
export class ConnectError extends BerthError {
  readonly host: string;
  constructor(host: string, cause: unknown) {
    super(K.Unavailable, `Cannot connect to the Docker daemon at ${host}. Is the docker daemon running?`, { cause });
    this.name = "ConnectError";
    this.host = host;
  }
}

/** Maps an HTTP status of the Engine API to a berth error kind. */
export function kindForStatus(status: number): ErrorKind {
  switch (status) {
    case 400:
      return K.InvalidArgument;
    case 401:
      return K.Unauthorized;
    case 403:
      return K.PermissionDenied;
    case 404:
      return K.NotFound;
    case 409:
      return K.Conflict;
    case 412:
      return K.FailedPrecondition;
    case 499:
      return K.Canceled;
    case 501:
      return K.NotImplemented;
    case 503:
      return K.Unavailable;
    default:
      return K.Internal;
  }
}

/** Whether an error came from the daemon's answer (as opposed to a local failure). */
export function isDaemonError(err: unknown): err is DaemonError {
  return err instanceof DaemonError;
}
