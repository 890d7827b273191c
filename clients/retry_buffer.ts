/**
 * What a call of the default transport holds for a transparent retry (gRFC A6): its request
 * headers and the request frames written so far, until the server's response headers
 * commit it, within a budget per call and one per channel. The grpc-js transport's own
 * buffer is sized in `grpc_js_retry_buffer.ts`.
 *
 * @module
 */
import type http2 from "node:http2";
import type { Buffer } from "node:buffer";

/**
 * The most request bytes (messages with their prefixes) one call holds for a transparent
 * retry; a call that has sent more is no longer retried. As the grpc-js transport's default
 * per-call retry buffer (`grpc_js_retry_buffer.ts`).
 */
const RETRY_BUFFER_CALL_BYTES = 16 * 1024;

/**
 * The most request bytes all the calls of one channel hold for transparent retries; a call
 * that would go past it is not retried.
 */
const RETRY_BUFFER_CHANNEL_BYTES = 256 * 1024;

/** What the calls of one channel hold for transparent retries together. */
export class RetryBudget {
  #bytes = 0;

  /**
   * Takes `bytes` more (or gives back `-bytes`).
   *
   * @param bytes How many bytes a call holds for a retry, negative for bytes it lets go.
   * @returns Whether they fit within {@linkcode RETRY_BUFFER_CHANNEL_BYTES}; if not,
   * nothing is taken.
   */
  take(bytes: number): boolean {
    if (bytes > 0 && this.#bytes + bytes > RETRY_BUFFER_CHANNEL_BYTES) {
      return false;
    }
    this.#bytes += bytes;
    return true;
  }
}

/** What a retry re-sends: the request headers and the frames written so far. */
export interface HeldRequest {
  /** The request headers, to open the retry's stream with. */
  readonly headers: http2.OutgoingHttpHeaders;
  /** The request frames written so far, in order; frames written later join them. */
  readonly frames: Buffer[];
}

/**
 * Where a call's retry buffer stands: holding its request for a retry, or committed (the
 * server answered, the request outgrew a budget, or the one retry was used), after which the
 * call is never retried.
 */
type RetryState =
  | { phase: "holding"; request: HeldRequest; bytes: number }
  | { phase: "committed" };

/** What one call holds for a transparent retry. */
export class RetryBuffer {
  #state: RetryState;
  #budget: RetryBudget;

  /**
   * @param headers The call's request headers; `undefined` for a call never retried.
   * @param budget The channel's budget, shared by its calls.
   */
  constructor(
    headers: http2.OutgoingHttpHeaders | undefined,
    budget: RetryBudget,
  ) {
    this.#budget = budget;
    this.#state = headers === undefined
      ? { phase: "committed" }
      : { phase: "holding", request: { headers, frames: [] }, bytes: 0 };
  }

  /** The request held for a retry, or `undefined` once committed. */
  get held(): HeldRequest | undefined {
    const state = this.#state;
    return state.phase === "holding" ? state.request : undefined;
  }

  /**
   * Keeps `frame` for a retry, or commits when it goes past the call's or the channel's
   * budget.
   *
   * @param frame A request frame just written.
   */
  hold(frame: Buffer): void {
    const state = this.#state;
    if (state.phase !== "holding") return;
    if (
      state.bytes + frame.length > RETRY_BUFFER_CALL_BYTES ||
      !this.#budget.take(frame.length)
    ) {
      this.commit();
      return;
    }
    state.request.frames.push(frame);
    state.bytes += frame.length;
  }

  /** The call can no longer be retried: what it held is let go. */
  commit(): void {
    const state = this.#state;
    if (state.phase !== "holding") return;
    this.#state = { phase: "committed" };
    this.#budget.take(-state.bytes);
  }
}
