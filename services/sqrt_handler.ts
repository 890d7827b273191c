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
import {
  type MessageSpan,
  openRequestReader,
  type RequestReader,
  type RequestSink,
} from "./request_reader.ts";
import type { CallFaults } from "./fault_plan.ts";
import { canceller, endByFault } from "./fault_plan.ts";
import { callFaults } from "./faults.ts";

/** How many numbers a call whose replies a fault holds reads ahead before it stops reading. */
const MAX_QUEUED = 16;

type SqrtCallStream = grpc.ServerDuplexStream<SqrtRequest, SqrtReply>;

/**
 * One bidirectional `Sqrt` call: each number answered as it is read, in order; with faults on
 * request, the numbers wait in a queue for the delays the faults hold them for. It is the
 * sink its request reader hands the messages to.
 */
class SqrtCall implements RequestSink {
  readonly #context: CallContext;
  readonly #call: SqrtCallStream;
  readonly #replies: ReplyWriter<SqrtReply>;
  readonly #faults: CallFaults | undefined;
  #reader: RequestReader | undefined = undefined;
  /** Numbers answered so far. */
  #position = 0;
  #finished = false;
  /** Whether reading waits for the client to take the answers. */
  #paused = false;
  /** Numbers read and not yet answered, while faults hold the replies. */
  #queue: number[] | undefined = undefined;
  #pumping = false;
  /** Whether reading waits for the faults' queue to shrink. */
  #queuePaused = false;
  #requestsEnded = false;
  /** Its place among the running calls. */
  #place = -1;

  /** Ends the call from outside, as the server's shutdown does: what `running` holds for it. */
  readonly stop = (failure: grpc.StatusObject): void => {
    if (this.#finished) return;
    this.#markFinished();
    this.#replies.fail(failure);
  };

  constructor(
    context: CallContext,
    { call, replies, faults }: {
      call: SqrtCallStream;
      replies: ReplyWriter<SqrtReply>;
      faults: CallFaults | undefined;
    },
  ) {
    this.#context = context;
    this.#call = call;
    this.#replies = replies;
    this.#faults = faults;
  }

  start(): void {
    const call = this.#call;
    this.#place = this.#context.running.add(this.stop, "Sqrt");
    // Ended before any request: nothing to read.
    if (this.#faults !== undefined && this.#faulted()) return;
    this.#reader = openRequestReader(call, this);
    if (this.#reader === undefined) {
      call.on("data", (request: SqrtRequest) => {
        if (this.#finished) return;
        try {
          this.#take(request.number);
        } catch (cause) {
          this.#markFinished();
          this.#replies.fail(this.#context.internalError("Sqrt", cause));
        }
      });
      call.on("end", () => this.end());
    }
    call.on("cancelled", () =>
      guarded(() => {
        if (this.#finished) return;
        this.#markFinished();
        this.#context.logger?.info(
          `Sqrt cancelled by ${
            canceller(call)
          } after ${this.#position} numbers`,
        );
      }, ignore));
  }

  message(span: Readonly<MessageSpan>): void {
    if (this.#finished) return;
    try {
      const number = decodeRequest(readSqrtNumber, span);
      if (this.#faults === undefined) this.#answer(number);
      else this.#take(number);
    } catch (cause) {
      this.#markFinished();
      this.#replies.fail(this.#context.requestFailure("Sqrt", cause));
    }
  }

  end(): void {
    whenNotCancelled(this.#call, () =>
      guarded(
        () => this.#complete(),
        (cause) =>
          this.#replies.fail(this.#context.internalError("Sqrt", cause)),
      ));
  }

  fail(failure: grpc.StatusObject): void {
    whenNotCancelled(this.#call, () =>
      guarded(() => {
        if (this.#finished) return;
        this.#context.logger?.warn(
          `Sqrt failed while receiving: ${failure.details}`,
        );
        this.stop(failure);
      }, ignore));
  }

  #markFinished(): void {
    this.#finished = true;
    this.#faults?.stop();
    this.#context.running.delete(this.#place, this.stop);
  }

  /** Whether a fault ends the call once {@linkcode SqrtCall.#position} numbers are answered. */
  #faulted(): boolean {
    const faults = this.#faults!;
    const ending = faults.progress(this.#position);
    if (ending === undefined) return false;
    this.#finished = true;
    const { running } = this.#context;
    running.delete(this.#place, this.stop);
    const replies = this.#replies;
    endByFault(faults, {
      ending,
      call: this.#call,
      fail: (failure) => replies.fail(failure),
      written: () => replies.handedOver(),
      running,
      name: "Sqrt",
    });
    return true;
  }

  /** Takes a number read: answered at once, or queued behind the faults' delays. */
  #take(number: number): void {
    if (this.#faults === undefined) {
      this.#answer(number);
      return;
    }
    const queue = this.#queue ??= [];
    queue.push(number);
    if (!this.#pumping) {
      this.#pump().catch((cause: unknown) =>
        this.stop(this.#context.internalError("Sqrt", cause))
      );
    }
    if (queue.length >= MAX_QUEUED && !this.#queuePaused && !this.#finished) {
      this.#queuePaused = true;
      this.#pauseReading();
    }
  }

  /** Answers the queued numbers in order, each after the delay the faults hold it for. */
  async #pump(): Promise<void> {
    const faults = this.#faults!;
    const queue = this.#queue!;
    this.#pumping = true;
    while (queue.length > 0 && !this.#finished) {
      const hold = faults.replyDelay();
      if (hold > 0 && !await faults.wait(hold)) break;
      if (this.#finished) break;
      this.#answer(queue.shift()!);
      if (!this.#finished) this.#faulted();
    }
    this.#pumping = false;
    if (this.#finished) return;
    if (this.#queuePaused) {
      this.#queuePaused = false;
      if (!this.#paused) this.#resumeReading();
    }
    if (this.#requestsEnded) this.#complete();
  }

  #answer(number: number): void {
    const position = ++this.#position;
    this.#context.messageLogger?.info(`Recv Data:${number}`);
    const replies = this.#replies;
    if (Number.isNaN(number) || number < 0) {
      this.#markFinished();
      this.#context.logger?.warn(
        `Sqrt refused message ${position}: ${number}`,
      );
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
    } else if (!this.#paused) {
      // Stop reading until the client takes the answers, so a client that writes without
      // reading cannot make the server buffer without bound.
      this.#paused = true;
      this.#pauseReading();
      replies.drained().then(() => {
        this.#paused = false;
        if (!this.#queuePaused) this.#resumeReading();
      });
    }
  }

  #pauseReading(): void {
    if (this.#reader === undefined) this.#call.pause();
    else this.#reader.pause();
  }

  #resumeReading(): void {
    if (this.#reader === undefined) this.#call.resume();
    else this.#reader.resume();
  }

  #complete(): void {
    if (this.#finished) return;
    if (this.#pumping || (this.#queue?.length ?? 0) > 0) {
      // The last numbers are still held by a fault: the pump completes the call.
      this.#requestsEnded = true;
      return;
    }
    this.#markFinished();
    this.#context.callLogger?.info(
      `Sqrt completed after ${this.#position} numbers`,
    );
    this.#replies.end();
  }
}

/**
 * Creates the bidirectional `Sqrt` handler.
 *
 * @param context What the handlers share.
 * @returns The handler.
 */
export function sqrtHandler(
  context: CallContext,
): grpc.handleBidiStreamingCall<SqrtRequest, SqrtReply> {
  const { logger, logStart, probe } = context;
  function handleSqrt(call: SqrtCallStream): void {
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
    new SqrtCall(context, { call, replies, faults: planned }).start();
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
