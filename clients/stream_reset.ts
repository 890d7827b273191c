/**
 * How a client resets a stream it has given up on, for both transports: the default one's
 * calls (`channel.ts`) and the grpc-js transport's (`grpc_js_cancel.ts`). Under Deno 2.9 a
 * reset must neither half-close first, nor go out while the server still floods the stream,
 * nor go out before the stream's HEADERS (see {@linkcode resetWhenQuiet}).
 *
 * @module
 */
import http2 from "node:http2";
import { addAbortSignal } from "node:stream";
import { headersUnsent, localWindow } from "../internals/deno_http2_stream.ts";
import type { CallStream } from "./http2_surface.ts";
import { onNodeHttp2 } from "./http2/client_stream.ts";

const { NGHTTP2_CANCEL } = http2.constants;

/**
 * A cancelled stream waits, paused, for its server to use up what is left of the stream's
 * flow-control window, or to stop sending, before it is reset; see
 * {@linkcode resetWhenQuiet}.
 */
const RESET_CHECK_MS = 10;
/** A remainder of the window small enough to reset at once: a few frames at most. */
const RESET_WINDOW_BYTES = 64;
/** The longest a reset waits for the window to be used up. */
const RESET_WAIT_MS = 1_000;
/**
 * How long a cancelled stream whose server has not answered at all waits for an answer
 * already on its way before it is reset: such a server is reading the request (a `Sum`
 * server waiting for its next number), so it should hear of the cancel at once.
 */
const RESET_UNANSWERED_MS = 30;

/** Options for {@linkcode resetWhenQuiet}. */
export interface ResetOptions {
  /**
   * Whether the server has begun its answer (headers or data arrived): only a stream whose
   * server has not is reset within {@linkcode RESET_UNANSWERED_MS}.
   *
   * @default {true}
   */
  answered?: boolean | undefined;
  /** Called once the stream has been reset or has closed. */
  settled?: (() => void) | undefined;
}

/**
 * Resets `stream` with `RST_STREAM(CANCEL)` and nothing before it. `stream.close(CANCEL)` in
 * The pinned Deno's `node:http2` ends the writable side first, so a server reading a request
 * stream (`Sum`, `Sqrt`) gets an empty DATA frame with END_STREAM, takes it as the end of the
 * request and answers in full; the reset that follows comes too late. Destroying the stream
 * with Node's `AbortError` (which `addAbortSignal` does) takes the path that submits the
 * reset first (denoland/deno#33633). Remove once `close(NGHTTP2_CANCEL)` resets first.
 */
function cancelStream(stream: http2.ClientHttp2Stream): void {
  if (stream.closed || stream.destroyed) return;
  const controller = new AbortController();
  addAbortSignal(controller.signal, stream);
  controller.abort();
}

/**
 * Resets a stream this side has given up on (`RST_STREAM(CANCEL)`) once its server has
 * stopped sending, so the connection survives a server that goes on sending after a cancel.
 *
 * A server sends the DATA frames it had in flight after the reset, as RFC 9113 allows, and
 * grpc-go sends each message in a frame of its own. The nghttp2 inside Deno 2.9 (1.68.0)
 * counts every frame for a stream it no longer has as a "glitch" and ends the whole
 * connection with `GOAWAY(ENHANCE_YOUR_CALM)` when they come too fast (nghttp2/nghttp2#2597;
 * nghttp2 1.69.0 stopped counting them, so this can go once Deno ships it). The pinned Deno's
 * nghttp2 allows a burst of only 1,000 such frames, then 33 a second. The stream is
 * paused instead, so its flow-control window is no longer replenished, and reset once the
 * server has used up the window (nothing can follow the reset then), or after a second at
 * most (a server that sent that little in a second sends little after the reset too). A
 * server that has not answered at all and has not had the whole request is reading it and
 * sends nothing, so its stream is reset after {@linkcode RESET_UNANSWERED_MS} (if no answer
 * turns up meanwhile):
 * a `Sum` server hears of the cancel within tens of milliseconds. (A window that stops
 * moving does not show that the server stopped: the pinned Deno often stops reading a paused
 * stream's data, so its window stands still while the server's frames queue up unread.)
 * The caller has its status at once; only the server hears of the cancel later. The reset
 * goes out first, with no END_STREAM before it (see `cancelStream`).
 *
 * @param stream The stream; the call on it has already reported its status.
 * @param options Whether the server has answered, and what to call once the stream is reset.
 * @returns A function that resets the stream at once, if it has not been already.
 */
export function resetWhenQuiet(
  stream: CallStream,
  options: ResetOptions = {},
): () => void {
  const { settled } = options;
  if (stream.closed || stream.destroyed) {
    settled?.();
    return () => {};
  }
  if (!onNodeHttp2(stream)) {
    // The own HTTP/2 resets at once: it drops what the stream queued, and takes what the
    // server sends after the reset without counting it against the connection.
    stream.close(NGHTTP2_CANCEL);
    settled?.();
    return () => {};
  }
  stream.pause();
  const started = Date.now();
  let answered = options.answered ?? true;
  // A server with the whole request (a `Pow`) answers whatever it has heard, and may flood
  // the window after the reset if it is reset before its answer arrives (seen on a busy
  // machine): only a server still reading a request is quiet until it ends.
  const requestSent = stream.writableEnded;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let done = false;
  const onResponse = (): void => {
    answered = true;
  };
  const reset = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    stream.off("close", reset);
    stream.off("response", onResponse);
    cancelStream(stream);
    settled?.();
  };
  const check = (): void => {
    if (headersUnsent(stream)) {
      timer = setTimeout(check, RESET_CHECK_MS);
      return;
    }
    const window = localWindow(stream);
    const waited = Date.now() - started;
    if (
      (window !== undefined && window <= RESET_WINDOW_BYTES) ||
      (!answered && !requestSent && waited >= RESET_UNANSWERED_MS) ||
      waited >= RESET_WAIT_MS
    ) {
      reset();
      return;
    }
    timer = setTimeout(check, RESET_CHECK_MS);
  };
  const window = localWindow(stream);
  if (
    !headersUnsent(stream) && window !== undefined &&
    window <= RESET_WINDOW_BYTES
  ) {
    reset();
    return reset;
  }
  stream.once("close", reset);
  stream.on("response", onResponse);
  timer = setTimeout(check, RESET_CHECK_MS);
  return reset;
}
