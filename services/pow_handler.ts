/**
 * The `Pow` handler (`stream.ServerStream`): the powers of a base, exact in int64, written as
 * fast as the client takes them.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { encodePowReply } from "../proto/codec.ts";
import type { PowReply, PowRequest } from "../proto/definitions.ts";
import { markStarted } from "./call_starts.ts";
import { type CallContext, fitsInt64, status } from "./call_context.ts";
import { ReplyWriter } from "./reply_writer.ts";

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
    const replies = new ReplyWriter(call, encodePowReply, probe);
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

  return handlePow;
}
