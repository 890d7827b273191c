/**
 * What the grpc-js transport reads and wraps of the pinned grpc-js's
 * `Http2SubchannelConnector` (private in grpc-js), which makes the HTTP/2 sessions of
 * grpc-js's client: two wraps of its prototype, each applied only to the connections of
 * channels that set its option. As with `grpc_js_subchannel_call.ts`, each refuses to apply
 * on any grpc-js but `PINNED_GRPC_JS_VERSION` or when a method it wraps is gone,
 * and both are workarounds that `GRPC_STREAM_FAST_PATHS=off` leaves on.
 *
 * ## The GOAWAY guard ({@linkcode guardGrpcJsSessions})
 *
 * The Deno GOAWAY guard of `internals/deno_goaway_close.ts` (denoland/deno#36788), for the HTTP/2
 * sessions of the pinned grpc-js's client, on the channels of the grpc-js transport.
 *
 * grpc-js answers a GOAWAY by shutting its transport down from inside the `goaway` event
 * (`Http2Transport`'s listener reports the disconnect, the subchannel goes idle and calls
 * `session.close()`), and the pinned Deno closes the session again once the listeners have run:
 * either close frees the nghttp2 session while nghttp2 still handles the frame. So, unlike
 * `internals/deno_goaway_close.ts`, which defers the one close Deno makes, this guard defers every
 * close and destroy until the next turn of the event loop. grpc-js creates its sessions
 * itself and drops every listener set before the handshake, so the guard goes on once
 * `createSession` has made the transport, in front of grpc-js's own listener. Only sessions
 * of channels that set {@linkcode GOAWAY_GUARD_OPTION} are touched.
 *
 * Remove it with the guard of `internals/deno_goaway_close.ts`, once denoland/deno#36788 is
 * fixed in the oldest Deno the module supports; `tests/services/resilience_test.ts` ("survives a
 * server that shuts down while the connection idles", on both transports) covers it.
 *
 * ## A connect timeout ({@linkcode limitGrpcJsConnectTime})
 *
 * A connect timeout for the pinned grpc-js's client, on the channels of the grpc-js transport.
 *
 * grpc-js has none: `Http2SubchannelConnector.connect` waits for the TCP connection, the TLS
 * handshake and the server's first SETTINGS frame without a time limit, so a peer that
 * accepts the connection and says nothing (a hung process, the wrong port) keeps the
 * subchannel CONNECTING, and grpc-js queues every call on it until its deadline, or for
 * ever. grpc-go and C-core give each attempt 20 s (gRPC's minimum connect timeout).
 *
 * Here `connect` is wrapped: an attempt that has not made its transport within
 * {@linkcode CONNECT_TIMEOUT_OPTION} milliseconds is rejected, as grpc-js rejects a failed
 * one, so the subchannel goes to TRANSIENT_FAILURE, its calls fail with `UNAVAILABLE` (unless
 * they wait for ready) and the next attempt follows grpc-js's backoff. The session being set
 * up is destroyed; an attempt still in its TCP or TLS phase is left to finish and its
 * transport, if it ever comes, is shut down. `tcpConnect` is wrapped too, only to say how
 * far a timed-out attempt got.
 *
 * Remove it if grpc-js gets a connect timeout of its own (none as of the pinned version);
 * `tests/clients/connect_timeout_test.ts` fails without it.
 *
 * @module
 */
import type http2 from "node:http2";
import transportModule from "./npm/grpc_js_transport.ts";
import { setImmediate } from "node:timers";
import { requirePinnedGrpcJs } from "./versions.ts";

/** The channel option that turns the GOAWAY guard on for a channel's sessions. */
export const GOAWAY_GUARD_OPTION = "grpc-stream.goaway_guard";

/** The channel option that sets the connect timeout of a channel's attempts, in ms. */
export const CONNECT_TIMEOUT_OPTION = "grpc-stream.connect_timeout_ms";

type CreateSession = (
  this: unknown,
  secureConnectResult: unknown,
  address: unknown,
  options: Record<string, unknown>,
) => Promise<{ session?: http2.Http2Session }>;

