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

/** Where one `Pow` call's powers stand. */
class Powers {
  /** The next exponent to write. */
  exponent = 0;
  /** `base` to the power of {@linkcode exponent}. */
  power = 1n;
  /** Set once the server ended the call (its shutdown): nothing more is written. */
  ended = false;
  readonly base: bigint;
  readonly count: number;
  readonly replies: ReplyWriter<PowReply>;

  constructor(
    request: PowRequest,
    { count, replies }: { count: number; replies: ReplyWriter<PowReply> },
  ) {
    this.base = request.number;
    this.count = count;
    this.replies = replies;
  }
}

/** A call with faults on request, and its faults. */
interface Faulting {
  call: grpc.ServerWritableStream<PowRequest, PowReply>;
  faults: CallFaults;
}

/** What the next step of a `Pow` call does: go on, wait for the client to read first, or stop. */
type Step = "next" | "wait" | "over";

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

  /** Writes the power of the current exponent, unless the call cannot have it. */
  function writeNext(powers: Powers): Step {
    const { base, exponent, power, replies } = powers;
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
      return "over";
    }
    if (powers.ended) return "over";
    if (replies.closed) {
      logger?.info(
        `Pow(${base}) cancelled after ${exponent} of ${powers.count} powers`,
      );
      return "over";
    }
    const flowing = replies.write({ number: power });
    powers.power = power * base;
    powers.exponent = exponent + 1;
    return flowing ? "next" : "wait";
  }

  /** Waits for the client to read the replies written; whether it cancelled meanwhile. */
  async function cancelledWhileWaiting(powers: Powers): Promise<boolean> {
    if (!await powers.replies.drained()) return false;
    logger?.info(
      `Pow(${powers.base}) cancelled after ${powers.exponent} of ${powers.count} powers`,
    );
    return true;
  }

  function complete(powers: Powers): void {
    callLogger?.info(`Pow(${powers.base}) completed: ${powers.count} powers`);
    powers.replies.end();
  }

  /**
   * Writes the powers as long as the client takes them at once: most calls end here, with no
   * promise. What has to wait goes on in {@linkcode writeWaiting}.
   */
  function writeAtOnce(powers: Powers): Promise<void> | undefined {
    while (powers.exponent < powers.count) {
      const step = writeNext(powers);
      if (step === "over") return undefined;
      if (step === "wait") return writeAfterDrain(powers);
    }
    complete(powers);
    return undefined;
  }

  async function writeAfterDrain(powers: Powers): Promise<void> {
    if (await cancelledWhileWaiting(powers)) return;
    await writeWaiting(powers, undefined);
  }

  /** Writes the powers left, waiting for the client to read and for the faults' delays. */
  async function writeWaiting(
    powers: Powers,
    faulting: Faulting | undefined,
  ): Promise<void> {
    const { replies, count } = powers;
    /** Whether a fault ended the call, or holds it; waits before a reply are done. */
    async function faulted(
      { call, faults }: Faulting,
      written: number,
    ): Promise<boolean> {
      const ending = faults.progress(written);
      if (ending !== undefined) {
        await faults.end(ending, {
          call,
          fail: (failure) => replies.fail(failure),
          written: () => replies.handedOver(),
        });
        return true;
      }
      if (written === count) return false;
      const hold = faults.replyDelay();
      return hold > 0 && !await faults.wait(hold);
    }
    while (powers.exponent < count) {
      if (
        faulting !== undefined && await faulted(faulting, powers.exponent)
      ) {
        return;
      }
      const step = writeNext(powers);
      if (step === "over") return;
      if (step === "wait" && await cancelledWhileWaiting(powers)) return;
    }
    if (faulting !== undefined && await faulted(faulting, count)) return;
    complete(powers);
  }

  /** Starts a call's powers: at once where it can, or a promise of them. */
  function startPowers(
    powers: Powers,
    faulting: Faulting | undefined,
  ): Promise<void> | undefined {
    const { base, count } = powers;
    logger?.info(`Recv Client Data ${base}`);
    if (count > maxPowCount) {
      logger?.warn(
        `Pow(${base}) refused: count ${count} is over ${maxPowCount}`,
      );
      powers.replies.fail(
        status(
          grpc.status.INVALID_ARGUMENT,
          `Count is over this server's limit: ${count} > ${maxPowCount}`,
        ),
      );
      return undefined;
    }
    return faulting === undefined
      ? writeAtOnce(powers)
      : writeWaiting(powers, faulting);
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
    const request = call.request;
    const powers = new Powers(request, {
      count: request.count === 0 ? DEFAULT_POW_COUNT : request.count,
      replies,
    });
    function end(failure: grpc.StatusObject): void {
      powers.ended = true;
      faults?.stop();
      replies.fail(failure);
    }
    const place = running.add(end, "Pow", request.number);
    function failPow(cause: unknown): void {
      running.delete(place, end);
      if (!powers.ended) replies.fail(internalError("Pow", cause));
    }
    let waiting: Promise<void> | undefined;
    try {
      waiting = startPowers(
        powers,
        faults === undefined ? undefined : { call, faults },
      );
    } catch (cause) {
      failPow(cause);
      return;
    }
    if (waiting === undefined) {
      running.delete(place, end);
      return;
    }
    waiting.then(() => running.delete(place, end), failPow);
  }

  return handlePow;
}
