/**
 * Keeps a client's GOAWAY from aborting the server's process under Deno.
 *
 * When a GOAWAY arrives on a session with no open streams, Deno's `node:http2` (2.9.6)
 * emits `goaway` and then closes the session at once, from inside nghttp2's handling of that
 * frame: the nghttp2 session is freed while nghttp2 is still walking its streams, and the
 * process dies on an assertion (`find_stream_on_goaway_func`) or a segfault
 * (denoland/deno#36788). Any client that closes its connection politely (grpc-js, Go) could
 * bring a server down this way. Deferring that close to the next turn of the event loop lets
 * nghttp2 finish with the frame first; the session still closes, a moment later.
 *
 * @module
 */
import type http2 from "node:http2";
import { setImmediate } from "node:timers";

type Closable = http2.Http2Session & {
  close: http2.Http2Session["close"];
  destroy: http2.Http2Session["destroy"];
};

function deferCloseAfterGoaway(session: http2.Http2Session): void {
  session.on("goaway", () => {
    const target = session as Closable;
    const { close, destroy } = target;
    function restore(): void {
      target.close = close;
      target.destroy = destroy;
    }
    target.close = function deferredClose(
      ...args: Parameters<typeof close>
    ): void {
      restore();
      setImmediate(() => {
        if (!session.closed && !session.destroyed) close.apply(session, args);
      });
    };
    target.destroy = function deferredDestroy(
      ...args: Parameters<typeof destroy>
    ): void {
      restore();
      setImmediate(() => {
        if (!session.destroyed) destroy.apply(session, args);
      });
    };
  });
}

/**
 * Guards every HTTP/2 session of a grpc-js server bound so far.
 *
 * @param server A grpc-js server, after `bindAsync` has succeeded.
 * @returns Whether grpc-js exposed its HTTP/2 servers (it keeps them in a private map).
 */
export function guardSessions(server: object): boolean {
  const http2Servers = (server as { http2Servers?: unknown }).http2Servers;
  if (!(http2Servers instanceof Map)) return false;
  for (const http2Server of http2Servers.keys()) {
    const emitter = http2Server as http2.Http2Server & {
      __goawayGuarded?: boolean;
    };
    if (emitter.__goawayGuarded) continue;
    emitter.__goawayGuarded = true;
    emitter.on("session", deferCloseAfterGoaway);
  }
  return true;
}
