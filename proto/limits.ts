/**
 * The ranges of the services' numbers, which both the client and the server check.
 *
 * @module
 */

/**
 * The smallest int64: the least base of `Pow` and the least addend and sum of `Sum`.
 *
 * @example Check a number before sending it
 * ```ts
 * import { INT64_MAX, INT64_MIN } from "@streamrpc/grpc-stream";
 *
 * const base = 2n ** 40n;
 * console.log(base >= INT64_MIN && base <= INT64_MAX); // true
 * ```
 */
export const INT64_MIN: bigint = -(2n ** 63n);

/**
 * The largest int64: the greatest base of `Pow` and the greatest addend and sum of `Sum`.
 *
 * @example A sum past it fails with `OUT_OF_RANGE`
 * ```ts
 * import { GrpcError, INT64_MAX, startServer, sum } from "@streamrpc/grpc-stream";
 * import { rejects } from "node:assert";
 *
 * await using server = await startServer({ port: 0 });
 * await rejects(
 *   sum([INT64_MAX, 1n], { address: server.addresses[0]! }),
 *   (error) => error instanceof GrpcError && error.codeName === "OUT_OF_RANGE",
 * );
 * ```
 */
export const INT64_MAX: bigint = 2n ** 63n - 1n;

/**
 * The largest count of powers a `Pow` can ask for, or a server allow (`maxPowCount`): the
 * count travels as a uint32.
 *
 * @example Lift a server's limit on counts to the most the wire carries
 * ```ts
 * import { MAX_UINT32, startServer } from "@streamrpc/grpc-stream";
 *
 * await using server = await startServer({ port: 0, maxPowCount: MAX_UINT32 });
 * ```
 */
export const MAX_UINT32: number = 2 ** 32 - 1;

/** The longest delay a timer honours, in milliseconds; a longer one fires at once. */
export const MAX_TIMER_MS: number = 2 ** 31 - 1;
