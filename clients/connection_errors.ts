/**
 * Why the default transport could not reach a server, in plain words: which connection
 * errors mean `UNAVAILABLE`, and how far an attempt got before its connect timeout.
 *
 * @module
 */

/** The error codes of a refused, lost or failed connection. */
const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_HTTP2_INVALID_SESSION",
  "ERR_GRPC_KEEPALIVE_TIMEOUT",
  "ERR_GRPC_CONNECT_TIMEOUT",
]);

/**
 * Says in plain words why a connection failed, for a call's details after
 * `Cannot reach HOST:PORT: `. Node's words for a request made while the connection was being
 * set up ("The pending stream has been canceled (caused by: connect ECONNREFUSED …)") give
 * way to their cause.
 *
 * @param error The connection's or the stream's error.
 * @returns The words.
 */
export function describeConnectionError(
  error: Error & { code?: string; cause?: unknown },
): string {
  if (
    error.code === "ERR_HTTP2_STREAM_CANCEL" && error.cause instanceof Error
  ) {
    return describeConnectionError(error.cause);
  }
  switch (error.code) {
    case "ECONNREFUSED":
      return "Connection refused";
    case "ECONNRESET":
      // Not this module's own words ("Connection closed by the server").
      return /ECONNRESET|^(read|write) /.test(error.message)
        ? "Connection reset by the server"
        : error.message;
    case "ETIMEDOUT":
      return "Connection timed out";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "No route to the host";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "Host name not found";
    default:
      return error.message;
  }
}

/**
 * Whether `error` means the server could not be reached: a refused or lost connection, or a
 * TLS handshake that failed (`ERR_SSL_*` and `ERR_TLS_*`, e.g. an untrusted certificate, or a
 * client certificate the server requires and did not get), which gRPC reports as
 * `UNAVAILABLE`.
 *
 * @param error The connection's or the stream's error.
 * @returns Whether the call ends `UNAVAILABLE` for it.
 */
export function isConnectionError(error: Error & { code?: string }): boolean {
  const code = error.code ?? "";
  return CONNECTION_ERROR_CODES.has(code) || code.startsWith("ERR_SSL_") ||
    code.startsWith("ERR_TLS_");
}

/** The phases of a connection attempt, for the words of a connect timeout. */
export type AttemptPhase = "tcp" | "tls" | "settings";

/**
 * Says how far a connection attempt got before its connect timeout ran out.
 *
 * @param phase What the attempt was waiting for.
 * @param timeoutMs The connect timeout.
 * @returns The words, for a call's details after `Cannot reach HOST:PORT: `.
 */
export function describeConnectTimeout(
  phase: AttemptPhase,
  timeoutMs: number,
): string {
  switch (phase) {
    case "tcp":
      return `No TCP connection within ${timeoutMs} ms (connect timeout)`;
    case "tls":
      return `Server did not complete the TLS handshake within ${timeoutMs} ms (connect timeout; TCP connected)`;
    case "settings":
      return `Server did not complete the HTTP/2 handshake within ${timeoutMs} ms (connect timeout; TCP connected, no SETTINGS frame from the server)`;
  }
}
