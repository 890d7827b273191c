/**
 * The two halves of a streaming call as JavaScript sees them: replies read through an async
 * iterator, and requests written from any iterable, both honouring flow control.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type { CallListener, CallStatus, TransportCall } from "./transport.ts";
import { GrpcError, Status } from "./grpc_error.ts";

/**
 * Turns a call's final status, other than `OK`, into the error the caller sees: a
 * `GrpcError`, or the `Deno.errors.NotCapable` of a server outside `--allow-net` (which
 * names the flag to add, as `startServer` does for an address it may not listen on).
 */
function errorFromStatus(status: CallStatus): Error {
  if (status.cause instanceof Deno.errors.NotCapable) return status.cause;
  return new GrpcError(status.code, status.details, {
    trailers: status.trailers,
    ...(status.cause === undefined ? {} : { cause: status.cause }),
  });
}

/** How many replies the iterator holds before it stops reading from the network. */
const HIGH_WATER_MARK = 256;
const LOW_WATER_MARK = 64;

interface Waiter<Value> {
  resolve(result: IteratorResult<Value, undefined>): void;
  reject(error: unknown): void;
}

/** Options for a {@linkcode ReplyIterator}. */
export interface ReplyIteratorOptions<Value> {
  /** Turns one reply message into the value the caller sees. */
  decode: (message: Buffer) => Value;
  /**
   * Cancels the call when aborted.
   *
   * @default {undefined}
   */
  signal?: AbortSignal | undefined;
  /**
   * Runs once, when the call is over for this iterator.
   *
   * @default {() => {}}
   */
  onFinish?: () => void;
  /**
   * Writes the call's requests once it has started, when the iterator can already cancel
   * it: an abort or a failure while the requests are written then reaches the call.
   *
   * @default {undefined}
   */
  write?:
    | ((call: TransportCall, iterator: ReplyIterator<Value>) => void)
    | undefined;
}

function nothing(): void {}

/**
 * An async iterator over the replies of one call. The call starts on the first `next()`;
 * leaving early (`return()`, `break` in `for await`) or an aborted signal cancels it on the
 * server. Replies that arrived before a failure are all yielded before the failure is thrown.
 */
