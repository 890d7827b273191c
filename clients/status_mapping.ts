/**
 * How the default transport reads how a call ended: the `grpc-status` of trailers (or of a
 * trailers-only response), the HTTP status of a response that is not gRPC, and the reset
 * code of a stream that closed with neither. The mappings are tables of data, as gRPC
 * documents them (doc/http-grpc-status-mapping.md, doc/PROTOCOL-HTTP2.md), in the manner
 * of grpc-go's `http_util.go`.
 *
 * @module
 */
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import { type ResponseMetadata, Status, type Trailers } from "./grpc_error.ts";
import type { CallStatus } from "./transport.ts";
import {
  describeConnectionError,
  isConnectionError,
} from "./connection_errors.ts";

const {
  HTTP2_HEADER_STATUS,
  HTTP2_HEADER_CONTENT_TYPE,
  NGHTTP2_CANCEL,
  NGHTTP2_REFUSED_STREAM,
  NGHTTP2_ENHANCE_YOUR_CALM,
  NGHTTP2_INADEQUATE_SECURITY,
} = http2.constants;

/** The gRPC status of a response that is not gRPC, by its HTTP status; others are `UNKNOWN`. */
const STATUS_BY_HTTP_STATUS: ReadonlyMap<number, Status> = new Map([
  [400, Status.INTERNAL],
  [401, Status.UNAUTHENTICATED],
  [403, Status.PERMISSION_DENIED],
  [404, Status.UNIMPLEMENTED],
  [429, Status.UNAVAILABLE],
  [502, Status.UNAVAILABLE],
  [503, Status.UNAVAILABLE],
  [504, Status.UNAVAILABLE],
]);

/**
 * The status of a stream the server reset with no gRPC status, by reset code, for the codes
 * that say more than how the connection fared.
 */
const STATUS_BY_RESET: ReadonlyMap<number, { code: Status; details: string }> =
  new Map([
    [NGHTTP2_REFUSED_STREAM, {
      code: Status.UNAVAILABLE,
      details: "Stream refused by the server",
    }],
    [NGHTTP2_ENHANCE_YOUR_CALM, {
      code: Status.RESOURCE_EXHAUSTED,
      details: "Server reported too much load (ENHANCE_YOUR_CALM)",
    }],
    [NGHTTP2_INADEQUATE_SECURITY, {
      code: Status.PERMISSION_DENIED,
      details: "Connection not secure enough",
    }],
  ]);

/** The status of a stream reset with `CANCEL`, once the connection is not to blame. */
const CANCELLED_BY_SERVER: { code: Status; details: string } = {
  code: Status.CANCELLED,
  details: "Call cancelled by the server",
};

/** The gRPC status a response that is not gRPC stands for. */
function statusFromHttp(httpStatus: number): Status {
  return STATUS_BY_HTTP_STATUS.get(httpStatus) ?? Status.UNKNOWN;
}

