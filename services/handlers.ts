/**
 * The handlers of the wire contract, with the semantics of the project's design: exact int64
 * arithmetic, flow control, cancellation, and a status for every failure. Each method's
 * handler has its file (`pow_handler.ts`, `sum_handler.ts`, `sqrt_handler.ts`); here they
 * are put together, with the shutdown's end of the calls still running.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import "../internals/deno_http2_constants.ts";
import type {
  PowReply,
  PowRequest,
  SqrtReply,
  SqrtRequest,
  SumReply,
  SumRequest,
} from "../proto/definitions.ts";
import { createCallContext, status } from "./call_context.ts";
import { powHandler } from "./pow_handler.ts";
import type { FaultSwitch } from "./fault_plan.ts";
import type { ServerLogger } from "./server_logger.ts";
import { singleSqrtHandler, sqrtHandler } from "./sqrt_handler.ts";
import { sumHandler } from "./sum_handler.ts";
import type { ServerProbe } from "./_testing.ts";

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
  /**
   * Counts what the handlers' reply writers hold, for tests.
   *
   * @default {undefined}
   */
  probe?: ServerProbe | undefined;
  /**
   * The server's faults on request, which `setFaults` changes.
   *
   * @default {undefined} (none)
   */
  faults?: FaultSwitch | undefined;
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

/**
 * Creates the handlers that a server registers.
 *
 * @param settings The limits and logger the handlers use.
 * @returns The handlers for the three services.
 */
export function createHandlers(settings: HandlerSettings): StreamHandlers {
  const context = createCallContext(settings);
  const { logger, running } = context;

  function endRunningCalls(): void {
    const failure = status(
      grpc.status.UNAVAILABLE,
      "Server shut down before the call finished",
    );
    for (const { end, name } of running.list()) {
      try {
        logger?.warn(`${name} ended by the server's shutdown: UNAVAILABLE`);
      } catch {
        // A logger that fails must not leave the other calls running.
      }
      end(failure);
    }
  }

  return {
    serverStream: { Pow: powHandler(context, settings.maxPowCount) },
    clientStream: { Sum: sumHandler(context) },
    bidirectionalStream: { Sqrt: sqrtHandler(context) },
    single: { Sqrt: singleSqrtHandler(context) },
    endRunningCalls,
  };
}
