/**
 * The `Sum` handler (`stream.ClientStream`): adds the numbers of a request stream, exact in
 * int64, read straight from the call's HTTP/2 stream where it can (`request_reader.ts`).
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { readSmallSumNumber, readSumNumber } from "../proto/codec.ts";
import type { SumReply, SumRequest } from "../proto/definitions.ts";
import {
  type CallContext,
  decodeRequest,
  describe,
  fitsInt64,
  guarded,
  ignore,
  status,
  whenNotCancelled,
} from "./call_context.ts";
import { openRequestReader } from "./request_reader.ts";
import { canceller, endByFault } from "./fault_plan.ts";
import { callFaults } from "./faults.ts";

/** Where the float part of a `Sum` joins the bigint total: well below 2^53. */
const SMALL_TOTAL_LIMIT = 2 ** 52;

/**
 * Creates the `Sum` handler.
 *
 * @param context What the handlers share.
 * @returns The handler.
 */
export function sumHandler(
  context: CallContext,
): grpc.handleClientStreamingCall<SumRequest, SumReply> {
  const {
    logger,
    messageLogger,
    callLogger,
    running,
    logStart,
    internalError,
    requestFailure,
  } = context;
  function handleSum(
    call: grpc.ServerReadableStream<SumRequest, SumReply>,
    callback: grpc.sendUnaryData<SumReply>,
  ): void {
    logStart("Sum", call);
    const planned = callFaults(context.faults, () => ({
      method: "Sum",
      call,
      name: "Sum",
      logger,
      refuse: (failure) => callback(failure),
    }));
    // Refused already: its fault headers are malformed.
    if (planned === false) return;
    const faults = planned;
    let total = 0n;
    // Addends below 2^28 gather here and join `total` when it nears 2^53: most of a Sum's
    // numbers then cost a float add instead of a bigint one.
    let smallTotal = 0;
    let finished = false;
    let answered = false;
    /** Requests read so far, for the faults' `after`. */
    let read = 0;
    function answer(failure: grpc.StatusObject | null, reply?: SumReply): void {
      if (answered) return;
      answered = true;
      faults?.stop();
      callback(failure, reply);
    }
    function finish(failure: grpc.StatusObject | null, reply?: SumReply): void {
      if (finished) return;
      finished = true;
      running.delete(finish);
      answer(failure, reply);
    }
    running.set(finish, "Sum");
    function failSum(cause: unknown): void {
      finish(internalError("Sum", cause));
    }
    /** Tells the faults of one more request; whether one of them ended the call. */
    function faulted(): boolean {
      const ending = faults?.progress(read);
      if (ending === undefined) return false;
      finished = true;
      running.delete(finish);
      endByFault(faults!, {
        ending,
        call,
        fail: (failure) => answer(failure),
        running,
        name: "Sum",
      });
      return true;
    }
    function add(addend: bigint): void {
      messageLogger?.info(`Recved ${addend}`);
      total += addend;
    }
    function reply(): void {
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
    }
    function complete(): void {
      whenNotCancelled(call, () =>
        guarded(() => {
          if (finished) return;
          logger?.info("client closed");
          total += BigInt(smallTotal);
          smallTotal = 0;
          const hold = faults?.replyDelay() ?? 0;
          if (hold === 0) {
            reply();
            return;
          }
          faults!.wait(hold).then((on) => {
            if (on && !finished) guarded(reply, failSum);
          });
        }, failSum));
    }
    if (faults !== undefined && faulted()) {
      // Ended before any request: the reader is not needed.
      call.on("error", ignore);
      return;
    }
    const reader = openRequestReader(call, {
      message(span): void {
        if (finished) return;
        try {
          const small = readSmallSumNumber(span);
          if (small < 0) {
            add(decodeRequest(readSumNumber, span));
            if (faults !== undefined) {
              read += 1;
              faulted();
            }
            return;
          }
          messageLogger?.info(`Recved ${small}`);
          smallTotal += small;
          if (smallTotal >= SMALL_TOTAL_LIMIT) {
            total += BigInt(smallTotal);
            smallTotal = 0;
          }
          if (faults !== undefined) {
            read += 1;
            faulted();
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
        guarded(() => {
          add(request.number);
          if (faults !== undefined) {
            read += 1;
            faulted();
          }
        }, failSum);
      });
      call.on("end", complete);
    }
    call.on("cancelled", () =>
      guarded(() => {
        running.delete(finish);
        if (finished) return;
        finished = true;
        answered = true;
        logger?.info(`Sum cancelled by ${canceller(call)}`);
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

  return handleSum;
}
