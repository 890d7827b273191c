/**
 * The three methods as calls on a transport: each checks and encodes its requests, starts its
 * call, and reads its replies through `streams.ts`'s reply iterator.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import { INT64_MAX, INT64_MIN, MAX_UINT32 } from "../proto/limits.ts";
import { streamMethods } from "../proto/definitions.ts";
import {
  type CallOptions,
  prepareCall,
  type PreparedCall,
} from "./call_options.ts";
import { GrpcError, Status } from "./grpc_error.ts";
import { ReplyIterator, writeAll } from "./streams.ts";
import type { CallListener, Transport } from "./transport.ts";

/** Options for {@linkcode StreamClient.pow}. */
export interface PowOptions extends CallOptions {
  /**
   * How many powers to receive: `base^0` through `base^(count - 1)`.
   *
   * @default {10}
   */
  count?: number;
}

/** The numbers `sum` adds: any iterable or async iterable of integers. */
export type Int64Source =
  | Iterable<bigint | number>
  | AsyncIterable<bigint | number>;

/** The numbers `sqrt` answers: any iterable or async iterable of numbers. */
export type NumberSource = Iterable<number> | AsyncIterable<number>;

/**
 * Checks that `value` is an int64.
 *
 * @param value A bigint, or a number that is a safe integer.
 * @param what What the value is, for the error message.
 * @returns The value as a bigint.
 */
function toInt64(value: bigint | number, what: string): bigint {
  if (typeof value === "bigint") {
    if (value < INT64_MIN || value > INT64_MAX) {
      throw new RangeError(`${what} does not fit in int64: ${value}`);
    }
    return value;
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new RangeError(
        `${what} must be a safe integer or a bigint: ${value}`,
      );
    }
    return BigInt(value);
  }
  throw new TypeError(`${what} must be a bigint or a number: ${typeof value}`);
}

function toPowCount(count: number | undefined): number {
  if (count === undefined) return 10;
  if (!Number.isInteger(count) || count < 1 || count > MAX_UINT32) {
    throw new RangeError(
      `Count must be an integer from 1 to ${MAX_UINT32}: ${count}`,
    );
  }
  return count;
}

function checkSource(numbers: unknown): void {
  if (
    typeof numbers !== "object" || numbers === null ||
    (typeof (numbers as Iterable<unknown>)[Symbol.iterator] !== "function" &&
      typeof (numbers as AsyncIterable<unknown>)[Symbol.asyncIterator] !==
        "function")
  ) {
    throw new TypeError("Numbers must be an iterable or an async iterable");
  }
}

function decodePow(message: Buffer): bigint {
  return streamMethods.pow.deserializeReply(message).number;
}

function decodeSqrt(message: Buffer): number {
  return streamMethods.sqrt.deserializeReply(message).sqrt;
}

function encodeSum(value: bigint | number, index: number): Uint8Array {
  return streamMethods.sum.serializeRequest({
    number: toInt64(value, `Number at index ${index}`),
  });
}

function encodeSqrt(value: number, index: number): Uint8Array {
  if (typeof value !== "number") {
    throw new TypeError(
      `Number at index ${index} must be a number: ${typeof value}`,
    );
  }
  return streamMethods.sqrt.serializeRequest({ number: value });
}

/**
 * The listener a call reports to: the reply iterator's, with the caller's `onHeader` and
 * `onTrailer` told first. A callback that throws fails the call with what it threw (and
 * cancels it, if it is still going).
 *
 * @param listener The reply iterator's listener.
 * @param call The caller's callbacks, and the iterator they can fail.
 * @returns The listener to start the call with.
 */
function withMetadataCallbacks<Value>(
  listener: CallListener,
  call: Pick<PreparedCall, "onHeader" | "onTrailer"> & {
    iterator: ReplyIterator<Value>;
  },
): CallListener {
  const { onHeader, onTrailer, iterator } = call;
  if (onHeader === undefined && onTrailer === undefined) return listener;
  return {
    ...(onHeader === undefined ? {} : {
      onHeaders(headers): void {
        try {
          onHeader(headers);
        } catch (error) {
          iterator.fail(error);
        }
      },
    }),
    onMessage: (message) => listener.onMessage(message),
    onStatus(status): void {
      try {
        onTrailer?.(status.trailers);
      } catch (error) {
        iterator.fail(error);
      }
      listener.onStatus(status);
    },
  };
}

/** The connection a call goes over, and who is told when the call has ended. */
export interface CallTarget {
  /** The connection. */
  channel: Transport;
  /**
   * Runs once the call has ended; a one-call helper closes its connection there.
   *
   * @default {nothing}
   */
  onFinish?: () => void;
}

