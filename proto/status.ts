/**
 * gRPC's status codes, the one table of them: the client's errors name them, the server's
 * logs and the telemetry classify them, and the envelope's faults carry them.
 *
 * @module
 */

/**
 * The gRPC status codes by name, as a value: `Status.NOT_FOUND` is `5`. The same name is the
 * type of a code (see {@linkcode Status} the type), as a TypeScript `enum` would be.
 */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/**
 * A gRPC status code, the union of the codes in the table: `0 | 1 | … | 16`. A `switch` over
 * a code with a case for each name of {@linkcode Status} is checked for exhaustiveness.
 *
 * @example Handle every code, or fail to type-check
 * ```ts
 * import { Status } from "@streamrpc/grpc-stream";
 *
 * function retryable(code: Status): boolean {
 *   switch (code) {
 *     case Status.UNAVAILABLE:
 *     case Status.RESOURCE_EXHAUSTED:
 *       return true;
 *     default:
 *       return false;
 *   }
 * }
 * console.log(retryable(Status.UNAVAILABLE)); // true
 * ```
 */
export type Status = typeof Status[keyof typeof Status];

/** The name of a gRPC status code, such as `"OUT_OF_RANGE"`. */
export type StatusName = keyof typeof Status;

const NAMES_BY_CODE: ReadonlyMap<number, StatusName> = new Map(
  Object.entries(Status).map(([name, code]) => [code, name as StatusName]),
);

/**
 * The name of a gRPC status code.
 *
 * @param code A numeric status code, as the wire carries it.
 * @returns Its name, or `undefined` for a code outside the table.
 */
export function statusName(code: number): StatusName | undefined {
  return NAMES_BY_CODE.get(code);
}

/**
 * A numeric status code as one of the table's, as gRPC reads a code it does not know.
 *
 * @param code A numeric status code, as the wire or another library carries it.
 * @returns The code, or `Status.UNKNOWN` for a code outside the table.
 */
export function toStatus(code: number): Status {
  return NAMES_BY_CODE.has(code) ? code as Status : Status.UNKNOWN;
}
