/**
 * Where a server stream's sending stands ({@linkcode SendState}), one state at a time, and
 * the states that carry nothing, shared by every stream rather than made at each step.
 *
 * @module
 */
import type http2 from "node:http2";

/** The trailers `ServerStream.endWithTrailers` sends, and who hears they went. */
export interface EndingTrailers {
  readonly headers: http2.OutgoingHttpHeaders;
  readonly sent: () => void;
}

/** Where the stream's sending is. */
export type SendState =
  /** No response headers yet. */
  | { kind: "idle" }
  /** Headers sent; writes are framed as they come. */
  | { kind: "open" }
  /**
   * `end()` called: the queued bytes go, then `END_STREAM` or the trailers (those given to
   * `endWithTrailers`, or `'wantTrailers'`).
   */
  | {
    kind: "ending";
    waitForTrailers: boolean;
    trailers?: EndingTrailers;
  }
  /** Everything queued went; `'wantTrailers'` emitted, `sendTrailers` awaited. */
  | { kind: "trailers" }
  /** `close(code)` called with bytes queued: they go first, then RST_STREAM with `code`. */
  | { kind: "resetting"; code: number }
  /** `END_STREAM` sent, or the stream reset. */
  | { kind: "done" };

/** No response headers yet. */
export const IDLE: SendState = Object.freeze({ kind: "idle" });
/** Headers sent. */
export const OPEN: SendState = Object.freeze({ kind: "open" });
/** Trailers awaited. */
export const TRAILERS: SendState = Object.freeze({ kind: "trailers" });
/** Ended or reset. */
export const DONE: SendState = Object.freeze({ kind: "done" });
