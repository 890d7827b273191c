/**
 * The HTTP/2 request headers of a call over the default transport: gRPC's fixed ones, the
 * caller's metadata, the client's `user-agent` and the deadline as `grpc-timeout`.
 *
 * @module
 */
import type http2 from "node:http2";
import denoConfig from "../deno.json" with { type: "json" };
import { MAX_TIMER_MS } from "../proto/limits.ts";
import type { RequestHeaders } from "./transport.ts";

/** Sent with every call, so a server's logs can tell this client and its version. */
const USER_AGENT = `grpc-stream-deno/${denoConfig.version}`;

/** The units of `grpc-timeout`, each with its length in milliseconds, smallest first. */
const TIMEOUT_UNITS: readonly [string, number][] = [
  ["m", 1],
  ["S", 1_000],
  ["M", 60_000],
  ["H", 3_600_000],
];

/**
 * Writes a timeout as `grpc-timeout` wants it: at most 8 digits and a unit, rounded up so
 * the server never gives up before the client does.
 *
 * @param milliseconds The time left.
 * @returns The header's value.
 */
export function encodeTimeout(milliseconds: number): string {
  for (const [unit, size] of TIMEOUT_UNITS) {
    const amount = Math.max(1, Math.ceil(milliseconds / size));
    if (amount <= 99_999_999) return `${amount}${unit}`;
  }
  return "99999999H";
}

/** What a call's request headers carry besides its path. */
export interface RequestHeadersInit {
  /** The caller's metadata, already checked and encoded. */
  metadata: RequestHeaders;
  /** When the call must end, in epoch milliseconds; `undefined` is never. */
  deadline: number | undefined;
}

/**
 * The request headers of a call.
 *
 * @param path The method path, e.g. `/stream.ServerStream/Pow`.
 * @param init The caller's metadata and the call's deadline.
 * @returns The headers, to open the call's stream with (and a retry's).
 */
export function requestHeaders(
  path: string,
  init: RequestHeadersInit,
): http2.OutgoingHttpHeaders {
  const { metadata, deadline } = init;
  const headers: http2.OutgoingHttpHeaders = {
    ...metadata,
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    "te": "trailers",
    "user-agent": USER_AGENT,
  };
  // A grpc-js server meets a timeout longer than a timer can wait by expiring the call at
  // once; such a far deadline is left to this side's own timer.
  if (deadline !== undefined && deadline - Date.now() <= MAX_TIMER_MS) {
    headers["grpc-timeout"] = encodeTimeout(deadline - Date.now());
  }
  return headers;
}
