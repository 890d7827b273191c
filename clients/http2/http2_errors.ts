/**
 * The errors the client's own HTTP/2 gives its streams and its channel, with the codes and
 * words of `node:http2`'s where the channel reads them (`ERR_HTTP2_STREAM_ERROR`,
 * `ERR_HTTP2_SESSION_ERROR`), so a status reads the same on both.
 *
 * @module
 */
import { ErrorCode } from "../../proto/http2/frames.ts";

/** An error with `node:http2`'s `code`. */
export type Http2Error = Error & { code: string };

/** Names of the error codes, as nghttp2 names them. */
const CODE_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(ErrorCode).map(([name, code]) => [code, `NGHTTP2_${name}`]),
);

function codeName(code: number): string {
  return CODE_NAMES.get(code) ?? String(code);
}

function http2Error(message: string, code: string): Http2Error {
  return Object.assign(new Error(message), { code });
}

/**
 * A stream reset with `code`, by either side.
 *
 * @param code The reset's HTTP/2 error code.
 * @returns The error.
 */
export function streamError(code: number): Http2Error {
  return http2Error(
    `Stream closed with error code ${codeName(code)}`,
    "ERR_HTTP2_STREAM_ERROR",
  );
}

/**
 * A connection the server ended with a GOAWAY carrying an error.
 *
 * @param code The GOAWAY's HTTP/2 error code.
 * @returns The error.
 */
export function sessionError(code: number): Http2Error {
  return http2Error(
    `Session closed with error code ${codeName(code)}`,
    "ERR_HTTP2_SESSION_ERROR",
  );
}

/**
 * A connection this side ended because the server broke the protocol.
 *
 * @param failure The GOAWAY's code, and what the server did.
 * @returns The error.
 */
export function protocolError(
  failure: { code: number; reason: string },
): Http2Error {
  return http2Error(
    `Server broke the HTTP/2 protocol (${
      codeName(failure.code)
    }): ${failure.reason}`,
    "ERR_HTTP2_ERROR",
  );
}

/**
 * A new stream asked of a connection that takes none.
 *
 * @param closed Whether the connection is over, rather than going away.
 * @returns The error.
 */
export function noNewStreams(closed: boolean): Http2Error {
  return closed
    ? http2Error("The connection is closed", "ERR_HTTP2_INVALID_SESSION")
    : http2Error(
      "The connection takes no new streams",
      "ERR_HTTP2_GOAWAY_SESSION",
    );
}
