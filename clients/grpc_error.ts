/**
 * The error every failed call rejects with, and the names of gRPC status codes.
 *
 * @module
 */

import {
  Status,
  type StatusName,
  statusName,
  toStatus,
} from "../proto/status.ts";

export { Status, type StatusName };

/**
 * Metadata a server sent, response headers or trailers: each key, lower-case, with all of its
 * values, text for most keys and bytes for keys ending in `-bin`. The keys gRPC itself reads
 * (`grpc-status`, `grpc-message`, `grpc-encoding`, `grpc-accept-encoding`) and HTTP/2's
 * pseudo-headers are left out.
 */
export type ResponseMetadata = Record<string, (string | Uint8Array)[]>;

/** The trailing metadata a server ended a call with, each key with all of its values. */
export type Trailers = ResponseMetadata;

/** Options for {@linkcode GrpcError}. */
export interface GrpcErrorOptions {
  /**
   * The trailing metadata the call ended with.
   *
   * @default {{}}
   */
  trailers?: Trailers;
  /**
   * The underlying error, kept as `cause`.
   *
   * @default {undefined}
   */
  cause?: unknown;
}

/**
 * A call that ended with a gRPC status other than `OK`.
 *
 * @example Tell an overflow from other failures
 * ```ts
 * import { GrpcError, startServer, sum } from "@streamrpc/grpc-stream";
 * import { rejects } from "node:assert";
 *
 * await using server = await startServer({ port: 0 });
 * await rejects(
 *   sum([2n ** 62n, 2n ** 62n], { address: server.addresses[0]! }),
 *   (error) => error instanceof GrpcError && error.codeName === "OUT_OF_RANGE",
 * );
 * ```
 */
export class GrpcError extends Error {
  /**
   * The status code, e.g. `11` (`Status.OUT_OF_RANGE`): one of {@linkcode Status}'s, so a
   * `switch` over it can be checked for exhaustiveness.
   */
  readonly code: Status;
  /** The status code's name, e.g. `"OUT_OF_RANGE"`. */
  readonly codeName: StatusName;
  /** The server's description of the failure. */
  readonly details: string;
  /** The trailing metadata the call ended with. */
  readonly trailers: Trailers;

  /**
   * Creates an error for a call that ended with `code`.
   *
   * @param code The gRPC status code; a number outside {@linkcode Status}'s (from untyped
   * code) is read as `Status.UNKNOWN`, as gRPC reads a code it does not know.
   * @param details The status details the server sent.
   * @param options Trailers and the underlying error.
   */
  constructor(code: Status, details: string, options?: GrpcErrorOptions) {
    const known = toStatus(code);
    const codeName = statusName(known) ?? "UNKNOWN";
    super(details === "" ? codeName : `${codeName}: ${details}`, {
      cause: options?.cause,
    });
    this.name = "GrpcError";
    this.code = known;
    this.codeName = codeName;
    this.details = details;
    this.trailers = options?.trailers ?? {};
  }
}
