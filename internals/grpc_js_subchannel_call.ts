/**
 * What the grpc-js transport reads and replaces of the pinned grpc-js's `Http2SubchannelCall`
 * (private in grpc-js): two prototype patches, each applied only to the calls of channels
 * that set its option, so other grpc-js clients in the process are left as they are. A
 * patch cannot tell a changed method from a fixed bug, so each refuses to apply on any
 * grpc-js but `PINNED_GRPC_JS_VERSION` (`requirePinnedGrpcJs`) or when a method it
 * wraps is gone. Both are workarounds, not optimisations: `GRPC_STREAM_FAST_PATHS=off` leaves
 * them on.
 *
 * ## Messages before a non-OK status ({@linkcode keepMessagesBeforeStatus})
 *
 * Keeps the pinned grpc-js's client from dropping the messages a server sent before a
 * non-OK status (grpc/grpc-node#2764).
 *
 * grpc-js's `Http2SubchannelCall` pauses its HTTP/2 stream after each message it hands up
 * and keeps the rest in `unpushedReadMessages` until the next read. When trailers arrive, it
 * reports a non-OK status at once (`maybeOutputStatus` waits for the end of the body only
 * for `OK`), and from then on discards what it still holds and every `data` event that
 * follows. Deno's `node:http2` emits `trailers` while the paused stream still buffers the
 * DATA frames before them, so a `Pow(10, count 25)` delivered 1 of the 19 powers that fit
 * before `OUT_OF_RANGE` in 30 of 30 calls; under Node the same happens with a slow reader.
 *
 * Here a status that came in trailers waits, like `OK` does, until the body has ended and
 * every message before it has been handed up. A status this side makes up (a cancel, a
 * deadline, a malformed message) still ends the call at once, and replaces a status that is
 * waiting. When the stream closes without its end (a reset, a lost connection), the
 * messages already decoded are handed up and the status follows them.
 *
 * The same holds when the server closes the connection right after a call's status, as a
 * gracefully stopping server does: the messages a slow reader had not taken yet sat in the
 * paused HTTP/2 stream, which the session destroys when the connection ends, and grpc-js's
 * `onDisconnect` replaced the waiting `OK` with `UNAVAILABLE: Connection dropped`. A
 * round-robin client lost a `Sqrt` that way in rolling restarts. Trailers come after the
 * whole body, so the body is now read out of the stream into grpc-js's own queue when they
 * arrive, and a connection lost after them no longer replaces their status.
 *
 * Remove it when grpc-js reports a trailers' status only after the messages before it
 * (grpc/grpc-node#2764 closed and the version in `deno.json` raised past the fix);
 * `tests/clients/pow_test.ts` ("every power that fits arrives before OUT_OF_RANGE", run on
 * the grpc-js transport) fails without it.
 *
 * ## A cancel that resets first ({@linkcode resetCancelledCalls})
 *
 * Makes the pinned grpc-js's client cancel a call under Deno without ending the connection
 * and without telling the server the request is complete.
 *
 * grpc-js ends a call this side gave up on (a cancel, a deadline, a `for await` left early)
 * in `Http2SubchannelCall.destroyHttp2Stream`: it resumes the stream and calls
 * `http2Stream.close(NGHTTP2_CANCEL)`. Under the pinned Deno that goes wrong twice:
 * - `close()` ends the writable side first, so the server gets an empty DATA frame with
 *   END_STREAM before the `RST_STREAM(CANCEL)`: grpc-go and C-core take a cancelled `Sum`
 *   or `Sqrt` as a complete request and answer it in full.
 * - The reset goes out at once while grpc-go still sends the DATA frames it had in flight,
 *   and the nghttp2 inside Deno (1.68.0) counts each frame for the closed stream as a
 *   "glitch" and ends the whole connection with `GOAWAY(ENHANCE_YOUR_CALM)` after 1,000 of
 *   them (nghttp2/nghttp2#2597): the next call on the channel fails with
 *   `CANCELLED: Call cancelled`.
 *
 * {@linkcode resetCancelledCalls} resets such a stream as the default transport resets it
 * (`resetWhenQuiet` in `clients/stream_reset.ts`, handed in): paused until the server has
 * used up the stream's window (a second at most; 30 ms for a server that has not answered
 * at all, which is reading the request), then destroyed with an `AbortError`, which sends
 * the reset with nothing before it. A call that ends with `OK`, or that the server ended,
 * is closed as grpc-js closes it.
 *
 * Remove it once
 * Deno ships nghttp2 1.69.0 or later and its `close(NGHTTP2_CANCEL)` sends the reset first
 * (denoland/deno#33633); the grpc-go interop test ("Cancels and deadlines over grpc-js reach
 * a grpc-go server and leave the connection usable") fails without it.
 *
 * @module
 */
