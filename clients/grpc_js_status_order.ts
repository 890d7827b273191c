/**
 * Keeps grpc-js 1.14.7's client from dropping the messages a server sent before a non-OK
 * status (grpc/grpc-node#2764), for the channels of the grpc-js transport.
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
 * The patch touches `Http2SubchannelCall`'s private methods as grpc-js 1.14.7 has them, and
 * applies only to calls on channels that set {@linkcode KEEP_MESSAGES_OPTION}, so other
 * grpc-js clients in the process are left as they are. Remove it when grpc-js reports a
 * trailers' status only after the messages before it (grpc/grpc-node#2764 closed and the
 * version in `deno.json` raised past the fix); `tests/clients/pow_test.ts` ("every power that fits
 * arrives before OUT_OF_RANGE", run on the grpc-js transport) fails without it.
 *
 * @module
 */
import subchannelCallModule from "@grpc/grpc-js/build/src/subchannel-call.js";
import grpcJsPackage from "@grpc/grpc-js/package.json" with { type: "json" };

/** The grpc-js version whose internals the patch was written against. */
const PATCHED_GRPC_JS_VERSION = "1.14.7";

/** The channel option that turns the fix on for a channel's calls. */
export const KEEP_MESSAGES_OPTION = "grpc-stream.keep_messages_before_status";

const HELD = Symbol("statusHeldForMessages");
const STREAM_CLOSED = Symbol("streamClosed");

/** What the patch reads and calls of an `Http2SubchannelCall` (private in grpc-js). */
interface SubchannelCallInternals {
  http2Stream: {
    resume(): void;
    read(): unknown;
    once(event: "close", listener: () => void): void;
  };
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

type Prototype = Pick<
  SubchannelCallInternals,
  | "maybeOutputStatus"
  | "handleTrailers"
  | "cancelWithStatus"
  | "startRead"
  | "onDisconnect"
>;

let installed = false;

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
 * @throws {Error} If the grpc-js in use is not the version the patch was written for, or its
 * `Http2SubchannelCall` lacks a method the patch wraps.
 */
export function keepMessagesBeforeStatus(): void {
  if (installed) return;
  if (grpcJsPackage.version !== PATCHED_GRPC_JS_VERSION) {
    throw new Error(
      `The fix for grpc/grpc-node#2764 was written for grpc-js ${PATCHED_GRPC_JS_VERSION}, not ${grpcJsPackage.version}: check whether it is still needed`,
    );
  }
  const prototype = subchannelCallModule.Http2SubchannelCall
    .prototype as unknown as Prototype;
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
  installed = true;

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
