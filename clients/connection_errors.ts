/**
 * Why a client could not reach a server, in plain words: which connection errors mean
 * `UNAVAILABLE`, how far an attempt got before its connect timeout, what the server's first
 * bytes say it speaks when it is no HTTP/2 server, and which `--allow-net` a call lacks.
 *
 * @module
 */
import { parseAddress } from "./address.ts";

/** The code of an error made from a server's first bytes: it speaks TLS, or no HTTP/2. */
const WRONG_PROTOCOL = "ERR_GRPC_WRONG_PROTOCOL";

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
  WRONG_PROTOCOL,
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
    case "ERR_SSL_WRONG_VERSION_NUMBER":
      return PLAINTEXT_SERVER;
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
      // A TLS client reading a plaintext server's first bytes as a TLS record: OpenSSL says
      // "wrong version number", Deno's rustls "InvalidContentType".
      return /\b(?:wrong version number|InvalidContentType)\b/i.test(
          error.message,
        )
        ? PLAINTEXT_SERVER
        : error.message;
  }
}

/** The words for a TLS client that met a plaintext server. */
const PLAINTEXT_SERVER =
  "Server does not speak TLS: call it without the tls option (without --tls and --ca on the command line)";

/** How much of a server's first bytes {@linkcode describeServerBytes} looks at. */
export const FIRST_BYTES_LIMIT = 64;

/**
 * Says what a server speaks that is not HTTP/2, from the first bytes it sent a client that
 * opened with the HTTP/2 preface: a TLS record (an alert, or a handshake) means a TLS server
 * met in plaintext; `HTTP/1.` an HTTP/1 server; anything but a SETTINGS frame no HTTP/2.
 *
 * @param bytes The first bytes the server sent (at most {@linkcode FIRST_BYTES_LIMIT} count).
 * @returns The words, for a call's details after `Cannot reach HOST:PORT: `, or `undefined`
 *   when the bytes may be HTTP/2 or are too few to tell.
 */
export function describeServerBytes(bytes: Uint8Array): string | undefined {
  if (bytes.length < 2) return undefined;
  // A TLS record: content type alert (21) or handshake (22), then version 3.x. As an HTTP/2
  // frame header it would announce a frame over a megabyte, which no server sends first.
  if ((bytes[0] === 0x15 || bytes[0] === 0x16) && bytes[1] === 0x03) {
    return "Server speaks TLS: call it with the tls option (--tls or --ca on the command line)";
  }
  const text = new TextDecoder("latin1").decode(
    bytes.subarray(0, FIRST_BYTES_LIMIT),
  );
  if (text.startsWith("HTTP/1.")) {
    const line = text.split("\r\n")[0]!;
    return `Server does not speak HTTP/2: it answered in HTTP/1 (${line})`;
  }
  // Every HTTP/2 server opens with a SETTINGS frame: type 4 in the header's fourth byte.
  if (bytes.length >= 4 && bytes[3] !== 0x04) {
    const shown = /^[\x20-\x7e]{4,}/.exec(text)?.[0] ??
      Array.from(
        bytes.subarray(0, 8),
        (byte) => byte.toString(16).padStart(2, "0"),
      ).join(" ");
    return `Server does not speak HTTP/2: its first bytes are no SETTINGS frame (${shown})`;
  }
  return undefined;
}

/**
 * An error for a connection attempt whose server's first bytes show it speaks no HTTP/2 (see
 * {@linkcode describeServerBytes}), counted as a connection error.
 *
 * @param bytes The first bytes the server sent.
 * @returns The error, or `undefined` when the bytes do not tell.
 */
export function wrongProtocolError(
  bytes: Uint8Array,
): (Error & { code: string }) | undefined {
  const words = describeServerBytes(bytes);
  return words === undefined
    ? undefined
    : Object.assign(new Error(words), { code: WRONG_PROTOCOL });
}

/**
 * The error of a call to a server outside `--allow-net`, worded as `startServer` words its
 * own: `Requires net access to HOST:PORT: run again with --allow-net=HOST`. Deno's own words
 * ("run again with the --allow-net flag") do not name the host, and a host name refused
 * shows only as a failed lookup (`getaddrinfo EPERM`).
 *
 * @param authority The server's `host:port` or `[v6]:port`.
 * @param cause The connection's error, when there is one.
 * @returns The error, or `undefined` when Deno grants access to `authority` (or it is no
 *   `host:port`).
 */
export function missingNetPermission(
  authority: string,
  cause?: unknown,
): Deno.errors.NotCapable | undefined {
  let hostname: string;
  try {
    ({ hostname } = parseAddress(authority));
  } catch {
    return undefined;
  }
  const { state } = Deno.permissions.querySync({
    name: "net",
    host: authority,
  });
  if (state === "granted") return undefined;
  const flag = hostname.includes(":") ? `[${hostname}]` : hostname;
  return new Deno.errors.NotCapable(
    `Requires net access to ${authority}: run again with --allow-net=${flag}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Whether `error` is a refusal of net access by Deno: its `NotCapable`, or the `EPERM` of a
 * host name it may not look up.
 *
 * @param error The connection's error.
 * @returns Whether to ask Deno which permission the call lacks.
 */
export function mayLackNetPermission(
  error: Error & { code?: string },
): boolean {
  return error instanceof Deno.errors.NotCapable || error.code === "EPERM";
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
  return error instanceof Deno.errors.NotCapable ||
    CONNECTION_ERROR_CODES.has(code) || code.startsWith("ERR_SSL_") ||
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
