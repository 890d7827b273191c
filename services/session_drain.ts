/**
 * The graceful end of a server's HTTP/2 connections, so that a shutdown loses no call that a
 * client or a proxy has already sent.
 *
 * `Http2Session.close()` sends a single GOAWAY whose last-stream-id is the last stream the
 * server has seen. A request already on its way has a higher id: the server ignores it, and
 * the peer, told that it was never processed, must retry it. nginx does not (it never retries
 * a gRPC request it has begun to send; it logs `upstream sent goaway with error 0 while reading
 * response header`), and it sends requests on reused connections at any moment.
 *
 * RFC 9113 §6.8 (and grpc-go, and Envoy) first send a GOAWAY with last-stream-id 2^31-1 and a
 * PING, then the real GOAWAY once the PING is answered. Deno's `node:http2` has no such
 * first GOAWAY: `session.goaway(NO_ERROR, 2 ** 31 - 1)` makes nghttp2 ignore every stream that
 * opens afterwards (it marks the GOAWAY as sent whatever its last-stream-id), and the native
 * shutdown notice (`submitShutdownNotice` on the session's handle) also starts Deno's graceful
 * close, which answers every new stream with `REFUSED_STREAM`. So the final GOAWAY is sent
 * only when it cannot cut off a request: at once on a session with a stream still being
 * answered, or as soon as a new stream opens (the GOAWAY then reaches the peer before that
 * stream's end, so a proxy that sends one request at a time on a connection, as nginx does,
 * will not reuse it), and otherwise after PING round trips that brought no new stream (nginx
 * answers a PING on a connection it is using, and closes an idle connection that a PING
 * reaches), or after a longest wait for a peer that does neither.
 * Once Deno offers a first GOAWAY that keeps accepting streams (as nghttp2's shutdown notice
 * does without Deno's graceful close), it should be sent before the PINGs.
 *
 * @module
 */
import type http2 from "node:http2";
import { setImmediate } from "node:timers";
import { sessionStreams } from "../internals/deno_http2_session.ts";
import { http2ServersOf } from "../internals/grpc_js_server.ts";
import { acceptQueuedBeforeClose } from "./accept_queue.ts";

type Session = http2.Http2Session;

/**
 * How many PING answers in a row with no new stream make a peer idle. One is not enough: a
 * proxy answers from inside the request it is finishing, and may reuse the connection for the
 * next request before the final GOAWAY reaches it.
 */
const QUIET_ACKS = 3;

/**
 * The longest a drained connection's end waits for the peer to answer our SETTINGS or a PING.
 * nginx answers at once; a peer that never does loses nothing by the wait but time.
 */
const OWED_ANSWER_WAIT_MS = 1_000;

/** Sessions being drained, so that a session is only drained once. */
const draining = new WeakSet<Session>();

/** Whether a stream of `session` has yet to send the end of its answer. */
function answering(session: Session): boolean {
  const streams = sessionStreams(session);
  if (streams === undefined) return false;
  for (const stream of streams) {
    if (!stream.writableEnded && !stream.destroyed) return true;
  }
  return false;
}

/**
 * Holds back `close()` of `session`, whoever calls it, until the final GOAWAY cannot refuse a
 * request the peer has sent: at once if a stream is still being answered or a new one opens
 * and is not yet answered, otherwise once
 * `QUIET_ACKS` PING round trips in a row have brought no new stream, or after `ackWaitMs` at
 * most.
 */
