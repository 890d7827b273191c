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
  readSmallSumNumber,
  readSqrtNumber,
  readSumNumber,
} from "../proto/codec.ts";
import { INT64_MAX, INT64_MIN } from "../proto/limits.ts";
import "../internals/deno_http2_constants.ts";
import { markStarted } from "./call_starts.ts";
import { ReplyWriter } from "./reply_writer.ts";
import { type MessageSpan, openRequestReader } from "./request_reader.ts";
import type { ServerLogger } from "./server_logger.ts";
import type {
  PowReply,
  PowRequest,
  SqrtReply,
  SqrtRequest,
  SumReply,
  SumRequest,
} from "../proto/definitions.ts";

/** What the handlers need from the server that hosts them. */
export interface HandlerSettings {
  /** The largest `count` a `Pow` call may ask for. */
  maxPowCount: number;
  /** Where log lines go; `undefined` is silent and skips formatting them. */
  logger: ServerLogger | undefined;
  /**
   * Whether the logger gets a line for every message received (the article's `Recved 3`),
   * or only the lines about calls: their start, end, cancellation and failures.
   *
   * @default {true}
   */
  logMessages?: boolean;
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
const DEFAULT_POW_COUNT = 10;

function fitsInt64(value: bigint): boolean {
  return value >= INT64_MIN && value <= INT64_MAX;
}

function status(code: grpc.status, details: string): grpc.StatusObject {
  return { code, details, metadata: new grpc.Metadata() };
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

/** Where the float part of a `Sum` joins the bigint total: well below 2^53. */
const SMALL_TOTAL_LIMIT = 2 ** 52;

function decodeRequest<Request>(
  decode: (span: Readonly<MessageSpan>) => Request,
  span: Readonly<MessageSpan>,
): Request {
  try {
    return decode(span);
  } catch (cause) {
    throw new RequestError(
      `Request message does not decode: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
    );
  }
}

/** A request message that is not what its method takes: the client's fault. */
class RequestError extends Error {}

/**
 * Runs `then` after the current turn of the event loop unless the call was cancelled by then.
 * A client's RST_STREAM reaches grpc-js as the end of the request stream first and as a
 * cancellation a moment later; acting on the end at once would answer a call that is gone.
 * So does a connection that dies (a client killed, a cable pulled): Deno's `node:http2` ends
 * the request stream of each of its calls before it closes them, often in the middle of a
 * message, which the request reader takes for a request cut short.
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
  /** The logger for a line per message received: `undefined` skips formatting them too. */
  const messageLogger = settings.logMessages === false ? undefined : logger;
  /**
   * The lines that only `logMessages: false` adds: each call's start and its completion, so
   * that every call has one line for how it ended. The article's lines (the default) mark a
   * `Sum`'s end with `client closed` and a `Pow`'s or `Sqrt`'s with nothing.
   */
  const callLogger = settings.logMessages === false ? logger : undefined;
  /**
   * How to end each streaming call in flight with a status of the server's choosing, and the
   * call's name for the line that says so.
   */
  const running = new Map<(failure: grpc.StatusObject) => void, string>();

  function logStart(method: string, call: { getPeer(): string }): void {
    callLogger?.info(`${method} called by ${call.getPeer()}`);
  }

  function internalError(method: string, cause: unknown): grpc.StatusObject {
    try {
      logger?.error(`${method} failed inside the server: ${describe(cause)}`);
    } catch {
      // A logger that fails too must not turn one failed call into a crashed server.
    }
    return status(grpc.status.INTERNAL, `${method} failed inside the server`);
  }

  /** The status for a failure while reading a request: `INTERNAL`, as grpc-js answers. */
  function requestFailure(method: string, cause: unknown): grpc.StatusObject {
    if (!(cause instanceof RequestError)) {
      return internalError(method, cause);
    }
    try {
      logger?.warn(`${method} refused a request: ${cause.message}`);
    } catch {
      // A logger that fails too must not turn one refused call into a crashed server.
    }
    return status(grpc.status.INTERNAL, cause.message);
  }

  function endRunningCalls(): void {
    const failure = status(
      grpc.status.UNAVAILABLE,
      "Server shut down before the call finished",
    );
    for (const [end, name] of [...running]) {
      try {
        logger?.warn(`${name} ended by the server's shutdown: UNAVAILABLE`);
      } catch {
        // A logger that fails must not leave the other calls running.
      }
      end(failure);
    }
  }

  async function streamPowers(
    call: grpc.ServerWritableStream<PowRequest, PowReply>,
    { replies, endedByServer }: {
      replies: ReplyWriter<PowReply>;
      endedByServer: () => boolean;
    },
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
    callLogger?.info(`Pow(${base}) completed: ${count} powers`);
    replies.end();
  }

  function handlePow(
    call: grpc.ServerWritableStream<PowRequest, PowReply>,
  ): void {
    // grpc-js runs this handler only once the request has arrived: the server logs the calls
    // that ended before (`call_starts.ts`) by the streams not marked here.
    if (logger !== undefined) markStarted(call);
    logStart("Pow", call);
    const replies = new ReplyWriter(call, encodePowReply);
    let ended = false;
    function end(failure: grpc.StatusObject): void {
      ended = true;
      replies.fail(failure);
    }
    running.set(end, `Pow(${call.request.number})`);
    streamPowers(call, { replies, endedByServer: () => ended })
      .catch((cause: unknown) => {
        if (!ended) replies.fail(internalError("Pow", cause));
      })
      .finally(() => running.delete(end));
  }

  function handleSum(
    call: grpc.ServerReadableStream<SumRequest, SumReply>,
    callback: grpc.sendUnaryData<SumReply>,
  ): void {
    logStart("Sum", call);
    let total = 0n;
    // Addends below 2^28 gather here and join `total` when it nears 2^53: most of a Sum's
    // numbers then cost a float add instead of a bigint one.
    let smallTotal = 0;
    let finished = false;
    function finish(failure: grpc.StatusObject | null, reply?: SumReply): void {
      if (finished) return;
      finished = true;
      running.delete(finish);
      callback(failure, reply);
    }
    running.set(finish, "Sum");
    function failSum(cause: unknown): void {
      finish(internalError("Sum", cause));
    }
    function add(addend: bigint): void {
      messageLogger?.info(`Recved ${addend}`);
      total += addend;
    }
    function complete(): void {
      whenNotCancelled(call, () =>
        guarded(() => {
          if (finished) return;
          logger?.info("client closed");
          total += BigInt(smallTotal);
          smallTotal = 0;
          if (fitsInt64(total)) {
            callLogger?.info(`Sum completed: ${total}`);
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
        }, failSum));
    }
    const reader = openRequestReader(call, {
      message(span): void {
        if (finished) return;
        try {
          const small = readSmallSumNumber(span);
          if (small < 0) {
            add(decodeRequest(readSumNumber, span));
            return;
          }
          messageLogger?.info(`Recved ${small}`);
          smallTotal += small;
          if (smallTotal >= SMALL_TOTAL_LIMIT) {
            total += BigInt(smallTotal);
            smallTotal = 0;
          }
        } catch (cause) {
          finish(requestFailure("Sum", cause));
        }
      },
      end: complete,
      fail(failure): void {
        whenNotCancelled(call, () =>
          guarded(() => {
            if (finished) return;
            logger?.warn(`Sum failed while receiving: ${failure.details}`);
            finish(failure);
          }, ignore));
      },
    });
    if (reader === undefined) {
      call.on("data", (request: SumRequest) => {
        if (finished) return;
        guarded(() => add(request.number), failSum);
      });
      call.on("end", complete);
    }
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
    logStart("Sqrt", call);
    const replies = new ReplyWriter(call, encodeSqrtReply);
    let position = 0;
    let finished = false;
    let paused = false;
    function markFinished(): void {
      finished = true;
      running.delete(end);
    }
    function end(failure: grpc.StatusObject): void {
      if (finished) return;
      markFinished();
      replies.fail(failure);
    }
    running.set(end, "Sqrt");
    function answer(number: number): void {
      position += 1;
      messageLogger?.info(`Recv Data:${number}`);
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
      } else if (!paused) {
        // Stop reading until the client takes the answers, so a client that writes without
        // reading cannot make the server buffer without bound.
        paused = true;
        pauseReading();
        replies.drained().then(() => {
          paused = false;
          resumeReading();
        });
      }
    }
    const reader = openRequestReader(call, {
      message(span): void {
        if (finished) return;
        try {
          answer(decodeRequest(readSqrtNumber, span));
        } catch (cause) {
          markFinished();
          replies.fail(requestFailure("Sqrt", cause));
        }
      },
      end: ended,
      fail(failure): void {
        whenNotCancelled(call, () =>
          guarded(() => {
            if (finished) return;
            logger?.warn(`Sqrt failed while receiving: ${failure.details}`);
            end(failure);
          }, ignore));
      },
    });
    function pauseReading(): void {
      if (reader === undefined) call.pause();
      else reader.pause();
    }
    function resumeReading(): void {
      if (reader === undefined) call.resume();
      else reader.resume();
    }
    function ended(): void {
      whenNotCancelled(call, () =>
        guarded(() => {
          if (finished) return;
          markFinished();
          callLogger?.info(`Sqrt completed after ${position} numbers`);
          replies.end();
        }, (cause) => replies.fail(internalError("Sqrt", cause))));
    }
    if (reader === undefined) {
      call.on("data", (request: SqrtRequest) => {
        if (finished) return;
        try {
          answer(request.number);
        } catch (cause) {
          markFinished();
          replies.fail(internalError("Sqrt", cause));
        }
      });
      call.on("end", ended);
    }
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
      if (logger !== undefined) markStarted(call);
      logStart("Single Sqrt", call);
      const number = call.request.number;
      messageLogger?.info(`Recv Data:${number}`);
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
      callLogger?.info("Single Sqrt completed");
      callback(null, { sqrt: Math.sqrt(number) });
    } catch (cause) {
      callback(internalError("Single Sqrt", cause));
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
