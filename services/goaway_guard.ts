/**
 * What the server does to every HTTP/2 session grpc-js opens, beyond what grpc-js does:
 *
 * - Keeps a client's GOAWAY from aborting the server's process under Deno: the close that
 *   follows a GOAWAY is deferred (see `internals/deno_goaway_close.ts` for why). Without it, any
 *   client that closes its connection politely could bring the server down.
 * - Closes a connection that has not finished the HTTP/2 handshake (the client's preface and
 *   SETTINGS) within the handshake timeout, so half-open connections cannot pile up.
 * - Keeps nghttp2's protection against "rapid reset" (CVE-2023-44487) from ending a connection
 *   whose client cancels calls at an honest rate. nghttp2 (1.68, inside Deno's `node:http2`)
 *   lets a client reset a burst of 1,000 streams and then 33 a second, and past that sends
 *   `GOAWAY INTERNAL_ERROR`, failing every call on the connection; Deno 2.9.6 drops the
 *   `streamResetBurst`/`streamResetRate` options that would raise it. The resets of calls the
 *   server has already answered are taken away from nghttp2 (`honest_resets.ts`): they add no
 *   work a complete call would not, so they need no limit. The other resets (before any
 *   answer, as in the attack) still count; the guard counts them with nghttp2's token bucket,
 *   and once fewer than {@linkcode RESET_RESERVE} are left it sends `GOAWAY NO_ERROR` with the
 *   last stream it took: calls in flight finish, the client opens a new connection for new
 *   calls, and nghttp2 stops counting once a GOAWAY is out. A burst faster than the guard can
 *   react (the attack) still meets nghttp2's own cut.
 * - Reads the request DATA frames of `Sum` and `Sqrt` calls from the connection's bytes before
 *   nghttp2 does (`frame_tap.ts`), which spares Deno's per-frame work, and takes the resets
 *   above from the same bytes.
 * - For a server that logs calls, reports the `Pow` and unary `Sqrt` calls that end before
 *   grpc-js runs their handler (`call_starts.ts`): no handler is there to log them.
 *
 * @module
 */
import http2 from "node:http2";
import { setImmediate } from "node:timers";
import { deferCloseAfterGoaway } from "../internals/deno_goaway_close.ts";
import { http2ServersOf } from "../internals/grpc_js_server.ts";
import { tapSession } from "./frame_tap.ts";
import { answeredResets, resetTaken } from "./honest_resets.ts";
import {
  type UnstartedCallReporter,
  watchUnstartedCalls,
} from "./call_starts.ts";

/** nghttp2's default burst of stream resets a connection may send at once. */
const RESET_BURST = 1_000;
/** nghttp2's default number of stream resets a second it adds back to the burst. */
const RESET_RATE = 33;
/** How many resets of nghttp2's budget the guard leaves unused when it retires a connection. */
const RESET_RESERVE = 250;

/** How the guard treats each session. */
export interface GuardOptions {
  /**
   * How long a connection may take to send the HTTP/2 preface and its SETTINGS, in
   * milliseconds, before it is closed; 0 waits forever.
   *
   * @default {10_000}
   */
  handshakeTimeout?: number;
  /**
   * Told of each `Pow` and unary `Sqrt` call that ended before grpc-js ran its handler (see
   * `call_starts.ts`), for the server's log; `undefined` watches no call.
   *
   * @default {undefined}
   */
  unstartedCall?: UnstartedCallReporter | undefined;
}

/** The HTTP/2 servers already guarded, since each bind adds one and guards them all. */
const guarded = new WeakSet<http2.Http2Server>();

/**
 * Closes `session` unless the client's SETTINGS arrive within `timeout` ms. The timer is held
 * only until the handshake or the session ends, so it never keeps a process alive.
 */
function limitHandshake(session: http2.Http2Session, timeout: number): void {
  if (timeout === 0) return;
  const timer = setTimeout(() => {
    if (!session.destroyed) session.destroy();
  }, timeout);
  const done = (): void => {
    clearTimeout(timer);
    session.off("remoteSettings", done);
    session.off("close", done);
  };
  session.once("remoteSettings", done);
  session.once("close", done);
}

/**
 * Counts the streams `session` sees reset, with nghttp2's token bucket, and retires the
 * session with a graceful GOAWAY before the bucket runs dry. Resets the server sent itself
 * count too: nghttp2 does not count those, so the guard only errs on the early side. Resets
 * taken from nghttp2 (`honest_resets.ts`) do not.
 */
function budgetResets(session: http2.Http2Session): void {
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

/**
 * Guards every HTTP/2 session of a grpc-js server bound so far.
 *
 * @param server A grpc-js server, after `bindAsync` has succeeded.
 * @param options The handshake timeout, and where to report calls that never started.
 * @returns Whether grpc-js exposed its HTTP/2 servers (it keeps them in a private map).
 */
export function guardSessions(
  server: object,
  options: GuardOptions = {},
): boolean {
  // Left on by GRPC_STREAM_FAST_PATHS=off: this reach is the only door to the sessions for
  // workarounds with no public fallback (the GOAWAY close, the handshake timeout, the reset
  // budget); the fast path behind it, the frame tap, turns off on its own.
  const http2Servers = http2ServersOf(server);
  if (http2Servers === undefined) return false;
  const handshakeTimeout = options.handshakeTimeout ?? 10_000;
  const { unstartedCall } = options;
  for (const { server: http2Server } of http2Servers) {
    if (guarded.has(http2Server)) continue;
    guarded.add(http2Server);
    http2Server.on("session", (session: http2.ServerHttp2Session) => {
      deferCloseAfterGoaway(session);
      limitHandshake(session, handshakeTimeout);
      budgetResets(session);
      tapSession(session, { resets: answeredResets(session) });
      if (unstartedCall !== undefined) {
        watchUnstartedCalls(session, unstartedCall);
      }
    });
  }
  return true;
}
