/**
 * What every handler of the server shares: where its lines go, the streaming calls in flight
 * (which a shutdown ends), the statuses for faults, and the guards that keep a fault inside
 * one call.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { atTurnEnd } from "./turn_end.ts";
import { RunningCalls } from "./running_calls.ts";
import { INT64_MAX, INT64_MIN } from "../proto/limits.ts";
import type { FaultSwitch } from "./fault_plan.ts";
import type { MessageSpan } from "./request_reader.ts";
import type { ServerLogger } from "./server_logger.ts";
import type { ServerProbe } from "./_testing.ts";

/** Where a handler's lines go, and what it shares with the other handlers. */
export interface CallContext {
  /** Where log lines go; `undefined` is silent and skips formatting them. */
  readonly logger: ServerLogger | undefined;
  /** The logger for a line per message received: `undefined` skips formatting them too. */
  readonly messageLogger: ServerLogger | undefined;
  /**
   * The lines that only `logMessages: false` adds: each call's start and its completion, so
   * that every call has one line for how it ended. The article's lines (the default) mark a
   * `Sum`'s end with `client closed` and a `Pow`'s or `Sqrt`'s with nothing.
   */
  readonly callLogger: ServerLogger | undefined;
  /**
   * How to end each streaming call in flight with a status of the server's choosing, and the
   * call's name for the line that says so.
   */
  readonly running: RunningCalls;
  /** Logs a call's start, for `logMessages: false`. */
  logStart(method: string, call: { getPeer(): string }): void;
  /** Logs a fault inside the server; the status to end the call with. */
  internalError(method: string, cause: unknown): grpc.StatusObject;
  /** The status for a failure while reading a request: `INTERNAL`, as grpc-js answers. */
  requestFailure(method: string, cause: unknown): grpc.StatusObject;
  /** Counts what the reply writers hold, for tests. */
  readonly probe: ServerProbe | undefined;
  /** The server's faults on request; its `planner` is `undefined` without any. */
  readonly faults: FaultSwitch;
}

/** How the handlers log. */
export interface CallContextOptions {
  /**
   * Where log lines go; `undefined` is silent.
   *
   * @default {undefined}
   */
  logger?: ServerLogger | undefined;
  /**
   * Whether the logger gets a line for every message received, or only the lines about calls.
   *
   * @default {true}
   */
  logMessages?: boolean | undefined;
  /**
   * Counts what the reply writers hold, for tests.
   *
   * @default {undefined}
   */
  probe?: ServerProbe | undefined;
  /**
   * The server's faults on request, which `setFaults` changes.
   *
   * @default {{ planner: undefined }}
   */
  faults?: FaultSwitch | undefined;
}

/**
 * Creates what the handlers of one server share.
 *
 * @param options The logger and what it hears.
 * @returns The context.
 */
export function createCallContext(options: CallContextOptions): CallContext {
  const { logger } = options;
  const messageLogger = options.logMessages === false ? undefined : logger;
  const callLogger = options.logMessages === false ? logger : undefined;

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

  return {
    logger,
    messageLogger,
    callLogger,
    running: new RunningCalls(),
    logStart,
    internalError,
    requestFailure,
    probe: options.probe,
    faults: options.faults ?? { planner: undefined },
  };
}

/**
 * Whether `value` fits in an int64, the type of every number `Pow` and `Sum` carry.
 *
 * @param value The number.
 * @returns `true` from {@linkcode INT64_MIN} to {@linkcode INT64_MAX}.
 */
export function fitsInt64(value: bigint): boolean {
  return value >= INT64_MIN && value <= INT64_MAX;
}

/**
 * A status to end a call with.
 *
 * @param code The gRPC status code.
 * @param details What the client reads.
 * @returns The status, with empty trailers.
 */
export function status(code: grpc.status, details: string): grpc.StatusObject {
  return { code, details, metadata: new grpc.Metadata() };
}

/**
 * Runs `body` and hands anything it throws to `onFault`: an exception in an event listener
 * would otherwise escape grpc-js and end the whole process.
 *
 * @param body What to run.
 * @param onFault Told what `body` threw.
 */
export function guarded(
  body: () => void,
  onFault: (cause: unknown) => void,
): void {
  try {
    body();
  } catch (cause) {
    onFault(cause);
  }
}

/** For faults after a call is over, when there is nobody left to tell. */
export function ignore(): void {}

/**
 * A fault as a log line shows it: an error's stack, or the value.
 *
 * @param cause What was thrown.
 * @returns The text.
 */
export function describe(cause: unknown): string {
  return cause instanceof Error
    ? (cause.stack ?? cause.message)
    : String(cause);
}

/**
 * Reads a request message; a message that does not decode is the client's fault.
 *
 * @param decode The field reader of the method's request (`proto/codec.ts`).
 * @param span Where the message lies.
 * @returns What `decode` read.
 * @throws {RequestError} If the message does not decode.
 */
export function decodeRequest<Request>(
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
 *
 * @param call The call.
 * @param then What to run unless the call is cancelled.
 */
export function whenNotCancelled(
  call: { readonly cancelled: boolean },
  then: () => void,
): void {
  atTurnEnd(() => {
    if (!call.cancelled) then();
  });
}