/**
 * Streams the powers of `base` from `Pow`; the call starts on the first `next()`.
 *
 * @param target The connection, and what to run once the call has ended.
 * @param base The base, an int64.
 * @param options The count, cancellation, deadline and metadata.
 * @returns The powers, as they arrive.
 * @throws {RangeError} If `base` is not an int64 or `count` is out of range.
 */
export function callPow(
  { channel, onFinish = nothing }: CallTarget,
  base: bigint | number,
  options?: PowOptions,
): AsyncIterableIterator<bigint> {
  const request = streamMethods.pow.serializeRequest({
    number: toInt64(base, "Base"),
    count: toPowCount(options?.count),
  });
  const prepared = prepareCall(options ?? {});
  const { headers, deadline, signal, waitForReady } = prepared;
  return new ReplyIterator<bigint>(
    (listener, iterator) => {
      const call = channel.startCall(streamMethods.pow.path, {
        headers,
        deadline,
        waitForReady,
        listener: withMetadataCallbacks(listener, { ...prepared, iterator }),
      });
      call.write(request);
      call.end();
      return call;
    },
    { decode: decodePow, signal, onFinish },
  );
}

/**
 * Streams `numbers` to `Sum` and resolves to its one reply, through the same reply iterator
 * as the streaming methods: cancellation, deadline and statuses behave alike.
 *
 * @param channel The connection.
 * @param numbers The addends.
 * @param options Cancellation, deadline and metadata.
 * @returns The sum.
 * @throws {TypeError} If `numbers` is not iterable, or an option is malformed.
 */
export function callSum(
  channel: Transport,
  numbers: Int64Source,
  options?: CallOptions,
): Promise<bigint> {
  checkSource(numbers);
  const prepared = prepareCall(options ?? {});
  const { headers, deadline, signal, waitForReady } = prepared;
  signal?.throwIfAborted();
  const replies = new ReplyIterator<Buffer>(
    (iteratorListener, iterator) => {
      const listener = withMetadataCallbacks(iteratorListener, {
        ...prepared,
        iterator,
      });
      let received = 0;
      const call = channel.startCall(streamMethods.sum.path, {
        headers,
        deadline,
        waitForReady,
        listener: {
          onMessage(message: Buffer): void {
            // Sum has one reply; grpc-js ends a call that gets more the same way.
            if (++received > 1) {
              call.cancel(Status.UNIMPLEMENTED, "Too many responses received");
              return;
            }
            listener.onMessage(message);
          },
          onStatus: (status) => listener.onStatus(status),
          ...(listener.onHeaders === undefined
            ? {}
            : { onHeaders: listener.onHeaders }),
        },
      });
      return call;
    },
    {
      decode: keepReply,
      signal,
      write: (call, iterator) => {
        writeAll(call, { values: numbers, encode: encodeSum }).catch((
          error: unknown,
        ) => iterator.fail(error));
      },
    },
  );
  return sumFrom(replies);
}

function keepReply(message: Buffer): Buffer {
  return message;
}

/** Decodes the one reply of a `Sum` call that ended well. */
async function sumFrom(replies: AsyncIterable<Buffer>): Promise<bigint> {
  let reply: Buffer | undefined;
  for await (const message of replies) reply = message;
  if (reply === undefined) {
    throw new GrpcError(Status.INTERNAL, "Server sent no reply to Sum");
  }
  try {
    return streamMethods.sum.deserializeReply(reply).sum;
  } catch (error) {
    throw new GrpcError(Status.INTERNAL, "Cannot decode the reply to Sum", {
      cause: error,
    });
  }
}

/**
 * Streams `numbers` to `Sqrt` and yields each root as it arrives; the call starts on the
 * first `next()`.
 *
 * @param target The connection, and what to run once the call has ended.
 * @param numbers The numbers.
 * @param options Cancellation, deadline and metadata.
 * @returns The square roots, in order.
 * @throws {TypeError} If `numbers` is not iterable, or an option is malformed.
 */
export function callSqrt(
  { channel, onFinish = nothing }: CallTarget,
  numbers: NumberSource,
  options?: CallOptions,
): AsyncIterableIterator<number> {
  checkSource(numbers);
  const prepared = prepareCall(options ?? {});
  const { headers, deadline, signal, waitForReady } = prepared;
  return new ReplyIterator<number>(
    (listener, iterator) =>
      channel.startCall(streamMethods.sqrt.path, {
        headers,
        deadline,
        waitForReady,
        listener: withMetadataCallbacks(listener, { ...prepared, iterator }),
      }),
    {
      decode: decodeSqrt,
      signal,
      onFinish,
      write: (call, iterator) => {
        writeAll(call, { values: numbers, encode: encodeSqrt }).catch((
          error: unknown,
        ) => iterator.fail(error));
      },
    },
  );
}

function nothing(): void {}
