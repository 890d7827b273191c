/**
 * Keeps nghttp2's protection against "rapid reset" (CVE-2023-44487) from ending a connection
 * whose client cancels calls at an honest rate. nghttp2 (1.68, inside Deno's `node:http2`)
 * lets a client reset a burst of 1,000 streams and then 33 a second, and past that sends
 * `GOAWAY INTERNAL_ERROR`, failing every call on the connection; Deno drops the
 * `streamResetBurst`/`streamResetRate` options that would raise it. The resets of calls the
 * server has already answered are taken away from nghttp2 (`honest_resets.ts`): they add no
 * work a complete call would not, so they need no limit. The other resets (before any answer,
 * as in the attack) still count; the budget counts them with nghttp2's token bucket, and once
 * fewer than {@linkcode RESET_RESERVE} are left it sends `GOAWAY NO_ERROR` with the last
 * stream it took: calls in flight finish, the client opens a new connection for new calls,
 * and nghttp2 stops counting once a GOAWAY is out. A burst faster than the budget can react
 * (the attack) still meets nghttp2's own cut.
 *
 * @module
 */
import http2 from "node:http2";
import { setImmediate } from "node:timers";
import { resetTaken } from "./honest_resets.ts";

/** nghttp2's default burst of stream resets a connection may send at once. */
const RESET_BURST = 1_000;
/** nghttp2's default number of stream resets a second it adds back to the burst. */
const RESET_RATE = 33;
/** How many resets of nghttp2's budget the budget leaves unused when it retires a connection. */
const RESET_RESERVE = 250;

/**
 * Counts the streams `session` sees reset, with nghttp2's token bucket, and retires the
 * session with a graceful GOAWAY before the bucket runs dry. Resets the server sent itself
 * count too: nghttp2 does not count those, so the budget only errs on the early side. Resets
 * taken from nghttp2 (`honest_resets.ts`) do not.
 *
 * @param session A new server session, before its first stream.
 */
export function budgetResets(session: http2.Http2Session): void {
  let tokens = RESET_BURST;
  let second = Math.floor(performance.now() / 1000);
  let retiring = false;
  function retire(): void {
    // After the current frames are handled: submitting a GOAWAY from inside nghttp2's
    // handling of a frame is what `deferCloseAfterGoaway` exists to avoid.
    setImmediate(() => {
      if (!session.closed && !session.destroyed) session.close();
    });
  }
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    stream.once("close", () => {
      if (
        retiring || stream.rstCode === http2.constants.NGHTTP2_NO_ERROR ||
        resetTaken(stream)
      ) {
        return;
      }
      const now = Math.floor(performance.now() / 1000);
      tokens = Math.min(RESET_BURST, tokens + (now - second) * RESET_RATE);
      second = now;
      tokens -= 1;
      if (tokens < RESET_RESERVE) {
        retiring = true;
        retire();
      }
    });
  });
}
