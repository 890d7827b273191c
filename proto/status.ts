/**
 * gRPC's status codes, the one table of them: the client's errors name them, the server's
 * logs and the telemetry classify them, and the envelope's faults carry them.
 *
 * @module
 */

/** The gRPC status codes by name. */
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
