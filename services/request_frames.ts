/**
 * Takes the request DATA frames of one call below grpc-js and Deno's `Readable`.
 *
 * Deno's `node:http2` hands each inbound DATA frame to the stream's native handle as
 * `handle.onread(bytes, length)`, whose default (`onStreamRead`) wraps the bytes in a
 * `Buffer`, pushes it through the stream's `Readable` and emits `'data'`: one turn of the
 * `Readable` machinery, a `nextTick` and a `sendPending` op per frame, and grpc-go sends one
 * frame per message. Once the `Readable` holds nothing, the reader takes the frames straight
 * from `handle.onread`, or, on a session with a frame tap (`frame_tap.ts`), from the socket's
 * bytes before nghttp2 reads them. Deno's native side still counts their bytes off the
 * stream's window as they arrive, and stops doing so while the reader is paused, as for a
 * paused `Readable` (frames that arrive then wait here). The end of the stream, errors and
 * frames that came before the handler opened the reader take Deno's own path. Without that
 * handle shape (another Deno, Node) only this part is skipped.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import process from "node:process";
import type { RequestStream } from "../internals/grpc_js_server_call.ts";
import {
  type StreamHandle,
  streamInternalsOf,
} from "../internals/deno_http2_session.ts";
import { tapOf } from "./frame_tap.ts";
import type { Deframer } from "./request_deframer.ts";
import { ServerStream } from "./http2/server_stream.ts";

/**
 * The most request bytes a paused reader holds from the frame tap: far above the 64 KiB stream
 * window the server grants, so only a peer that ignores flow control reaches it.
 */
const TAPPED_HOLD_LIMIT = 4 * 1024 * 1024;

/** The handle path of one stream. */
export interface DirectRead {
  /** Frames taken from the handle so far. */
  readonly frames: number;
  /**
   * Restarts the native read, acknowledges what it had held back and hands over the frames
   * that arrived while paused.
   */
  resume(): void;
  /** Whether frames are still held, so the end must wait for them (it then comes after). */
  holdsEnd(): boolean;
}

/**
 * Takes a Deno `node:http2` stream's DATA frames from its native handle while the `Readable`
 * is idle (and from the session's frame tap when it has one), or does nothing and returns
 * `undefined` when the stream lacks that shape (`internals/deno_http2_session.ts`).
 *
 * @param stream The call's HTTP/2 stream.
 * @param reader Where the frames go, and whether the reader is paused.
 * @returns The handle path, or `undefined`.
 */
export function readFromHandle(
  stream: RequestStream,
  { deframer, paused }: { deframer: Deframer; paused: () => boolean },
): DirectRead | undefined {
  // The own HTTP/2 hands DATA over straight from the socket's read: nothing to take.
  if (stream instanceof ServerStream) return undefined;
  const found = streamInternalsOf(stream);
  const fields = stream as RequestStream & {
    readonly readableLength?: unknown;
    readonly session?: unknown;
    readonly id?: unknown;
  };
  if (found === undefined || typeof fields.readableLength !== "number") {
    return undefined;
  }
  const internals = found;
  const { handle, onread: original } = internals;
  const sendPending = internals.sendPending;
  const readStart = handle.readStart.bind(handle);
  const state = { frames: 0, acknowledging: false };
  // Deno consumes each frame's bytes from the stream's window as it arrives (while the native
  // read is on), and the session sends the WINDOW_UPDATE that may queue right after the
  // socket read that carried the frames. Only a restart outside a socket read sends its own.
  function acknowledge(): void {
    state.acknowledging = false;
    if (!stream.destroyed) sendPending();
  }
  // Frames that arrive while the reader is paused wait here, as the Readable would hold them;
  // the native read is stopped meanwhile, so the stream's window bounds them.
  const held: (Uint8Array | undefined)[] = [];
  let next = 0;
  let heldBytes = 0;
  let endHeld = false;
  function handOver(): void {
    while (next < held.length && !paused() && !stream.destroyed) {
      const frame = held[next]!;
      held[next++] = undefined;
      heldBytes -= frame.length;
      deframer.write(frame);
    }
    if (next < held.length && !stream.destroyed) return;
    held.length = 0;
    next = 0;
    if (endHeld) {
      endHeld = false;
      if (!stream.destroyed) deframer.end();
    }
  }
  function take(frame: Uint8Array, borrowed: boolean): void {
    internals.updateTimer();
    state.frames += 1;
    if (paused() || next < held.length) {
      // A borrowed frame lies in the socket read's buffer, which is only lent for the call.
      held.push(borrowed ? frame.slice() : frame);
      heldBytes += frame.length;
    } else deframer.write(frame);
  }
  /** Whether the session's frame tap has taken this stream's frames (see `frame_tap.ts`). */
  let tapped = false;
  function onread(
    this: StreamHandle,
    bytes: Uint8Array | undefined,
    length?: number,
  ): unknown {
    if (typeof length === "number" && length > 0 && tapped) {
      // The tap has handed this frame over already, before nghttp2 read it.
      return undefined;
    }
    if (
      typeof length === "number" && length > 0 && bytes !== undefined &&
      bytes.length >= length && !stream.destroyed &&
      fields.readableLength === 0
    ) {
      take(bytes.length === length ? bytes : bytes.subarray(0, length), false);
      return undefined;
    }
    return original.call(this, bytes, length);
  }
  handle.onread = onread;
  const tap = tapOf(fields.session);
  const streamId = fields.id;
  if (tap !== undefined && typeof streamId === "number") {
    const untap = tap.add(streamId, {
      ready(): boolean {
        if (stream.destroyed || fields.readableLength !== 0) return false;
        tapped = true;
        // Not a function: Deno then skips the frame's buffer and call (see `frame_tap.ts`).
        handle.onread = null;
        return true;
      },
      data(bytes: Uint8Array): void {
        if (stream.destroyed) return;
        if (handle.onread !== null) {
          // Something else took the handle's onread back: the frames go its way, once.
          untap();
          return;
        }
        if (heldBytes + bytes.length > TAPPED_HOLD_LIMIT) {
          // More than any window this server grants while the reader waits: the peer ignores
          // flow control (nghttp2 resets the stream too). The call ends rather than lose data.
          untap();
          handle.onread = onread;
          deframer.abort(
            grpc.status.RESOURCE_EXHAUSTED,
            `Client sent more than ${TAPPED_HOLD_LIMIT} bytes past flow control`,
          );
          return;
        }
        try {
          take(bytes, true);
        } catch (cause) {
          // The socket's listener must not throw: Deno's own, after it, feeds nghttp2.
          untap();
          handle.onread = onread;
          deframer.abort(
            grpc.status.INTERNAL,
            `Failed to read the request: ${
              cause instanceof Error ? cause.message : cause
            }`,
          );
        }
      },
      released(): void {
        handle.onread = onread;
      },
    });
    stream.on("close", untap);
  }
  return {
    get frames(): number {
      return state.frames;
    },
    resume(): void {
      if (stream.destroyed) return;
      // Frames read from the handle never went through the Readable, so it may still think a
      // read is under way and not restart the native read: restart it here.
      readStart();
      if (!state.acknowledging) {
        state.acknowledging = true;
        process.nextTick(acknowledge);
      }
      handOver();
    },
    holdsEnd(): boolean {
      if (next >= held.length) return false;
      endHeld = true;
      return true;
    },
  };
}
