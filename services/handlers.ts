/**
 * The three handlers of the wire contract, with the semantics of the project's design:
 * exact int64 arithmetic, flow control, cancellation, and a status for every failure.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { setImmediate } from "node:timers";
import {
  encodePowReply,
  encodeSqrtReply,
  INT64_MAX,
  INT64_MIN,
} from "../proto/codec.ts";
import { ReplyWriter } from "./reply_writer.ts";
import type {
  PowReply,
  PowRequest,
  SqrtReply,
  SqrtRequest,
  SumReply,
  SumRequest,
} from "../proto/definitions.ts";

/** Where a server's handlers write their log lines. `console` fits. */
export interface ServerLogger {
  /** One line about normal operation, e.g. a message received. */
  info(message: string): void;
  /** One line about a call that failed or a client that misbehaved. */
  warn(message: string): void;
  /** One line about a fault inside the server. */
  error(message: string): void;
}

/** What the handlers need from the server that hosts them. */
export interface HandlerSettings {
  /** The largest `count` a `Pow` call may ask for. */
  maxPowCount: number;
  /** Where log lines go; `undefined` is silent and skips formatting them. */
  logger: ServerLogger | undefined;
}

/** The handlers, keyed as `grpc.Server.addService` expects them. */
export interface StreamHandlers {
  /** `stream.ServerStream` */
  serverStream: { Pow: grpc.handleServerStreamingCall<PowRequest, PowReply> };
  /** `stream.ClientStream` */
  clientStream: { Sum: grpc.handleClientStreamingCall<SumRequest, SumReply> };
  /** `stream.BidirectionalStreamServer` */
  bidirectionalStream: {
    Sqrt: grpc.handleBidiStreamingCall<SqrtRequest, SqrtReply>;
  };
  /** `stream.Single` */
  single: { Sqrt: grpc.handleUnaryCall<SqrtRequest, SqrtReply> };
  /**
   * Ends every streaming call still running with `UNAVAILABLE` (after the replies already
   * written), for a server whose grace period is over.
   */
  endRunningCalls(): void;
}

/** The `count` a `Pow` request means when it leaves the field at 0, as the Go demo did. */
export const DEFAULT_POW_COUNT = 10;

function fitsInt64(value: bigint): boolean {
  return value >= INT64_MIN && value <= INT64_MAX;
}

function status(code: grpc.status, details: string): grpc.StatusObject {
  return { code, details, metadata: new grpc.Metadata() };
}

function internalError(
  logger: ServerLogger | undefined,
  method: string,
  cause: unknown,
): grpc.StatusObject {
  try {
    logger?.error(`${method} failed inside the server: ${describe(cause)}`);
  } catch {
    // A logger that fails too must not turn one failed call into a crashed server.
  }
  return status(grpc.status.INTERNAL, `${method} failed inside the server`);
}

/**
 * Runs `body` and hands anything it throws to `onFault`: an exception in an event listener
 * would otherwise escape grpc-js and end the whole process.
 */
function guarded(body: () => void, onFault: (cause: unknown) => void): void {
  try {
    body();
  } catch (cause) {
    onFault(cause);
  }
}

/** For faults after a call is over, when there is nobody left to tell. */
function ignore(): void {}

function describe(cause: unknown): string {
  return cause instanceof Error
    ? (cause.stack ?? cause.message)
    : String(cause);
}

/**
 * Runs `then` after the current turn of the event loop unless the call was cancelled by then.
 * A client's RST_STREAM reaches grpc-js as the end of the request stream first and as a
 * cancellation a moment later; acting on the end at once would answer a call that is gone.
 */
function whenNotCancelled(
  call: { readonly cancelled: boolean },
  then: () => void,
): void {
  setImmediate(() => {
    if (!call.cancelled) then();
  });
}

/**
 * Creates the handlers that a server registers.
 *
 * @param settings The limits and logger the handlers use.
 * @returns The handlers for the three services.
 */
