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
 * import { INT64_MAX } from "@streamrpc/grpc-stream";
 *
 * console.log(INT64_MAX); // 9223372036854775807n
 * ```
 */
export const INT64_MAX: bigint = 2n ** 63n - 1n;

/**
 * The largest count of powers a `Pow` can ask for, or a server allow (`maxPowCount`): the
 * count travels as a uint32.
 *
 * @example
 * ```ts
 * import { MAX_UINT32 } from "@streamrpc/grpc-stream";
 *
 * console.log(MAX_UINT32); // 4294967295
 * ```
 */
export const MAX_UINT32: number = 2 ** 32 - 1;

/** The longest delay a timer honours, in milliseconds; a longer one fires at once. */
export const MAX_TIMER_MS: number = 2 ** 31 - 1;
