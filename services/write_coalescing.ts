/**
 * Sends what a connection answers to one socket read in as few socket writes as it can.
 *
 * Deno's `node:http2` hands every frame nghttp2 produces to the socket as a write of its own
 * (its `sendPending` loops over `getOutgoingChunk()` and `socket.write`s each), and each write
 * is a `send` system call at once. A short call's answer is three frames (HEADERS, DATA and the
 * trailers), so a server answering a hundred calls read in one go made three hundred system
 * calls, and in a profile of a bare `node:http2` server answering short calls, `send` took 42%
 * of the process's time. Corking the socket when a read arrives and uncorking it once the turn's
 * work is done (after the immediates queued so far) lets the frames of every call answered in
 * that time leave in one `writev`. The answers do not all come in that turn: a `Sum`'s starts
 * once its request stream has ended, a turn or two later, and Deno sends each call's trailers
 * in an immediate that it queues once the socket has taken the call's DATA. So the socket is
 * held again, two turns at a time, for as long as each hold gathered something (a few rounds
 * at most): twenty calls read together are answered in two writes, where they took sixty.
 *
 * Only public API is used (`session.socket`, `cork()`, `uncork()`); the socket's own `end()`,
 * through which Deno closes a session, uncorks first, so nothing written before a close is
 * held back by it. Writes that happen later (a long `Pow`, answers that wait for the client's
 * window) are not corked: they follow no read.
 *
 * @module
 */
import type http2 from "node:http2";
import type { Socket } from "node:net";
import { setImmediate } from "node:timers";

/** How many times one read's answers are held and sent, at most. */
const MAX_ROUNDS = 4;

/**
 * Holds a session's writes from the start of each socket read until the immediates queued in
 * that turn have run, then sends them together.
 *
 * @param session A server session, as it opens.
 */
export function coalesceWrites(session: http2.ServerHttp2Session): void {
  /** Which round of holding the socket is in; 0 when it is not held. */
  let round = 0;
  function release(socket: Socket): void {
    if (socket.destroyed || socket.writableCorked === 0) {
      round = 0;
      return;
    }
    const gathered = socket.writableLength > 0;
    socket.uncork();
    if ((!gathered && round > 1) || round >= MAX_ROUNDS) {
      round = 0;
      return;
    }
    round++;
    socket.cork();
    setImmediate(() => setImmediate(release, socket));
  }
  // `session.socket` is a proxy that throws once the session lets its socket go, which can
  // come between a read and its release: the listener works on the socket itself, its `this`.
  session.socket.prependListener("data", function (this: Socket) {
    if (round !== 0) return;
    round = 1;
    this.cork();
    setImmediate(release, this);
  });
}