import type http2 from "node:http2";
import subchannelCallModule from "./npm/grpc_js_subchannel_call.ts";
import { requirePinnedGrpcJs } from "./versions.ts";

/** The channel option that turns {@linkcode keepMessagesBeforeStatus} on for a channel's calls. */
export const KEEP_MESSAGES_OPTION = "grpc-stream.keep_messages_before_status";

/** The channel option that turns {@linkcode resetCancelledCalls} on for a channel's calls. */
export const CANCEL_RESET_OPTION = "grpc-stream.cancel_reset";

/** How the client resets a stream it has given up on (`resetWhenQuiet`). */
export type QuietReset = (
  stream: http2.ClientHttp2Stream,
  options: { answered: boolean },
) => void;

const OK = 0;
const RESETTING = Symbol("resetting");
const HELD = Symbol("statusHeldForMessages");
const STREAM_CLOSED = Symbol("streamClosed");

/** What the patches read and call of an `Http2SubchannelCall` (private in grpc-js). */
interface SubchannelCallInternals {
  http2Stream: http2.ClientHttp2Stream;
  serverEndedCall: boolean;
  httpStatusCode?: number;
  destroyHttp2Stream(): void;
  [RESETTING]?: boolean;
  transport: { getOptions(): Record<string, unknown> };
  finalStatus: { code: number } | null;
  readsClosed: boolean;
  connectionDropped: boolean;
  canPush: boolean;
  statusOutput: boolean;
  isPushPending: boolean;
  isReadFilterPending: boolean;
  unpushedReadMessages: unknown[];
  push(message: unknown): void;
  maybeOutputStatus(): void;
  handleTrailers(headers: unknown): void;
  cancelWithStatus(code: number, details: string): void;
  startRead(): void;
  onDisconnect(): void;
  [HELD]?: boolean;
  [STREAM_CLOSED]?: boolean;
}

let keepMessagesInstalled = false;

/** The methods of `Http2SubchannelCall` the patches replace. */
type Prototype = Pick<
  SubchannelCallInternals,
  | "maybeOutputStatus"
  | "handleTrailers"
  | "cancelWithStatus"
  | "startRead"
  | "onDisconnect"
  | "destroyHttp2Stream"
>;

/** grpc-js's `Http2SubchannelCall.prototype`, as the patches see it. */
function subchannelCallPrototype(): Prototype {
  return subchannelCallModule.Http2SubchannelCall
    .prototype as unknown as Prototype;
}

function isOurs(call: SubchannelCallInternals): boolean {
  return call.transport.getOptions()[KEEP_MESSAGES_OPTION] === 1;
}

/** Whether the call holds a status from trailers back for messages still to hand up. */
function holding(call: SubchannelCallInternals): boolean {
  return call[HELD] === true && call.finalStatus !== null && !call.statusOutput;
}

/** Whether every message before the held status has been handed up. */
function drained(call: SubchannelCallInternals): boolean {
  return (call.readsClosed || call[STREAM_CLOSED] === true) &&
    call.unpushedReadMessages.length === 0 && !call.isPushPending &&
    !call.isReadFilterPending;
}

/**
 * Patches grpc-js's `Http2SubchannelCall` once, for the channels that set
 * {@linkcode KEEP_MESSAGES_OPTION} to `1`.
 *
 * @throws {Error} If the grpc-js in use is not `PINNED_GRPC_JS_VERSION`, or its
 * `Http2SubchannelCall` lacks a method the patch wraps.
 */
