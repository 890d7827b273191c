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
import { missedFastPath, usedFastPath } from "./fast_paths.ts";

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