export class ReplyIterator<Value>
  implements AsyncIterableIterator<Value, undefined> {
  #startCall: (
    listener: CallListener,
    iterator: ReplyIterator<Value>,
  ) => TransportCall;
  #decode: (message: Buffer) => Value;
  #signal: AbortSignal | undefined;
  #onFinish: () => void;
  #write:
    | ((call: TransportCall, iterator: ReplyIterator<Value>) => void)
    | undefined;
  #call: TransportCall | undefined;
  #values: Value[] = [];
  #head = 0;
  #paused = false;
  #started = false;
  #finished = false;
  /** Set once the call is over: `undefined` error means it ended well or was left early. */
  #outcome: { error: unknown } | undefined;
  #waiter: Waiter<Value> | undefined;

  /**
   * @param startCall Starts the call, reporting to `listener`.
   * @param options How to read the replies, and what to do around the call.
   */
  constructor(
    startCall: (
      listener: CallListener,
      iterator: ReplyIterator<Value>,
    ) => TransportCall,
    options: ReplyIteratorOptions<Value>,
  ) {
    this.#startCall = startCall;
    this.#decode = options.decode;
    this.#signal = options.signal;
    this.#onFinish = options.onFinish ?? nothing;
    this.#write = options.write;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Value, undefined>> {
    if (this.#waiter !== undefined) {
      return Promise.reject(
        new TypeError("Call next() again only after it settles"),
      );
    }
    if (!this.#started) this.#start();
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#settle();
    });
  }

  return(): Promise<IteratorResult<Value, undefined>> {
    this.#end({ error: undefined }, true);
    this.#values = [];
    this.#head = 0;
    this.#settle();
    return Promise.resolve({ done: true, value: undefined });
  }

  /** Cancels the call and makes the next read reject with `error`. */
  fail(error: unknown): void {
    this.#end({ error }, true);
    this.#values = [];
    this.#head = 0;
    this.#settle();
  }

  #start(): void {
    this.#started = true;
    const signal = this.#signal;
    if (signal?.aborted) {
      this.#end({ error: signal.reason }, false);
      return;
    }
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    const listener: CallListener = {
      onMessage: (message) => this.#onMessage(message),
      onStatus: (status) => {
        // Replies still buffered when this side gives up (a deadline) are not handed out.
        if (status.local) {
          this.#values = [];
          this.#head = 0;
        }
        this.#end(
          {
            error: status.code === Status.OK
              ? undefined
              : errorFromStatus(status),
          },
          false,
        );
        this.#settle();
      },
    };
    let call: TransportCall;
    try {
      call = this.#startCall(listener, this);
    } catch (error) {
      this.#end({ error }, false);
      return;
    }
    this.#call = call;
    if (!this.#finished) this.#write?.(call, this);
  }

  #onAbort = (): void => {
    this.fail(this.#signal?.reason);
  };

  #onMessage(message: Buffer): void {
    let value: Value;
    try {
      value = this.#decode(message);
    } catch (error) {
      this.#call?.cancel(
        Status.INTERNAL,
        `Cannot decode a reply: ${
          error instanceof Error ? error.message : error
        }`,
      );
      return;
    }
    this.#values.push(value);
    if (!this.#paused && this.#values.length - this.#head >= HIGH_WATER_MARK) {
      this.#paused = true;
      this.#call?.pause();
    }
    this.#settle();
  }

  /** Records how the call ended (first outcome wins) and lets go of the call. */
  #end(outcome: { error: unknown }, cancel: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#outcome = outcome;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    if (cancel) this.#call?.cancel();
    this.#onFinish();
  }

  #settle(): void {
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    if (this.#head < this.#values.length) {
      const value = this.#values[this.#head++] as Value;
      if (this.#head === this.#values.length) {
        this.#values = [];
        this.#head = 0;
      }
      if (this.#paused && this.#values.length - this.#head <= LOW_WATER_MARK) {
        this.#paused = false;
        this.#call?.resume();
      }
      this.#waiter = undefined;
      waiter.resolve({ done: false, value });
      return;
    }
    const outcome = this.#outcome;
    if (outcome === undefined) return;
    this.#waiter = undefined;
    // Report a failure once; later reads see a finished iterator.
    this.#outcome = { error: undefined };
    if (outcome.error === undefined) {
      waiter.resolve({ done: true, value: undefined });
    } else {
      waiter.reject(outcome.error);
    }
  }
}

/** The requests of a call: values, and how to check and encode each one. */
export interface RequestSource<Value> {
  /** The values, from an iterable or an async iterable. */
  values: Iterable<Value> | AsyncIterable<Value>;
  /** Checks one value and encodes it as a request message; may throw. */
  encode: (value: Value, index: number) => Uint8Array;
}

function isIterable<T>(
  value: Iterable<T> | AsyncIterable<T>,
): value is Iterable<T> {
  return typeof (value as Iterable<T>)[Symbol.iterator] === "function";
}

/**
 * Writes one request per value, waiting for `drain` whenever the transport asks, then
 * half-closes the call. Stops early, without half-closing, once the call has ended.
 *
 * @param call The call to write to.
 * @param requests The values, and how to encode each as a request message.
 * @returns A promise that settles when every value is written, or rejects with the first
 * error from the values or their encoding.
 */
export async function writeAll<Value>(
  call: TransportCall,
  requests: RequestSource<Value>,
): Promise<void> {
  const { values, encode } = requests;
  let index = 0;
  if (isIterable(values)) {
    for (const value of values) {
      if (call.finished) return;
      if (!call.write(encode(value, index++))) await call.drained();
    }
  } else {
    for await (const value of values) {
      if (call.finished) return;
      if (!call.write(encode(value, index++))) await call.drained();
    }
  }
  call.end();
}
