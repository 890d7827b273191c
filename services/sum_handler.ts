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
import {
  type MessageSpan,
  openRequestReader,
  type RequestSink,
} from "./request_reader.ts";
import type { CallFaults } from "./fault_plan.ts";
import { canceller, endByFault } from "./fault_plan.ts";
import { callFaults } from "./faults.ts";

/** Where the float part of a `Sum` joins the bigint total: well below 2^53. */
const SMALL_TOTAL_LIMIT = 2 ** 52;

type SumCallStream = grpc.ServerReadableStream<SumRequest, SumReply>;

/**
 * One `Sum` call: its numbers added as they are read, the total answered once the client has
 * half-closed. It is the sink its request reader hands the messages to.
 */
class SumCall implements RequestSink {
  readonly #context: CallContext;
  readonly #call: SumCallStream;
  readonly #callback: grpc.sendUnaryData<SumReply>;
  readonly #faults: CallFaults | undefined;
  #total = 0n;
  // Addends below 2^28 gather here and join `total` when it nears 2^53: most of a Sum's
  // numbers then cost a float add instead of a bigint one.
  #smallTotal = 0;
  #finished = false;
  #answered = false;
  /** Requests read so far, for the faults' `after`. */
  #read = 0;
  /** Its place among the running calls. */
  #place = -1;

  /** Ends the call with `failure` (or a reply), unless it has ended: what `running` holds for it. */
  readonly finish = (
    failure: grpc.StatusObject | null,
    reply?: SumReply,
  ): void => {
    if (this.#finished) return;
    this.#finished = true;
    this.#context.running.delete(this.#place, this.finish);
    this.#answer(failure, reply);
  };

  constructor(
    context: CallContext,
    { call, callback, faults }: {
      call: SumCallStream;
      callback: grpc.sendUnaryData<SumReply>;
      faults: CallFaults | undefined;
    },
  ) {
    this.#context = context;
    this.#call = call;
    this.#callback = callback;
    this.#faults = faults;
  }

  start(): void {
    const call = this.#call;
    const { running, logger } = this.#context;
    this.#place = running.add(this.finish, "Sum");
    if (this.#faults !== undefined && this.#faulted()) {
      // Ended before any request: the reader is not needed.
      call.on("error", ignore);
      return;
    }
    const reader = openRequestReader(call, this);
    if (reader === undefined) {
      call.on("data", (request: SumRequest) => {
        if (this.#finished) return;
        guarded(() => {
          this.#add(request.number);
          this.#counted();
        }, (cause) => this.#failSum(cause));
      });
      call.on("end", () => this.end());
    }
    call.on("cancelled", () =>
      guarded(() => {
        running.delete(this.#place, this.finish);
        if (this.#finished) return;
        this.#finished = true;
        this.#answered = true;
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

  message(span: Readonly<MessageSpan>): void {
    if (this.#finished) return;
    try {
      const small = readSmallSumNumber(span);
      if (small < 0) {
        this.#add(decodeRequest(readSumNumber, span));
        this.#counted();
        return;
      }
      this.#context.messageLogger?.info(`Recved ${small}`);
      this.#smallTotal += small;
      if (this.#smallTotal >= SMALL_TOTAL_LIMIT) {
        this.#total += BigInt(this.#smallTotal);
        this.#smallTotal = 0;
      }
      this.#counted();
    } catch (cause) {
      this.finish(this.#context.requestFailure("Sum", cause));
    }
  }

  end(): void {
    whenNotCancelled(this.#call, () =>
      guarded(() => {
        if (this.#finished) return;
        this.#context.logger?.info("client closed");
        this.#total += BigInt(this.#smallTotal);
        this.#smallTotal = 0;
        const faults = this.#faults;
        const hold = faults?.replyDelay() ?? 0;
        if (hold === 0) {
          this.#reply();
          return;
        }
        faults!.wait(hold).then((on) => {
          if (on && !this.#finished) {
            guarded(() => this.#reply(), (cause) => this.#failSum(cause));
          }
        });
      }, (cause) => this.#failSum(cause)));
  }

  fail(failure: grpc.StatusObject): void {
    whenNotCancelled(this.#call, () =>
      guarded(() => {
        if (this.#finished) return;
        this.#context.logger?.warn(
          `Sum failed while receiving: ${failure.details}`,
        );
        this.finish(failure);
      }, ignore));
  }

  #answer(failure: grpc.StatusObject | null, reply?: SumReply): void {
    if (this.#answered) return;
    this.#answered = true;
    this.#faults?.stop();
    this.#callback(failure, reply);
  }

  #failSum(cause: unknown): void {
    this.finish(this.#context.internalError("Sum", cause));
  }

  /** Counts one more request for the faults, which may end the call. */
  #counted(): void {
    if (this.#faults === undefined) return;
    this.#read += 1;
    this.#faulted();
  }

  /** Tells the faults of the requests read; whether one of them ended the call. */
  #faulted(): boolean {
    const faults = this.#faults!;
    const ending = faults.progress(this.#read);
    if (ending === undefined) return false;
    this.#finished = true;
    const { running } = this.#context;
    running.delete(this.#place, this.finish);
    endByFault(faults, {
      ending,
      call: this.#call,
      fail: (failure) => this.#answer(failure),
      running,
      name: "Sum",
    });
    return true;
  }

  #add(addend: bigint): void {
    this.#context.messageLogger?.info(`Recved ${addend}`);
    this.#total += addend;
  }

  #reply(): void {
    const total = this.#total;
    if (fitsInt64(total)) {
      this.#context.callLogger?.info(`Sum completed: ${total}`);
      this.finish(null, { sum: total });
    } else {
      this.#context.logger?.warn(
        `Sum refused: the total ${total} does not fit in int64`,
      );
      this.finish(
        status(
          grpc.status.OUT_OF_RANGE,
          `Sum does not fit in int64: ${total}`,
        ),
      );
    }
  }
}

/**
 * Creates the `Sum` handler.
 *
 * @param context What the handlers share.
 * @returns The handler.
 */
export function sumHandler(
  context: CallContext,
): grpc.handleClientStreamingCall<SumRequest, SumReply> {
  const { logger, logStart } = context;
  function handleSum(
    call: SumCallStream,
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
    new SumCall(context, { call, callback, faults: planned }).start();
  }

  return handleSum;
}