function drainSession(
  session: Session,
  { ackWaitMs, listenersClosed }: {
    ackWaitMs: number;
    listenersClosed: Promise<void>;
  },
): void {
  if (draining.has(session) || session.closed || session.destroyed) return;
  draining.add(session);
  const close = session.close;
  let ready = false;
  let closeWanted = false;
  let opened = 0;
  // No final GOAWAY while the listener is still open: the peer would open a new connection in
  // place of this one, and it could be caught in the accept queue at the close. Once it has
  // closed, the probe decides afresh (a stream answered then may be over by now).
  let listening = true;
  let waitedLongest = false;
  listenersClosed.then(() => {
    listening = false;
    if (waitedLongest) proceed();
  });

  function proceed(): void {
    if (ready || listening) return;
    ready = true;
    clearTimeout(timer);
    session.off("stream", onStream);
    if (closeWanted && !session.closed && !session.destroyed) {
      close.call(session);
    }
  }
  function onStream(): void {
    opened++;
    // A new stream is the moment the final GOAWAY is safe: the peer is waiting for its
    // answer, so it learns of the GOAWAY before it can reuse the connection. Waiting for the
    // next PING answer instead can miss it: a quick call is over by then, and a proxy kept
    // busy by many calls is rarely caught in one, until the longest wait cuts it off.
    setImmediate(() => {
      if (!ready && answering(session)) proceed();
    });
  }
  let quietAcks = 0;
  /** PINGs sent and not yet answered (or failed). */
  let pingsOut = 0;
  /** What runs once the peer owes no answer: a held end of the connection. */
  let onAnswered: (() => void) | undefined;
  function probe(): void {
    if (ready) return;
    if (answering(session)) {
      proceed();
      return;
    }
    const before = opened;
    try {
      // The answer comes from inside nghttp2's handling of the frame, where closing an idle
      // session frees it under nghttp2's feet and the process dies (exit 139, the crash of
      // denoland/deno#36788): the next turn is safe, until that issue is fixed.
      session.ping((error) =>
        setImmediate(() => {
          pingsOut -= 1;
          onAnswer();
          quietAcks = opened === before ? quietAcks + 1 : 0;
          if (error !== null || quietAcks >= QUIET_ACKS) proceed();
          else probe();
        })
      );
      pingsOut += 1;
    } catch {
      // The session ended in between; `close` has nothing to wait for.
      proceed();
    }
  }

  // A connection's last call can be answered and the connection ended before the peer has
  // answered our SETTINGS (a connection accepted as the listener closes) or a drain PING (one
  // that crossed the call's request). nginx holds a response as unfinished while it still owes
  // such an answer, so when the end of the connection reaches it first it fails a call that was
  // answered in full ("upstream prematurely closed connection while sending to client",
  // NGHTTP2_INTERNAL_ERROR to its client). So the graceful end of the connection (Deno's
  // `destroy()` with no error once the last stream is done) waits until the peer owes nothing,
  // `OWED_ANSWER_WAIT_MS` at most.
  function owesAnswer(): boolean {
    return pingsOut > 0 || session.pendingSettingsAck;
  }
  function onAnswer(): void {
    if (!owesAnswer()) onAnswered?.();
  }
  // The event comes from inside nghttp2's handling of the frame: the next turn is safe (the
  // crash of denoland/deno#36788, as for the PINGs above).
  function onSettingsAnswer(): void {
    setImmediate(onAnswer);
  }
  session.on("localSettings", onSettingsAnswer);
  const destroy = session.destroy;
  session.destroy = function destroyOnceAnswered(
    error?: Error,
    code?: number,
  ): void {
    if (error != null || (code ?? 0) !== 0 || !owesAnswer()) {
      destroy.call(session, error, code);
      return;
    }
    if (onAnswered === undefined) {
      const wait = setTimeout(() => onAnswered?.(), OWED_ANSWER_WAIT_MS);
      onAnswered = () => {
        onAnswered = () => {};
        clearTimeout(wait);
        session.off("localSettings", onSettingsAnswer);
        if (!session.destroyed) destroy.call(session);
      };
    }
  } as typeof session.destroy;

  // An own property, so that grpc-js, `Http2Server.close()` and Deno's reaction to a received
  // GOAWAY all reach it; once ready it passes straight through.
  session.close = function closeWhenSafe(callback?: () => void): void {
    if (ready) {
      close.call(session, callback);
      return;
    }
    if (typeof callback === "function") session.once("close", callback);
    closeWanted = true;
  };
  session.once("close", proceed);
  session.on("stream", onStream);
  const timer = setTimeout(() => {
    waitedLongest = true;
    proceed();
  }, ackWaitMs);
  // Once the listeners have closed: a proxy closes the idle connections the PING reaches and
  // opens new ones, which must be refused (and retried elsewhere), not caught in the accept
  // queue of a listener about to close.
  listenersClosed.then(() => setImmediate(probe));
}

/** What {@linkcode drainSessions} returns: a way to stop watching for new sessions. */
export interface SessionDrain {
  /** Stops draining sessions that open from now on (those already draining go on). */
  stop(): void;
  /** Settles once the server's listeners have closed, the connections queued before taken. */
  readonly listenersClosed: Promise<void>;
}

/**
 * Starts the graceful end of every HTTP/2 session of a grpc-js server, and of every session
 * that opens while the drain lasts (a connection accepted just before the listener closed).
 * Call it just before `tryShutdown()`, whose `close()` of each session then sends the final
 * GOAWAY only once that cannot cut off a request.
 *
 * @param server A grpc-js server (its HTTP/2 servers are in a private map).
 * @param ackWaitMs The longest wait for PING answers before the final GOAWAY.
 * @returns A handle to stop watching for new sessions.
 */
export function drainSessions(server: object, ackWaitMs: number): SessionDrain {
  const entries = http2ServersOf(server);
  if (entries === undefined) {
    return { stop() {}, listenersClosed: Promise.resolve() };
  }
  // The wrappers go on first: grpc-js closes the listeners as its shutdown begins.
  const listenersClosed = Promise.all(
    entries.map(({ server }) => acceptQueuedBeforeClose(server)),
  ).then(() => {});
  function onSession(session: Session): void {
    // grpc-js closes only the sessions that were open when its shutdown began.
    drainSession(session, { ackWaitMs, listenersClosed });
    session.close();
  }
  for (const { server, sessions } of entries) {
    for (const session of sessions) {
      drainSession(session, { ackWaitMs, listenersClosed });
    }
    server.on("session", onSession);
  }
  return {
    stop(): void {
      for (const { server } of entries) server.off("session", onSession);
    },
    listenersClosed,
  };
}
