/**
 * `createClient` and the one-call helpers `pow`, `sum` and `sqrt`: a client's face. Its
 * options are checked and its transport opened in `open_transport.ts`; the calls themselves
 * are `method_calls.ts`'s.
 *
 * @module
 */
import type { CallOptions } from "./call_options.ts";
import type { ClientOptions } from "./client_options.ts";
import {
  callPow,
  callSqrt,
  callSum,
  type Int64Source,
  type NumberSource,
  type PowOptions,
} from "./method_calls.ts";
import { openTransport } from "./open_transport.ts";
import type { Transport } from "./transport.ts";

export type { CallOptions, MetadataInit } from "./call_options.ts";
export { DEFAULT_CONNECT_TIMEOUT_MS } from "./channel_options.ts";
export type {
  ClientOptions,
  ClientTransport,
  GrpcJsChannelOptions,
  GrpcJsCredentials,
  GrpcJsInterceptor,
} from "./client_options.ts";
export type { ClientTlsOptions } from "./tls_options.ts";
export type { Int64Source, NumberSource, PowOptions } from "./method_calls.ts";

/** A connection to a grpc-stream server (or the original Go demo's), shared by every call. */
export interface StreamClient extends Disposable {
  /** The `host:port` (or, over grpc-js, the target) this client calls. */
  readonly address: string;
  /**
   * Streams the powers of `base` from `stream.ServerStream/Pow`.
   *
   * @param base The base, an int64.
   * @param options The count, cancellation, deadline and metadata.
   * @returns The powers `base^0`, `base^1`, … as bigints, as they arrive.
   * @throws {RangeError} If `base` is not an int64 or `count` is not an integer from 1 to
   * 4294967295.
   */
  pow(
    base: bigint | number,
    options?: PowOptions,
  ): AsyncIterableIterator<bigint>;
  /**
   * Streams `numbers` to `stream.ClientStream/Sum` and resolves to their exact sum.
   *
   * @param numbers The addends, each an int64.
   * @param options Cancellation, deadline and metadata.
   * @returns The sum; it rejects with a {@linkcode GrpcError} (`OUT_OF_RANGE` when the sum does
   * not fit in int64) or with a `RangeError` for a number that is not an int64.
   */
  sum(numbers: Int64Source, options?: CallOptions): Promise<bigint>;
  /**
   * Streams `numbers` to `stream.BidirectionalStreamServer/Sqrt` and yields each square root
   * as soon as it arrives.
   *
   * @param numbers The numbers; a negative one or `NaN` ends the call with `INVALID_ARGUMENT`.
   * @param options Cancellation, deadline and metadata.
   * @returns The square roots, in order.
   */
  sqrt(
    numbers: NumberSource,
    options?: CallOptions,
  ): AsyncIterableIterator<number>;
  /** Closes the connection once the calls in flight have ended. */
  close(): void;
}

/**
 * Connects to a server that hosts the three streaming services. The connection is made on the
 * first call and shared by every call after it.
 *
 * @param address The server's `host:port`.
 * @param options Channel options.
 * @returns The client; close it (or declare it with `using`) when done.
 * @throws {TypeError} If `address` is not `host:port` or `[ipv6]:port`, or the TLS options
 * are malformed (for example a `cert` without its `key`).
 * @throws {RangeError} If `maxReceiveMessageBytes` or `maxSendMessageBytes` is not an integer
 * >= 0, `keepaliveMs` or `keepaliveTimeoutMs` is not an integer >= 1, or `connectTimeoutMs`,
 * `initialBackoffMs`, `maxBackoffMs` or `backoffMultiplier` is out of range.
 *
 * @example Call all three methods over one connection
 * ```ts
 * import { createClient, startServer } from "@streamrpc/grpc-stream";
 * import { deepStrictEqual, strictEqual } from "node:assert";
 *
 * await using server = await startServer({ port: 0 });
 * using client = createClient(server.addresses[0]!);
 * deepStrictEqual(await Array.fromAsync(client.pow(2, { count: 4 })), [1n, 2n, 4n, 8n]);
 * strictEqual(await client.sum([1, 2, 3n]), 6n);
 * deepStrictEqual(await Array.fromAsync(client.sqrt([4, 9])), [2, 3]);
 * ```
 *
 * @example Wait out a server that is not up yet, and give up on a silent one sooner
 * ```ts
 * import { createClient, startServer } from "@streamrpc/grpc-stream";
 * import { strictEqual } from "node:assert";
 *
 * const port = 20_000 + Math.floor(Math.random() * 10_000);
 * using client = createClient(`127.0.0.1:${port}`, {
 *   waitForReady: true,
 *   connectTimeoutMs: 5_000,
 *   initialBackoffMs: 500,
 * });
 * // Made before the server listens: the call waits (within its deadline) for it.
 * const total = client.sum([1, 2, 3], { timeout: 5_000 });
 * await using _server = await startServer({ port });
 * strictEqual(await total, 6n);
 * ```
 */