function decodeDetails(value: unknown): string {
  if (typeof value !== "string") return "";
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Keys that carry the status; they are reported as the status, not as trailers. */
const STATUS_KEYS: ReadonlySet<string> = new Set([
  "grpc-status",
  "grpc-message",
]);

/**
 * Keys of response headers the transport reads for itself, left out of the headers the caller
 * sees, as grpc-js leaves them out (its compression filter takes the encodings).
 */
const TRANSPORT_HEADER_KEYS: ReadonlySet<string> = new Set([
  ...STATUS_KEYS,
  "grpc-encoding",
  "grpc-accept-encoding",
]);

/**
 * The caller's view of response metadata. Text values are kept whole, commas and all (an
 * HTTP/2 peer joins repeated fields with ", ", so they cannot be told apart); only `-bin`
 * values, whose base64 has no commas, are split, as grpc-js does. Base64 with or without
 * padding is accepted.
 *
 * @param headers Response headers or trailers.
 * @param skipped The keys left out besides pseudo-headers.
 * @returns The metadata.
 */
function toMetadata(
  headers: http2.IncomingHttpHeaders,
  skipped: ReadonlySet<string>,
): ResponseMetadata {
  const trailers: ResponseMetadata = {};
  for (const [key, value] of Object.entries(headers)) {
    if (key.startsWith(":") || value === undefined || skipped.has(key)) {
      continue;
    }
    const values = Array.isArray(value) ? value : [String(value)];
    trailers[key] = key.endsWith("-bin")
      ? values.flatMap((item) => item.split(",")).map((item) =>
        new Uint8Array(Buffer.from(item.trim(), "base64"))
      )
      : values;
  }
  return trailers;
}

/** Trailers as the caller sees them: without pseudo-headers and the status's own keys. */
function toTrailers(headers: http2.IncomingHttpHeaders): Trailers {
  return toMetadata(headers, STATUS_KEYS);
}

/**
 * Response headers as the caller sees them, for a call's `onHeader`.
 *
 * @param headers The response headers of a gRPC response whose messages follow.
 * @returns The metadata, without pseudo-headers and the keys the transport reads itself.
 */
export function responseHeaders(
  headers: http2.IncomingHttpHeaders,
): ResponseMetadata {
  return toMetadata(headers, TRANSPORT_HEADER_KEYS);
}

/** `grpc-status` is one or more ASCII digits, nothing else. */
const STATUS_VALUE = /^[0-9]+$/;
const LARGEST_KNOWN_CODE = Status.UNAUTHENTICATED;

/**
 * The status that trailers (or a trailers-only response) carry.
 *
 * @param headers The trailers, or the response headers.
 * @returns The status, or `undefined` when they carry no `grpc-status`.
 */
function statusFromHeaders(
  headers: http2.IncomingHttpHeaders,
): CallStatus | undefined {
  const raw = headers["grpc-status"];
  if (raw === undefined) return undefined;
  const value = Array.isArray(raw) ? raw.join(", ") : String(raw);
  const details = decodeDetails(headers["grpc-message"]);
  const trailers = toTrailers(headers);
  if (!STATUS_VALUE.test(value)) {
    return {
      code: Status.UNKNOWN,
      details: `Server sent an invalid grpc-status: "${value}"${
        details === "" ? "" : `: ${details}`
      }`,
      trailers,
    };
  }
  const code = Number(value);
  if (code > LARGEST_KNOWN_CODE) {
    return {
      code: Status.UNKNOWN,
      details: details === ""
        ? `Server sent an unknown grpc-status: ${value}`
        : details,
      trailers,
    };
  }
  // Digits no larger than the largest code: one of the table's.
  return { code: code as Status, details, trailers };
}

/**
 * The status that trailers carry, or `INTERNAL` for trailers without one.
 *
 * @param headers The trailers.
 * @returns The status.
 */
export function statusOfTrailers(
  headers: http2.IncomingHttpHeaders,
): CallStatus {
  return statusFromHeaders(headers) ?? {
    code: Status.INTERNAL,
    details: "Server ended the call without a gRPC status",
    trailers: toTrailers(headers),
  };
}

/**
 * What response headers say of the call: it ended already (`trailers-only`, whose status
 * stands once the body has ended) or the response is not gRPC (`not gRPC`: a proxy's error
 * page, a web server; the HTTP status says what happened, as gRPC maps it, and the body is
 * not read).
 */
export type ResponseStatus =
  | { kind: "trailers-only"; status: CallStatus }
  | { kind: "not gRPC"; status: CallStatus };

/**
 * Reads the status, if any, that a call's response headers carry.
 *
 * @param headers The response headers.
 * @returns The status, or `undefined` for a gRPC response whose messages follow.
 */
export function statusOfResponse(
  headers: http2.IncomingHttpHeaders,
): ResponseStatus | undefined {
  const trailersOnly = statusFromHeaders(headers);
  if (trailersOnly !== undefined) {
    return { kind: "trailers-only", status: trailersOnly };
  }
  const httpStatus = Number(headers[HTTP2_HEADER_STATUS]);
  const contentType = String(headers[HTTP2_HEADER_CONTENT_TYPE] ?? "");
  if (httpStatus !== 200) {
    return {
      kind: "not gRPC",
      status: {
        code: statusFromHttp(httpStatus),
        details: `Server answered with HTTP status ${httpStatus}${
          contentType === "" ? "" : ` (${contentType})`
        }`,
        trailers: toTrailers(headers),
      },
    };
  }
  if (!/^application\/grpc(?:$|[+;])/.test(contentType)) {
    return {
      kind: "not gRPC",
      status: {
        code: Status.UNKNOWN,
        details: `Server answered with content type ${contentType || "(none)"}`,
        trailers: toTrailers(headers),
      },
    };
  }
  return undefined;
}

/** How a stream that closed with no gRPC status went, for {@linkcode statusOfClosedStream}. */
export interface ClosedStream {
  /** The stream's reset code. */
  rstCode: number | undefined;
  /** The error that best explains it: the connection's, or the stream's. */
  error: (Error & { code?: string }) | undefined;
  /** Whether the stream's connection went down. */
  sessionLost: boolean;
  /** The server's `host:port`, for the details. */
  authority: string;
}

/**
 * The status of a stream that closed with no gRPC status: its reset code when that says
 * more, else how the connection fared, else the reset or the stream's error.
 *
 * @param closed The stream's reset code and errors, and whether its connection went down.
 * @returns The status's code and details.
 */
export function statusOfClosedStream(
  closed: ClosedStream,
): { code: Status; details: string } {
  const { rstCode, error, sessionLost, authority } = closed;
  const byReset = rstCode === undefined
    ? undefined
    : STATUS_BY_RESET.get(rstCode);
  if (byReset !== undefined) return { ...byReset };
  if (error !== undefined && isConnectionError(error)) {
    return {
      code: Status.UNAVAILABLE,
      details: `Cannot reach ${authority}: ${describeConnectionError(error)}`,
    };
  }
  if (sessionLost) {
    return {
      code: Status.UNAVAILABLE,
      details: `Connection to ${authority} closed during the call${
        error === undefined ? "" : `: ${error.message}`
      }`,
    };
  }
  if (rstCode === NGHTTP2_CANCEL) return { ...CANCELLED_BY_SERVER };
  return {
    code: Status.INTERNAL,
    details: error === undefined
      ? `Stream closed without a gRPC status (HTTP/2 code ${rstCode})`
      : `Stream failed: ${error.message}`,
  };
}