export function keepMessagesBeforeStatus(): void {
  if (keepMessagesInstalled) return;
  requirePinnedGrpcJs("The fix for grpc/grpc-node#2764");
  const prototype = subchannelCallPrototype();
  const original = {
    maybeOutputStatus: prototype.maybeOutputStatus,
    handleTrailers: prototype.handleTrailers,
    cancelWithStatus: prototype.cancelWithStatus,
    startRead: prototype.startRead,
    onDisconnect: prototype.onDisconnect,
  };
  for (const [name, method] of Object.entries(original)) {
    if (typeof method !== "function") {
      throw new Error(
        `grpc-js's Http2SubchannelCall has no ${name}: the fix for grpc/grpc-node#2764 needs a look`,
      );
    }
  }
  keepMessagesInstalled = true;

  prototype.handleTrailers = function (
    this: SubchannelCallInternals,
    headers: unknown,
  ): void {
    // Only a status the trailers are about to set is held; one this side set stays as it is.
    const hold = isOurs(this) && !this.statusOutput &&
      (this.finalStatus === null || this.finalStatus.code === 0);
    if (hold) {
      this[HELD] = true;
      this.http2Stream.once("close", () => {
        this[STREAM_CLOSED] = true;
        this.maybeOutputStatus();
      });
    }
    original.handleTrailers.call(this, headers);
    // The whole body came before the trailers: each `read` hands a chunk to grpc-js's `data`
    // listener, which keeps the messages it cannot push yet in its own queue.
    if (hold) { while (this.http2Stream.read() !== null); }
  };

  prototype.maybeOutputStatus = function (
    this: SubchannelCallInternals,
  ): void {
    if (holding(this)) {
      if (!drained(this)) return;
      // A stream that closed after its trailers has no more body to read.
      this.readsClosed = true;
    }
    original.maybeOutputStatus.call(this);
  };

  prototype.cancelWithStatus = function (
    this: SubchannelCallInternals,
    code: number,
    details: string,
  ): void {
    // This side gave up first: its status replaces the one still waiting for messages.
    if (holding(this) && !this.statusOutput) {
      this[HELD] = false;
      this.finalStatus = null;
    }
    original.cancelWithStatus.call(this, code, details);
  };

  prototype.onDisconnect = function (this: SubchannelCallInternals): void {
    // The server has said how the call ended and its body is in grpc-js's queue: losing the
    // connection now takes nothing away.
    if (holding(this)) {
      this.connectionDropped = true;
      this[STREAM_CLOSED] = true;
      this.maybeOutputStatus();
      return;
    }
    original.onDisconnect.call(this);
  };

  prototype.startRead = function (this: SubchannelCallInternals): void {
    // grpc-js's own startRead ends a call with a non-OK status at once, unread messages and
    // all; a held status instead lets the reads go on to the end of the body.
    if (!holding(this)) {
      original.startRead.call(this);
      return;
    }
    this.canPush = true;
    if (this.unpushedReadMessages.length > 0) {
      this.push(this.unpushedReadMessages.shift());
    } else if (drained(this)) {
      this.maybeOutputStatus();
    } else {
      this.http2Stream.resume();
    }
  };
}

let cancelInstalled = false;

/**
 * Patches grpc-js's `Http2SubchannelCall` once, for the channels that set
 * {@linkcode CANCEL_RESET_OPTION} to `1`.
 *
 * @param reset How the client resets a stream it has given up on, once its server is quiet
 * (`resetWhenQuiet` of `clients/stream_reset.ts`).
 * @throws {Error} If the grpc-js in use is not `PINNED_GRPC_JS_VERSION` or its
 * `Http2SubchannelCall` lacks `destroyHttp2Stream`.
 */
export function resetCancelledCalls(reset: QuietReset): void {
  if (cancelInstalled) return;
  requirePinnedGrpcJs("The cancel fix for grpc-js");
  const prototype = subchannelCallPrototype();
  const destroyHttp2Stream = prototype.destroyHttp2Stream;
  if (typeof destroyHttp2Stream !== "function") {
    throw new Error(
      "grpc-js's Http2SubchannelCall has no destroyHttp2Stream: the cancel fix for grpc-js needs a look",
    );
  }
  cancelInstalled = true;
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
    reset(stream, { answered: this.httpStatusCode !== undefined });
  };
}
