/**
 * What the server reads of a grpc-js server beyond its public API: the HTTP/2 servers it keeps
 * in a private map (`Server.http2Servers`, one per bound port), each with the sessions it has
 * open. It is the only door to the HTTP/2 sessions: the session guard (the deferred close after
 * a GOAWAY, the handshake timeout, the reset budget, the frame tap) and the graceful drain both
 * go through it. The guard's workarounds have no public fallback, so this view stays on with
 * `GRPC_STREAM_FAST_PATHS=off`; without the map (another grpc-js) it says so once, and the
 * server serves without them.
 *
 * @module
 */
import type http2 from "node:http2";
import { fastPathsOn, missedFastPath, usedFastPath } from "./fast_paths.ts";

/** One HTTP/2 server of a grpc-js server, as the view reads it. */
export interface Http2ServerView {
  /** The `node:http2` server listening on one bound port. */
  readonly server: http2.Http2Server;
  /** The sessions grpc-js has open on it now (a live set). */
  readonly sessions: Iterable<http2.Http2Session>;
}

/**
 * The HTTP/2 servers of a grpc-js server bound so far.
 *
 * @param server A grpc-js server, after `bindAsync` has succeeded.
 * @returns One view per bound port, or `undefined` (said once) when grpc-js keeps them
 * elsewhere.
 */
export function http2ServersOf(server: object): Http2ServerView[] | undefined {
  const http2Servers = (server as { http2Servers?: unknown }).http2Servers;
  if (!(http2Servers instanceof Map)) {
    missedFastPath("session guard", "grpc-js server.http2Servers");
    return undefined;
  }
  usedFastPath("session guard");
  const views: Http2ServerView[] = [];
  for (const [http2Server, info] of http2Servers as Map<unknown, unknown>) {
    const sessions = (info as { sessions?: unknown } | undefined)?.sessions;
    views.push({
      server: http2Server as http2.Http2Server,
      sessions: sessions instanceof Set
        ? sessions as Set<http2.Http2Session>
        : [],
    });
  }
  return views;
}

/** What grpc-js does with each new HTTP/2 stream, and what the lean path keeps of it. */
export interface StreamListener {
  /**
   * grpc-js's idle-timeout bookkeeping for a stream that grpc-js will not see
   * (`Server.onStreamOpened`): counts it open until it closes.
   */
  opened(stream: http2.ServerHttp2Stream): void;
}

/** Decides who answers a new stream: `true` when it has taken the stream. */
export type StreamTaker = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
) => boolean;

/** The names grpc-js's `'stream'` listener has: a bound `_streamHandler` or `_channelzHandler`. */
const GRPC_JS_STREAM_LISTENERS = new Set([
  "bound _streamHandler",
  "bound _channelzHandler",
]);

/**
 * Puts `take` before grpc-js's `'stream'` listener on one of a grpc-js server's HTTP/2
 * servers: every new stream goes to `take` first, and to grpc-js when `take` leaves it.
 * grpc-js 1.14 adds one listener per HTTP/2 server in `_setupHandlers`
 * (`http2Server.on('stream', handler.bind(this, extraInterceptors))`); it is replaced in
 * place by one that calls it for the streams `take` leaves.
 *
 * @param server The grpc-js server, for its idle-timeout bookkeeping.
 * @param where One of its HTTP/2 servers ({@linkcode http2ServersOf}), and `take`, told of
 * every new stream first.
 * @returns What `take` must do for each stream it takes, or `undefined` (said once) when
 * grpc-js's listener or its bookkeeping is not found, or the fast paths are off: then every
 * stream goes to grpc-js as before.
 */
export function takeStreamsBefore(
  server: object,
  { http2Server, take }: { http2Server: http2.Http2Server; take: StreamTaker },
): StreamListener | undefined {
  if (!fastPathsOn()) return undefined;
  const listeners = http2Server.listeners("stream") as ((
    ...args: unknown[]
  ) => void)[];
  const opened = (server as { onStreamOpened?: unknown }).onStreamOpened;
  const grpcJs = listeners.find((listener) =>
    GRPC_JS_STREAM_LISTENERS.has(listener.name)
  );
  if (grpcJs === undefined || typeof opened !== "function") {
    missedFastPath(
      "lean calls",
      "grpc-js's 'stream' listener or server.onStreamOpened",
    );
    return undefined;
  }
  usedFastPath("lean calls");
  const answer = grpcJs;
  function dispatch(
    this: unknown,
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    ...rest: unknown[]
  ): void {
    if (!take(stream, headers)) answer.call(this, stream, headers, ...rest);
  }
  // In grpc-js's place among the listeners, so any added after it still run after.
  const after = listeners.slice(listeners.indexOf(grpcJs) + 1);
  http2Server.off("stream", answer);
  for (const listener of after) http2Server.off("stream", listener);
  http2Server.on("stream", dispatch);
  for (const listener of after) http2Server.on("stream", listener);
  return {
    opened(stream: http2.ServerHttp2Stream): void {
      (opened as (stream: unknown) => void).call(server, stream);
    },
  };
}
