/**
 * Makes grpc-js 1.14.7's client cancel a call under Deno without ending the connection and
 * without telling the server the request is complete, for the channels of the grpc-js
 * transport.
 *
 * grpc-js ends a call this side gave up on (a cancel, a deadline, a `for await` left early)
 * in `Http2SubchannelCall.destroyHttp2Stream`: it resumes the stream and calls
 * `http2Stream.close(NGHTTP2_CANCEL)`. Under Deno 2.9.6 that goes wrong twice:
 * - `close()` ends the writable side first, so the server gets an empty DATA frame with
 *   END_STREAM before the `RST_STREAM(CANCEL)`: grpc-go and C-core take a cancelled `Sum`
 *   or `Sqrt` as a complete request and answer it in full.
 * - The reset goes out at once while grpc-go still sends the DATA frames it had in flight,
 *   and the nghttp2 inside Deno (1.68.0) counts each frame for the closed stream as a
 *   "glitch" and ends the whole connection with `GOAWAY(ENHANCE_YOUR_CALM)` after 1,000 of
 *   them (nghttp2/nghttp2#2597): the next call on the channel fails with
 *   `CANCELLED: Call cancelled`.
 *
 * Here such a stream is reset as the default transport resets it (`resetWhenQuiet` in
 * `clients/stream_reset.ts`): paused until the server has used up the stream's window (a second
 * at most; 30 ms for a server that has not answered at all, which is reading the request),
 * then destroyed with an `AbortError`, which sends the reset with nothing before it. A call that ends with `OK`, or that the server ended, is closed as
 * grpc-js closes it.
 *
 * The patch replaces a private method of `Http2SubchannelCall` as grpc-js 1.14.7 has it, and
 * applies only to calls on channels that set {@linkcode CANCEL_RESET_OPTION}. Remove it once
 * Deno ships nghttp2 1.69.0 or later and its `close(NGHTTP2_CANCEL)` sends the reset first
 * (denoland/deno#33633); the grpc-go interop test ("Cancels and deadlines over grpc-js reach
 * a grpc-go server and leave the connection usable") fails without it.
 *
 * @module
 */
import type http2 from "node:http2";
import subchannelCallModule from "@grpc/grpc-js/build/src/subchannel-call.js";
import grpcJsPackage from "@grpc/grpc-js/package.json" with { type: "json" };
import { resetWhenQuiet } from "./stream_reset.ts";

/** The channel option that turns the fix on for a channel's calls. */
export const CANCEL_RESET_OPTION = "grpc-stream.cancel_reset";

const OK = 0;
const RESETTING = Symbol("resetting");

/** What the patch reads of an `Http2SubchannelCall` (private in grpc-js). */
interface SubchannelCallInternals {
  http2Stream: http2.ClientHttp2Stream;
  transport: { getOptions(): Record<string, unknown> };
  finalStatus: { code: number } | null;
  serverEndedCall: boolean;
  httpStatusCode?: number;
  destroyHttp2Stream(): void;
  [RESETTING]?: boolean;
}

type Prototype = Pick<SubchannelCallInternals, "destroyHttp2Stream">;

let installed = false;

/**
 * Patches grpc-js's `Http2SubchannelCall` once, for the channels that set
 * {@linkcode CANCEL_RESET_OPTION} to `1`.
 *
 * @throws {Error} If the grpc-js in use is not 1.14.7 or its `Http2SubchannelCall` lacks
 * `destroyHttp2Stream`.
 */
export function resetCancelledCalls(): void {
  if (installed) return;
  const prototype = subchannelCallModule.Http2SubchannelCall
    .prototype as unknown as Prototype;
  const destroyHttp2Stream = prototype.destroyHttp2Stream;
  if (
    grpcJsPackage.version !== "1.14.7" ||
    typeof destroyHttp2Stream !== "function"
  ) {
    throw new Error(
      `The cancel fix for grpc-js was written for grpc-js 1.14.7, not ${grpcJsPackage.version}: check whether it is still needed`,
    );
  }
  installed = true;
  prototype.destroyHttp2Stream = function (
    this: SubchannelCallInternals,
  ): void {
    const stream = this.http2Stream;
    if (
      this.transport.getOptions()[CANCEL_RESET_OPTION] !== 1 ||
      this.serverEndedCall || this.finalStatus?.code === OK
    ) {
      // A cancel already waiting for its reset is not closed over it (a later endCall).
      if (this[RESETTING] !== true) destroyHttp2Stream.call(this);
      return;
    }
    if (this[RESETTING] === true || stream.destroyed) return;
    this[RESETTING] = true;
    // grpc-js records the HTTP status when the response headers arrive.
    resetWhenQuiet(stream, { answered: this.httpStatusCode !== undefined });
  };
}