/** What the wraps replace of `Http2SubchannelConnector`. */
interface ConnectorPrototype {
  createSession: CreateSession;
  connect: Connect;
  tcpConnect: TcpConnect;
}

/** grpc-js's `Http2SubchannelConnector.prototype`, as the wraps see it. */
function connectorPrototype(): ConnectorPrototype {
  return transportModule.Http2SubchannelConnector
    .prototype as unknown as ConnectorPrototype;
}

let guardInstalled = false;

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
 * @throws {Error} If the grpc-js in use is not `PINNED_GRPC_JS_VERSION` or lacks
 * `createSession`.
 */
export function guardGrpcJsSessions(): void {
  if (guardInstalled) return;
  requirePinnedGrpcJs("The GOAWAY guard for grpc-js");
  const prototype = connectorPrototype();
  const createSession = prototype.createSession;
  if (typeof createSession !== "function") {
    throw new Error(
      "grpc-js's Http2SubchannelConnector has no createSession: the GOAWAY guard for grpc-js needs a look",
    );
  }
  guardInstalled = true;
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

interface ConnectorInternals {
  /** The session of the attempt under way, set once TCP (and TLS) connected. */
  session?: http2.ClientHttp2Session | null;
}

type TcpConnect = (
  this: object,
  address: unknown,
  options: unknown,
) => Promise<unknown>;

type Connect = (
  this: ConnectorInternals & object,
  address: unknown,
  secureConnector: unknown,
  options: Record<string, unknown>,
) => Promise<{ shutdown(): void }>;

let timeoutInstalled = false;

/** Connectors whose attempt under way has its TCP connection, for a timeout's words. */
const tcpConnected = new WeakSet<object>();

/** What a timed-out attempt had got to, in a connect timeout's words. */
function describeTimeout(
  connector: ConnectorInternals & object,
  timeoutMs: number,
): string {
  const session = connector.session;
  if (session !== null && session !== undefined) {
    return `Server did not complete the HTTP/2 handshake within ${timeoutMs} ms (connect timeout; TCP connected, no SETTINGS frame from the server)`;
  }
  return tcpConnected.has(connector)
    ? `Server did not complete the TLS handshake within ${timeoutMs} ms (connect timeout; TCP connected)`
    : `No TCP connection within ${timeoutMs} ms (connect timeout)`;
}

/**
 * Wraps grpc-js's `Http2SubchannelConnector.connect` once, so that channels that set
 * {@linkcode CONNECT_TIMEOUT_OPTION} give up on an attempt after that many milliseconds.
 *
 * @throws {Error} If the grpc-js in use is not `PINNED_GRPC_JS_VERSION` or lacks
 * `connect`.
 */
export function limitGrpcJsConnectTime(): void {
  if (timeoutInstalled) return;
  requirePinnedGrpcJs("The connect timeout for grpc-js");
  const prototype = connectorPrototype();
  const { connect, tcpConnect } = prototype;
  if (typeof connect !== "function" || typeof tcpConnect !== "function") {
    throw new Error(
      "grpc-js's Http2SubchannelConnector has no connect or tcpConnect: the connect timeout for grpc-js needs a look",
    );
  }
  timeoutInstalled = true;
  prototype.tcpConnect = function (address, options) {
    const connected = tcpConnect.call(this, address, options);
    connected.then(() => tcpConnected.add(this), () => {});
    return connected;
  };
  // deno-lint-ignore grpc-stream/max-required-params -- replaces grpc-js's own method
  prototype.connect = function (address, secureConnector, options) {
    tcpConnected.delete(this);
    const attempt = connect.call(this, address, secureConnector, options);
    const timeoutMs = options?.[CONNECT_TIMEOUT_OPTION];
    if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs)) {
      return attempt;
    }
    return new Promise((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        // grpc-js's own failures read as text with the time they happened.
        reject(
          `${describeTimeout(this, timeoutMs)} (${new Date().toISOString()})`,
        );
        this.session?.destroy();
      }, timeoutMs);
      attempt.then(
        (transport) => {
          clearTimeout(timer);
          if (timedOut) transport.shutdown();
          else resolve(transport);
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (!timedOut) reject(error);
        },
      );
    });
  };
}
