/**
 * Which of a client's stream resets nghttp2 may count against its rapid-reset limit, and which
 * the server takes itself.
 *
 * nghttp2 (1.68, inside Deno's `node:http2`) ends a server connection with
 * `GOAWAY INTERNAL_ERROR` once the peer has sent more RST_STREAM frames than a token bucket
 * holds: a burst of 1,000, refilled at 33 a second (`session_update_stream_reset_ratelim` in
 * `lib/nghttp2_session.c`, drained by every RST_STREAM received until the server has submitted
 * a GOAWAY). That protects against "rapid reset" (CVE-2023-44487), where a client opens streams
 * and resets each at once, so the server starts handler after handler while
 * `MAX_CONCURRENT_STREAMS` never binds. But it counts an honest client too: one that leaves
 * calls after their first answers (a `break` out of a `for await`, a UI dropping stale
 * queries) resets every one of them, and at 100 a second was cut after about 15 s. Node lets a
 * server raise the bucket (`streamResetBurst`, `streamResetRate`); Deno's polyfill writes
 * those options into its options buffer but its native session never passes them to nghttp2
 * (`Http2Options::new` in ext/node/ops/http2/session.rs), so they change nothing.
 *
 * The server therefore bounds work, as grpc-go and Go's net/http do (grpc/grpc-go#6703),
 * rather than counting every reset. A reset of a call the server has already answered (its
 * response headers are out) cost the server no more than a call that ran to its end: the call
 * held one of the connection's `MAX_CONCURRENT_STREAMS` slots until its handler had run and
 * answered, so such resets cannot make the server do more than the concurrency limit allows,
 * and need no limit of their own. The frame tap (`frame_tap.ts`) takes those RST_STREAM frames
 * away from nghttp2 before it reads them, and the server ends the stream itself with
 * RST_STREAM(CANCEL), which nghttp2 does not count. The peer has already closed the stream on
 * its side and ignores that frame (RFC 9113 §5.1); nghttp2 reads a WINDOW_UPDATE of 1 for a
 * stream it closed earlier, which it ignores too. Resets of streams already closed are taken
 * the same way (see {@linkcode answeredResets}).
 *
 * Every other reset reaches nghttp2 as sent and counts: a stream reset before the server
 * answered, as in the attack, or one whose frame straddles two socket reads. A flood of
 * HEADERS+RST_STREAM is still cut at nghttp2's 1,000, and `reset_budget.ts` still retires a
 * connection gracefully before a slower stream of such resets reaches nghttp2's line.
 *
 * @module
 */
import http2 from "node:http2";
import { setImmediate } from "node:timers";
import type { ResetFilter } from "./frame_tap.ts";
import type { ServerProbe } from "./_testing.ts";

/** Streams the filter ended itself: their close is not a reset nghttp2 counted. */
const takenStreams = new WeakSet<http2.ServerHttp2Stream>();

/**
 * Whether the server ended `stream` itself for a reset it took from nghttp2.
 *
 * @param stream A server stream.
 * @returns `true` for a stream whose peer's reset nghttp2 never saw.
 */
export function resetTaken(stream: http2.ServerHttp2Stream): boolean {
  return takenStreams.has(stream);
}

/**
 * The reset filter of one server session: takes the resets of streams the server has answered,
 * and of streams already closed.
 *
 * A reset of a closed stream adds no work at all, but nghttp2 counts it too. Clients send them:
 * a reset crosses the server's last replies or its own reset, and some clients (Python's `h2`)
 * answer each DATA frame that arrives on a stream they have reset with another reset
 * (`STREAM_CLOSED`), a dozen or more for one cancelled call whose window was wide open.
 *
 * @param session A new server session, before its first stream.
 * @param probe Counts the resets taken, for tests.
 * @returns The filter to give the session's frame tap.
 */
export function answeredResets(
  session: http2.ServerHttp2Session,
  probe?: ServerProbe,
): ResetFilter {
  const open = new Map<number, http2.ServerHttp2Stream>();
  /** The highest stream id the session has opened: lower ids not open are closed. */
  let highest = 0;
  /**
   * A stream nghttp2 has closed and freed, for a taken frame to become a WINDOW_UPDATE on:
   * one whose reset went to nghttp2 earlier in the connection's bytes, or one closed at least
   * a full turn of the event loop ago (the server's own reset of it is out by then).
   */
  let freed = 0;
  /** Streams closed since the last turn, and those closed the turn before. */
  let closedNow = 0;
  let closedBefore = 0;
  let settling = false;
  function settle(): void {
    settling = false;
    freed = Math.max(freed, closedBefore);
    closedBefore = closedNow;
    closedNow = 0;
    if (closedBefore !== 0) schedule();
  }
  function schedule(): void {
    if (settling) return;
    settling = true;
    setImmediate(settle);
  }
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    const id = stream.id;
    if (id === undefined) return;
    open.set(id, stream);
    if (id > highest) highest = id;
    stream.once("close", () => {
      open.delete(id);
      if (id > closedNow) closedNow = id;
      schedule();
    });
  });
  return {
    take(streamId: number): number {
      const stream = open.get(streamId);
      // An id above the highest may be a stream whose HEADERS are in this very read, which
      // nghttp2 has not opened yet: the attack's pattern, left to nghttp2.
      const harmless = stream === undefined
        ? streamId <= highest
        : stream.headersSent || stream.closed || stream.destroyed;
      if (harmless && freed !== 0) return freed;
      // Left to nghttp2, which closes the stream as it reads the frame: any frame after it in
      // the connection's bytes may name it.
      freed = streamId;
      return 0;
    },
    taken(streamId: number): void {
      const stream = open.get(streamId);
      probe?.resetTaken();
      // Closed already, or ended meanwhile (its last reply went out before the reset's end
      // arrived): nothing to end.
      if (stream === undefined || stream.closed || stream.destroyed) return;
      takenStreams.add(stream);
      stream.close(http2.constants.NGHTTP2_CANCEL);
    },
  };
}
