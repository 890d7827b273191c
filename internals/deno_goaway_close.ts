/**
 * What both sides must do to an HTTP/2 session under Deno, beyond the gRPC wire format.
 *
 * When a GOAWAY arrives on a session with no open streams, Deno's `node:http2`
 * emits `goaway` and then closes the session at once, from inside nghttp2's handling of that
 * frame: the nghttp2 session is freed while nghttp2 is still walking its streams, and the
 * process dies on an assertion (`find_stream_on_goaway_func`) or a segfault
 * (denoland/deno#36788). A server meets it when a polite client (grpc-js, Go) closes its
 * connection; a client meets it when a server shuts down gracefully. Deferring that close to
 * the next turn of the event loop lets nghttp2 finish with the frame first; the session still
 * closes, a moment later. Remove it (with `clients/grpc_js_goaway.ts`) once
 * denoland/deno#36788 is fixed in the oldest Deno the module supports;
 * `tests/services/resilience_test.ts` ("survives a server that shuts down while the connection
 * idles") covers it.
 *
 * @module
 */
import type http2 from "node:http2";
import { setImmediate } from "node:timers";

type Closable = http2.Http2Session & {
  close: http2.Http2Session["close"];
  destroy: http2.Http2Session["destroy"];
};

/**
 * Makes the close or destroy that follows a received GOAWAY on `session` happen on the next
 * turn of the event loop instead of inside nghttp2's handling of the frame.
 *
 * @param session A client or server HTTP/2 session.
 */
export function deferCloseAfterGoaway(session: http2.Http2Session): void {
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
