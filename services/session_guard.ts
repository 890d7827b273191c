/**
 * What the server does to every HTTP/2 session grpc-js opens, beyond what grpc-js does, as
 * each session opens (grpc-js's HTTP/2 servers are reached through
 * `internals/grpc_js_server.ts`):
 *
 * - Keeps a client's GOAWAY from aborting the server's process under Deno: the close that
 *   follows a GOAWAY is deferred (see `internals/deno_goaway_close.ts` for why). Without it, any
 *   client that closes its connection politely could bring the server down.
 * - Limits the HTTP/2 handshake's time (`handshake_timeout.ts`).
 * - Retires a connection gracefully before nghttp2's rapid-reset limit ends it
 *   (`reset_budget.ts`), and takes the resets of answered calls from nghttp2
 *   (`honest_resets.ts`).
 * - Sends what a connection answers to one socket read in as few socket writes as it can
 *   (`write_coalescing.ts`).
 * - Reads the request DATA frames of `Sum` and `Sqrt` calls from the connection's bytes before
 *   nghttp2 does (`frame_tap.ts`), which spares Deno's per-frame work, and takes the resets
 *   above from the same bytes.
 * - For a server that logs calls, reports the `Pow` and unary `Sqrt` calls that end before
 *   grpc-js runs their handler (`call_starts.ts`): no handler is there to log them.
 *
 * @module
 */
import type http2 from "node:http2";
import { deferCloseAfterGoaway } from "../internals/deno_goaway_close.ts";
import { http2ServersOf } from "../internals/grpc_js_server.ts";
import { tapSession } from "./frame_tap.ts";
import { coalesceWrites } from "./write_coalescing.ts";
import { answeredResets } from "./honest_resets.ts";
import { limitHandshake } from "./handshake_timeout.ts";
import { budgetResets } from "./reset_budget.ts";
import type { ServerProbe } from "./_testing.ts";
import {
  type UnstartedCallReporter,
  watchUnstartedCalls,
} from "./call_starts.ts";

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
  /**
   * Counts what the sessions' frame taps and reset filters do, for tests.
   *
   * @default {undefined}
   */
  probe?: ServerProbe | undefined;
}

/** The HTTP/2 servers already guarded, since each bind adds one and guards them all. */
const guarded = new WeakSet<http2.Http2Server>();

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
  const { unstartedCall, probe } = options;
  for (const { server: http2Server } of http2Servers) {
    if (guarded.has(http2Server)) continue;
    guarded.add(http2Server);
    http2Server.on("session", (session: http2.ServerHttp2Session) => {
      deferCloseAfterGoaway(session);
      coalesceWrites(session);
      limitHandshake(session, handshakeTimeout);
      budgetResets(session);
      tapSession(session, { resets: answeredResets(session, probe), probe });
      if (unstartedCall !== undefined) {
        watchUnstartedCalls(session, unstartedCall);
      }
    });
  }
  return true;
}
