/**
 * The `Pow` handler (`stream.ServerStream`): the powers of a base, exact in int64, written as
 * fast as the client takes them.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { powReplyBytes } from "../proto/codec.ts";
import type { PowReply, PowRequest } from "../proto/definitions.ts";
import { markStarted } from "./call_starts.ts";
import { type CallContext, fitsInt64, status } from "./call_context.ts";
import { ReplyWriter } from "./reply_writer.ts";
import type { CallFaults } from "./fault_plan.ts";
import { callFaults } from "./faults.ts";

/** The `count` a `Pow` request means when it leaves the field at 0, as the Go demo did. */
const DEFAULT_POW_COUNT = 10;

/**
 * Creates the `Pow` handler.
 *
 * @param context What the handlers share.
 * @param maxPowCount The largest `count` a call may ask for.
 * @returns The handler.
 */
export function powHandler(
  context: CallContext,
  maxPowCount: number,
): grpc.handleServerStreamingCall<PowRequest, PowReply> {
  const { logger, callLogger, running, logStart, internalError, probe } =
    context;
  async function streamPowers(
    call: grpc.ServerWritableStream<PowRequest, PowReply>,
    { replies, endedByServer, faults }: {
      replies: ReplyWriter<PowReply>;
      endedByServer: () => boolean;
      faults: CallFaults | undefined;
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
    /** Whether a fault ended the call, or holds it; waits before a reply are done. */
    async function faulted(written: number): Promise<boolean> {
      const ending = faults!.progress(written);
      if (ending !== undefined) {
        await faults!.end(ending, {
          call,
          fail: (failure) => replies.fail(failure),
          written: () => replies.handedOver(),
        });
        return true;
      }
      if (written === count) return false;
      const hold = faults!.replyDelay();
      return hold > 0 && !await faults!.wait(hold);
    }
    let power = 1n;
    for (let exponent = 0; exponent < count; exponent++) {
      if (faults !== undefined && await faulted(exponent)) return;
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
    if (faults !== undefined && await faulted(count)) return;
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
    const replies = new ReplyWriter(call, powReplyBytes, probe);
    const planned = callFaults(context.faults, () => ({
      method: "Pow",
      call,
      name: `Pow(${call.request.number})`,
      logger,
      refuse: (failure) => replies.fail(failure),
    }));
    // Refused already: its fault headers are malformed.
    if (planned === false) return;
    const faults = planned;
    let ended = false;
    function end(failure: grpc.StatusObject): void {
      ended = true;
      faults?.stop();
      replies.fail(failure);
    }
    running.set(end, `Pow(${call.request.number})`);
    streamPowers(call, { replies, endedByServer: () => ended, faults }).then(
      () => running.delete(end),
      (cause: unknown) => {
        running.delete(end);
        if (!ended) replies.fail(internalError("Pow", cause));
      },
    );
  }

  return handlePow;
}