export function createClient(
  address: string,
  options?: ClientOptions,
): StreamClient {
  const channel = openTransport(address, options ?? {});
  function close(): void {
    channel.close();
  }
  return {
    address,
    pow(
      base: bigint | number,
      options?: PowOptions,
    ): AsyncIterableIterator<bigint> {
      return callPow({ channel }, base, options);
    },
    sum(numbers: Int64Source, options?: CallOptions): Promise<bigint> {
      try {
        return callSum(channel, numbers, options);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    sqrt(
      numbers: NumberSource,
      options?: CallOptions,
    ): AsyncIterableIterator<number> {
      return callSqrt({ channel }, numbers, options);
    },
    close,
    [Symbol.dispose]: close,
  };
}

/** The ports of the original Go demo's servers, where the one-call helpers go by default. */
export const DEFAULT_ADDRESSES: Readonly<
  { pow: string; sum: string; sqrt: string }
> = {
  pow: "127.0.0.1:8082",
  sum: "127.0.0.1:8081",
  sqrt: "127.0.0.1:8083",
};

/** Where a one-call helper connects, on top of its call options. */
export interface ConnectOptions extends ClientOptions {
  /**
   * The server's `host:port`.
   *
   * @default {The original Go demo's port for the method: "127.0.0.1:8082" for pow, "127.0.0.1:8081" for sum, "127.0.0.1:8083" for sqrt}
   */
  address?: string;
}

/** Options for the one-call {@linkcode pow}. */
export interface PowCallOptions extends PowOptions, ConnectOptions {}

/** Options for the one-call {@linkcode sum} and {@linkcode sqrt}. */
export interface StreamCallOptions extends CallOptions, ConnectOptions {}

/**
 * Streams the powers of `base` from `stream.ServerStream/Pow` over a connection of its own,
 * closed when the call ends.
 *
 * @param base The base, an int64.
 * @param options Where to connect, the count, cancellation, deadline and metadata.
 * @returns The powers `base^0` … `base^(count - 1)` as bigints, as they arrive.
 * @throws {RangeError} If `base` is not an int64 or `count` is out of range.
 * @throws {TypeError} If the address or the TLS options are malformed.
 *
 * @example Print the powers of two
 * ```ts
 * import { pow, startServer } from "@streamrpc/grpc-stream";
 *
 * await using server = await startServer({ port: 0 });
 * for await (const power of pow(2, { address: server.addresses[0]! })) {
 *   console.log(power); // 1n, 2n, 4n, … 512n
 * }
 * ```
 */
export function pow(
  base: bigint | number,
  options?: PowCallOptions,
): AsyncIterableIterator<bigint> {
  const settings = options ?? {};
  const channel = openTransport(
    settings.address ?? DEFAULT_ADDRESSES.pow,
    settings,
  );
  try {
    return callPow(
      { channel, onFinish: () => channel.close() },
      base,
      settings,
    );
  } catch (error) {
    channel.close();
    throw error;
  }
}

/**
 * Streams `numbers` to `stream.ClientStream/Sum` over a connection of its own and resolves to
 * their exact sum.
 *
 * @param numbers The addends, each an int64, from any iterable or async iterable.
 * @param options Where to connect, cancellation, deadline and metadata.
 * @returns The sum. It rejects with a {@linkcode GrpcError} when the call fails
 * (`OUT_OF_RANGE` when the sum does not fit in int64), a `RangeError` for a number that is not
 * an int64, or the signal's reason when aborted.
 *
 * @example Add numbers from a generator
 * ```ts
 * import { startServer, sum } from "@streamrpc/grpc-stream";
 * import { strictEqual } from "node:assert";
 *
 * await using server = await startServer({ port: 0 });
 * async function* count() {
 *   for (let i = 0; i < 10; i++) yield i;
 * }
 * strictEqual(await sum(count(), { address: server.addresses[0]! }), 45n);
 * ```
 */
export function sum(
  numbers: Int64Source,
  options?: StreamCallOptions,
): Promise<bigint> {
  const settings = options ?? {};
  let channel: Transport;
  try {
    channel = openTransport(
      settings.address ?? DEFAULT_ADDRESSES.sum,
      settings,
    );
  } catch (error) {
    return Promise.reject(error);
  }
  let result: Promise<bigint>;
  try {
    result = callSum(channel, numbers, settings);
  } catch (error) {
    result = Promise.reject(error);
  }
  return result.finally(() => channel.close());
}

/**
 * Streams `numbers` to `stream.BidirectionalStreamServer/Sqrt` over a connection of its own
 * and yields each square root as soon as it arrives.
 *
 * @param numbers The numbers, from any iterable or async iterable; a negative one or `NaN`
 * ends the call with `INVALID_ARGUMENT` after the answers before it.
 * @param options Where to connect, cancellation, deadline and metadata.
 * @returns The square roots, in order.
 * @throws {TypeError} If `numbers` is not iterable, or the address or the TLS options are
 * malformed.
 *
 * @example Answer square roots as they come
 * ```ts
 * import { sqrt, startServer } from "@streamrpc/grpc-stream";
 * import { deepStrictEqual } from "node:assert";
 *
 * await using server = await startServer({ port: 0 });
 * const roots = await Array.fromAsync(sqrt([0, 1, 4, 9], { address: server.addresses[0]! }));
 * deepStrictEqual(roots, [0, 1, 2, 3]);
 * ```
 */
export function sqrt(
  numbers: NumberSource,
  options?: StreamCallOptions,
): AsyncIterableIterator<number> {
  const settings = options ?? {};
  const channel = openTransport(
    settings.address ?? DEFAULT_ADDRESSES.sqrt,
    settings,
  );
  try {
    return callSqrt(
      { channel, onFinish: () => channel.close() },
      numbers,
      settings,
    );
  } catch (error) {
    channel.close();
    throw error;
  }
}