export function createHandlers(settings: HandlerSettings): StreamHandlers {
  const { logger, maxPowCount } = settings;
  /** How to end each streaming call in flight with a status of the server's choosing. */
  const running = new Set<(failure: grpc.StatusObject) => void>();

  function endRunningCalls(): void {
    const failure = status(
      grpc.status.UNAVAILABLE,
      "Server shut down before the call finished",
    );
    for (const end of [...running]) end(failure);
  }

  async function streamPowers(
    call: grpc.ServerWritableStream<PowRequest, PowReply>,
    replies: ReplyWriter<PowReply>,
    endedByServer: () => boolean,
  ): Promise<void> {
    const base = call.request.number;
    const count = call.request.count === 0
      ? DEFAULT_POW_COUNT
      : call.request.count;
    logger?.info(`Recv Client Data ${base}`);
    if (count > maxPowCount) {
      logger?.warn(
        `Pow(${base}) refused: count ${count} is over ${maxPowCount}`,
      );
      replies.fail(
        status(
          grpc.status.INVALID_ARGUMENT,
          `Count is over this server's limit: ${count} > ${maxPowCount}`,
        ),
      );
      return;
    }
    let power = 1n;
    for (let exponent = 0; exponent < count; exponent++) {
      if (!fitsInt64(power)) {
        logger?.warn(
          `Pow(${base}) stopped: ${base}^${exponent} does not fit in int64`,
        );
        replies.fail(
          status(
            grpc.status.OUT_OF_RANGE,
            `Power does not fit in int64: ${base}^${exponent} (after ${exponent} powers)`,
          ),
        );
        return;
      }
      if (endedByServer()) return;
      if (replies.closed) {
        logger?.info(
          `Pow(${base}) cancelled after ${exponent} of ${count} powers`,
        );
        return;
      }
      if (!replies.write({ number: power }) && await replies.drained()) {
        logger?.info(
          `Pow(${base}) cancelled after ${exponent + 1} of ${count} powers`,
        );
        return;
      }
      power *= base;
    }
    replies.end();
  }

  function handlePow(
    call: grpc.ServerWritableStream<PowRequest, PowReply>,
  ): void {
    const replies = new ReplyWriter(call, encodePowReply);
    let ended = false;
    function end(failure: grpc.StatusObject): void {
      ended = true;
      replies.fail(failure);
    }
    running.add(end);
    streamPowers(call, replies, () => ended)
      .catch((cause: unknown) => {
        if (!ended) replies.fail(internalError(logger, "Pow", cause));
      })
      .finally(() => running.delete(end));
  }

  function handleSum(
    call: grpc.ServerReadableStream<SumRequest, SumReply>,
    callback: grpc.sendUnaryData<SumReply>,
  ): void {
    let total = 0n;
    let finished = false;
    function finish(failure: grpc.StatusObject | null, reply?: SumReply): void {
      if (finished) return;
      finished = true;
      running.delete(finish);
      callback(failure, reply);
    }
    running.add(finish);
    call.on("data", (request: SumRequest) => {
      if (finished) return;
      try {
        const addend = request.number;
        logger?.info(`Recved ${addend}`);
        total += addend;
      } catch (cause) {
        finish(internalError(logger, "Sum", cause));
      }
    });
    function failSum(cause: unknown): void {
      finish(internalError(logger, "Sum", cause));
    }
    call.on("end", () =>
      whenNotCancelled(call, () =>
        guarded(() => {
          if (finished) return;
          logger?.info("client closed");
          if (fitsInt64(total)) {
            finish(null, { sum: total });
          } else {
            logger?.warn(
              `Sum refused: the total ${total} does not fit in int64`,
            );
            finish(
              status(
                grpc.status.OUT_OF_RANGE,
                `Sum does not fit in int64: ${total}`,
              ),
            );
          }
        }, failSum)));
    call.on("cancelled", () =>
      guarded(() => {
        running.delete(finish);
        if (finished) return;
        finished = true;
        logger?.info("Sum cancelled by the client");
      }, ignore));
    call.on(
      "error",
      (cause: unknown) =>
        guarded(
          () => logger?.warn(`Sum failed while receiving: ${describe(cause)}`),
          ignore,
        ),
    );
  }

  function handleSqrt(
    call: grpc.ServerDuplexStream<SqrtRequest, SqrtReply>,
  ): void {
    const replies = new ReplyWriter(call, encodeSqrtReply);
    let position = 0;
    let finished = false;
    function markFinished(): void {
      finished = true;
      running.delete(end);
    }
    function end(failure: grpc.StatusObject): void {
      if (finished) return;
      markFinished();
      replies.fail(failure);
    }
    running.add(end);
    call.on("data", (request: SqrtRequest) => {
      if (finished) return;
      try {
        position += 1;
        const number = request.number;
        logger?.info(`Recv Data:${number}`);
        if (Number.isNaN(number) || number < 0) {
          markFinished();
          logger?.warn(`Sqrt refused message ${position}: ${number}`);
          replies.fail(
            status(
              grpc.status.INVALID_ARGUMENT,
              `Number has no real square root: ${number} (message ${position})`,
            ),
          );
          return;
        }
        if (replies.write({ sqrt: Math.sqrt(number) })) {
          // Answers to the numbers that arrived together leave together, at once.
          replies.flushSoon();
        } else {
          // Stop reading until the client takes the answers, so a client that writes without
          // reading cannot make the server buffer without bound.
          call.pause();
          replies.drained().then(() => call.resume());
        }
      } catch (cause) {
        markFinished();
        replies.fail(internalError(logger, "Sqrt", cause));
      }
    });
    call.on("end", () =>
      whenNotCancelled(call, () =>
        guarded(() => {
          if (finished) return;
          markFinished();
          replies.end();
        }, (cause) => replies.fail(internalError(logger, "Sqrt", cause)))));
    call.on("cancelled", () =>
      guarded(() => {
        if (finished) return;
        markFinished();
        logger?.info(`Sqrt cancelled by the client after ${position} numbers`);
      }, ignore));
  }

  function handleSingleSqrt(
    call: grpc.ServerUnaryCall<SqrtRequest, SqrtReply>,
    callback: grpc.sendUnaryData<SqrtReply>,
  ): void {
    try {
      const number = call.request.number;
      logger?.info(`Recv Data:${number}`);
      if (Number.isNaN(number) || number < 0) {
        logger?.warn(`Single Sqrt refused: ${number}`);
        callback(
          status(
            grpc.status.INVALID_ARGUMENT,
            `Number has no real square root: ${number}`,
          ),
        );
        return;
      }
      callback(null, { sqrt: Math.sqrt(number) });
    } catch (cause) {
      callback(internalError(logger, "Single Sqrt", cause));
    }
  }

  return {
    serverStream: { Pow: handlePow },
    clientStream: { Sum: handleSum },
    bidirectionalStream: { Sqrt: handleSqrt },
    single: { Sqrt: handleSingleSqrt },
    endRunningCalls,
  };
}
