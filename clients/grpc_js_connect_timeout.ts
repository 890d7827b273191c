/**
 * A connect timeout for grpc-js 1.14.7's client, on the channels of the grpc-js transport.
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
 * Remove it if grpc-js gets a connect timeout of its own (none as of 1.14.7);
 * `tests/clients/connect_timeout_test.ts` fails without it.
 *
 * @module
 */
import type http2 from "node:http2";
import transportModule from "@grpc/grpc-js/build/src/transport.js";
import grpcJsPackage from "@grpc/grpc-js/package.json" with { type: "json" };

/** The channel option that sets the connect timeout of a channel's attempts, in ms. */
export const CONNECT_TIMEOUT_OPTION = "grpc-stream.connect_timeout_ms";

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

let installed = false;

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
 * @throws {Error} If the grpc-js in use is not 1.14.7 or lacks `connect`.
 */
export function limitGrpcJsConnectTime(): void {
  if (installed) return;
  const prototype = transportModule.Http2SubchannelConnector
    .prototype as unknown as { connect: Connect; tcpConnect: TcpConnect };
  const { connect, tcpConnect } = prototype;
  if (
    grpcJsPackage.version !== "1.14.7" || typeof connect !== "function" ||
    typeof tcpConnect !== "function"
  ) {
    throw new Error(
      `The connect timeout for grpc-js was written for grpc-js 1.14.7, not ${grpcJsPackage.version}: check whether it is still needed`,
    );
  }
  installed = true;
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
