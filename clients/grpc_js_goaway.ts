/**
 * The Deno GOAWAY guard of `workarounds/deno_goaway_close.ts` (denoland/deno#36788), for the HTTP/2
 * sessions of grpc-js 1.14.7's client, on the channels of the grpc-js transport.
 *
 * grpc-js answers a GOAWAY by shutting its transport down from inside the `goaway` event
 * (`Http2Transport`'s listener reports the disconnect, the subchannel goes idle and calls
 * `session.close()`), and Deno 2.9.6 closes the session again once the listeners have run:
 * either close frees the nghttp2 session while nghttp2 still handles the frame. So, unlike
 * `workarounds/deno_goaway_close.ts`, which defers the one close Deno makes, this guard defers every
 * close and destroy until the next turn of the event loop. grpc-js creates its sessions
 * itself and drops every listener set before the handshake, so the guard goes on once
 * `createSession` has made the transport, in front of grpc-js's own listener. Only sessions
 * of channels that set {@linkcode GOAWAY_GUARD_OPTION} are touched.
 *
 * Remove it with the guard of `workarounds/deno_goaway_close.ts`, once denoland/deno#36788 is
 * fixed in the oldest Deno the module supports; `tests/services/resilience_test.ts` ("survives a
 * server that shuts down while the connection idles", on both transports) covers it.
 *
 * @module
 */
import type http2 from "node:http2";
import transportModule from "@grpc/grpc-js/build/src/transport.js";
import grpcJsPackage from "@grpc/grpc-js/package.json" with { type: "json" };
import { setImmediate } from "node:timers";

/** The channel option that turns the guard on for a channel's sessions. */
export const GOAWAY_GUARD_OPTION = "grpc-stream.goaway_guard";

type CreateSession = (
  this: unknown,
  secureConnectResult: unknown,
  address: unknown,
  options: Record<string, unknown>,
) => Promise<{ session?: http2.Http2Session }>;

let installed = false;

/** Defers every close and destroy of `session` that a GOAWAY brings, to the next turn. */
function deferClosesAfterGoaway(session: http2.Http2Session): void {
  session.prependListener("goaway", () => {
    const { close, destroy } = session;
    session.close = function deferredClose(callback?: () => void): void {
      if (typeof callback === "function") session.once("close", callback);
      setImmediate(() => {
        if (!session.closed && !session.destroyed) close.call(session);
      });
    };
    session.destroy = function deferredDestroy(
      ...args: Parameters<typeof destroy>
    ): void {
      setImmediate(() => {
        if (!session.destroyed) destroy.apply(session, args);
      });
    };
    setImmediate(() => {
      session.close = close;
      session.destroy = destroy;
    });
  });
}

/**
 * Wraps grpc-js's `Http2SubchannelConnector.createSession` once, so that the sessions of
 * channels that set {@linkcode GOAWAY_GUARD_OPTION} to `1` defer a close that follows a
 * GOAWAY.
 *
 * @throws {Error} If the grpc-js in use is not 1.14.7 or lacks `createSession`.
 */
export function guardGrpcJsSessions(): void {
  if (installed) return;
  const prototype = transportModule.Http2SubchannelConnector
    .prototype as unknown as { createSession: CreateSession };
  const createSession = prototype.createSession;
  if (
    grpcJsPackage.version !== "1.14.7" || typeof createSession !== "function"
  ) {
    throw new Error(
      `The GOAWAY guard for grpc-js was written for grpc-js 1.14.7, not ${grpcJsPackage.version}: check whether it is still needed`,
    );
  }
  installed = true;
  // deno-lint-ignore grpc-stream/max-required-params -- replaces grpc-js's own method
  prototype.createSession = function (secureConnectResult, address, options) {
    const created = createSession.call(
      this,
      secureConnectResult,
      address,
      options,
    );
    if (options?.[GOAWAY_GUARD_OPTION] !== 1) return created;
    return created.then((transport) => {
      if (transport.session !== undefined) {
        deferClosesAfterGoaway(transport.session);
      }
      return transport;
    });
  };
}
