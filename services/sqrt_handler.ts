/**
 * The `Sqrt` handlers: the bidirectional `stream.BidirectionalStreamServer/Sqrt`, which
 * answers each number as it arrives and stops reading while the client does not take the
 * answers, and the unary `stream.Single/Sqrt`.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { readSqrtNumber, sqrtReplyBytes } from "../proto/codec.ts";
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
import { canceller, endByFault } from "./fault_plan.ts";
import { callFaults } from "./faults.ts";

/** How many numbers a call whose replies a fault holds reads ahead before it stops reading. */
const MAX_QUEUED = 16;

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
    const replies = new ReplyWriter(call, sqrtReplyBytes, probe);
    const planned = callFaults(context.faults, () => ({
      method: "Sqrt",
      call,
      name: "Sqrt",
      logger,
      refuse: (failure) => replies.fail(failure),
    }));
    // Refused already: its fault headers are malformed.
    if (planned === false) return;
    const faults = planned;
    let position = 0;
    let finished = false;
    let paused = false;
    function markFinished(): void {
      finished = true;
      faults?.stop();
      running.delete(end);
    }
    function end(failure: grpc.StatusObject): void {
      if (finished) return;
      markFinished();
      replies.fail(failure);
    }
    running.set(end, "Sqrt");
    /** Numbers read and not yet answered, while faults hold the replies. */
    const queue: number[] = [];
    let pumping = false;
    let queuePaused = false;
    let requestsEnded = false;
    /** Whether a fault ends the call once `position` numbers are answered. */
    function faulted(): boolean {
      const ending = faults!.progress(position);
      if (ending === undefined) return false;
      finished = true;
      running.delete(end);
      endByFault(faults!, {
        ending,
        call,
        fail: (failure) => replies.fail(failure),
        written: () => replies.handedOver(),
        running,
        name: "Sqrt",
      });
      return true;
    }
    /** Answers the queued numbers in order, each after the delay the faults hold it for. */
    async function pump(): Promise<void> {
      pumping = true;
      while (queue.length > 0 && !finished) {
        const hold = faults!.replyDelay();
        if (hold > 0 && !await faults!.wait(hold)) break;
        if (finished) break;
        answer(queue.shift()!);
        if (!finished) faulted();
      }
      pumping = false;
      if (finished) return;
      if (queuePaused) {
        queuePaused = false;
        if (!paused) resumeReading();
      }
      if (requestsEnded) complete();
    }
    /** Takes a number read, for a call with faults. */
    function take(number: number): void {
      queue.push(number);
      if (!pumping) {
        pump().catch((cause: unknown) => end(internalError("Sqrt", cause)));
      }
      if (queue.length >= MAX_QUEUED && !queuePaused && !finished) {
        queuePaused = true;
        pauseReading();
      }
    }
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
          if (!queuePaused) resumeReading();
        });
      }
    }
    if (faults !== undefined && faulted()) {
      // Ended before any request: nothing to read.
      return;
    }
    const reader = openRequestReader(call, {
      message(span): void {
        if (finished) return;
        try {
          const number = decodeRequest(readSqrtNumber, span);
          if (faults === undefined) answer(number);
          else take(number);
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
    function complete(): void {
      if (finished) return;
      if (pumping || queue.length > 0) {
        // The last numbers are still held by a fault: the pump completes the call.
        requestsEnded = true;
        return;
      }
      markFinished();
      callLogger?.info(`Sqrt completed after ${position} numbers`);
      replies.end();
    }
    function ended(): void {
      whenNotCancelled(call, () =>
        guarded(
          complete,
          (cause) => replies.fail(internalError("Sqrt", cause)),
        ));
    }
    if (reader === undefined) {
      call.on("data", (request: SqrtRequest) => {
        if (finished) return;
        try {
          if (faults === undefined) answer(request.number);
          else take(request.number);
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
        logger?.info(
          `Sqrt cancelled by ${canceller(call)} after ${position} numbers`,
        );
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
