/**
 * The `Sqrt` handlers: the bidirectional `stream.BidirectionalStreamServer/Sqrt`, which
 * answers each number as it arrives and stops reading while the client does not take the
 * answers, and the unary `stream.Single/Sqrt`.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { encodeSqrtReply, readSqrtNumber } from "../proto/codec.ts";
import type { SqrtReply, SqrtRequest } from "../proto/definitions.ts";
import { markStarted } from "./call_starts.ts";
import {
  type CallContext,
  decodeRequest,
  guarded,
  ignore,
  status,
  whenNotCancelled,
} from "./call_context.ts";
import { ReplyWriter } from "./reply_writer.ts";
import { openRequestReader } from "./request_reader.ts";

/**
 * Creates the bidirectional `Sqrt` handler.
 *
 * @param context What the handlers share.
 * @returns The handler.
 */
export function sqrtHandler(
  context: CallContext,
): grpc.handleBidiStreamingCall<SqrtRequest, SqrtReply> {
  const {
    logger,
    messageLogger,
    callLogger,
    running,
    logStart,
    internalError,
    requestFailure,
    probe,
  } = context;
  function handleSqrt(
    call: grpc.ServerDuplexStream<SqrtRequest, SqrtReply>,
  ): void {
    logStart("Sqrt", call);
    const replies = new ReplyWriter(call, encodeSqrtReply, probe);
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

  return handleSqrt;
}

/**
 * Creates the unary `Sqrt` handler.
 *
 * @param context What the handlers share.
 * @returns The handler.
 */
export function singleSqrtHandler(
  context: CallContext,
): grpc.handleUnaryCall<SqrtRequest, SqrtReply> {
  const { logger, messageLogger, callLogger, logStart, internalError } =
    context;
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

  return handleSingleSqrt;
}
