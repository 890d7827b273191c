/**
 * How the `Pow` and unary `Sqrt` calls that never reached their handler ended.
 *
 * grpc-js runs a server-streaming or unary handler only once the call's request message and
 * its END_STREAM have arrived. A client that dies or cancels after the HEADERS and before
 * that, or that ends its request without a message, leaves the handlers nothing to log: the
 * server saw the call, and no line would say how it ended. So the handlers mark the HTTP/2
 * stream of each call they start ({@linkcode markStarted}), and the server watches the
 * streams of these two methods on each session ({@linkcode watchUnstartedCalls}): one that
 * closes unmarked is reported with how it ended. `Sum` and the bidirectional `Sqrt` need no
 * watching: grpc-js starts their handlers at the HEADERS.
 *
 * The mark reaches the grpc-js call's HTTP/2 stream as the reply writer does
 * (`internals/grpc_js_server_call.ts`); when that reach
 * is gone (a grpc-js that keeps the stream elsewhere), the fallback is said once and no call is
 * reported, since a started call could not be told from one that never started.
 *
 * @module
 */
import http2 from "node:http2";
import { setImmediate } from "node:timers";
import type { ServerLogger } from "./server_logger.ts";
import { callStreamOf } from "../internals/grpc_js_server_call.ts";
import { statusName } from "../proto/status.ts";

/** The methods whose handlers grpc-js runs only once the request has arrived, by path. */
const WATCHED: ReadonlyMap<string, string> = new Map([
  ["/stream.ServerStream/Pow", "Pow"],
  ["/stream.Single/Sqrt", "Single Sqrt"],
]);

/** How a call that never reached its handler ended. */
export type UnstartedEnd =
  /** The client reset the call with `CANCEL`. */
  | { kind: "cancelled" }
  /**
   * The connection ended under the call: a client killed, a cable pulled, or the server
   * closing its connections at the end of a shutdown.
   */
  | { kind: "connection closed" }
  /** The call's stream was reset with another code: its name, such as `REFUSED_STREAM`. */
  | { kind: "reset"; code: string }
  /**
   * grpc-js answered the call with a status without running the handler: no request message,
   * a deadline, a request it could not read.
   */
  | { kind: "answered"; code: string; details: string };

/** Called once for each watched call that ended before its handler ran. */
export type UnstartedCallReporter = (method: string, how: UnstartedEnd) => void;

/** The HTTP/2 streams of the calls whose handler ran. */
const started = new WeakSet<object>();

/** Whether a handler has failed to reach its stream: then no call can be told unstarted. */
let marksLost = false;

/**
 * Marks `call` as started, for a server that logs calls.
 *
 * @param call A grpc-js server call, from inside its handler.
 */
export function markStarted(call: object): void {
  const stream = callStreamOf(call, "call starts");
  if (stream === undefined) {
    marksLost = true;
    return;
  }
  started.add(stream);
}

/** `grpc-status` and `grpc-message` of the headers or trailers grpc-js sent, if any. */
function sentStatus(
  stream: http2.ServerHttp2Stream,
): { code: string; details: string } | undefined {
  for (const sent of [stream.sentTrailers, stream.sentHeaders]) {
    const code = sent?.["grpc-status"];
    if (code === undefined) continue;
    const message = sent?.["grpc-message"];
    let details = typeof message === "string" ? message : "";
    try {
      details = decodeURIComponent(details);
    } catch {
      // grpc-js percent-encodes the message; one it did not is shown as sent.
    }
    return {
      code: statusName(Number(code)) ?? `status ${code}`,
      details,
    };
  }
  return undefined;
}

const RST_NAMES = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

/** A connection whose streams are watched: a `node:http2` session, or the own HTTP/2's. */
export interface WatchedSession {
  readonly destroyed: boolean;
  on(
    event: "stream",
    listener: (
      stream: http2.ServerHttp2Stream,
      headers: http2.IncomingHttpHeaders,
    ) => void,
  ): unknown;
}

/** How the unstarted call on `stream` ended, from what its stream and session show. */
function howEnded(
  stream: http2.ServerHttp2Stream,
  session: WatchedSession,
): UnstartedEnd {
  const answered = sentStatus(stream);
  if (answered !== undefined) return { kind: "answered", ...answered };
  if (session.destroyed) return { kind: "connection closed" };
  const code = stream.rstCode ?? http2.constants.NGHTTP2_NO_ERROR;
  if (code === http2.constants.NGHTTP2_CANCEL) return { kind: "cancelled" };
  return { kind: "reset", code: RST_NAMES[code] ?? `code ${code}` };
}

/**
 * Reports each call of a watched method on `session` that ends before its handler ran.
 *
 * @param session A session of the grpc-js server.
 * @param report Told the method and how the call ended.
 */
export function watchUnstartedCalls(
  session: WatchedSession,
  report: UnstartedCallReporter,
): void {
  function reportSoon(stream: http2.ServerHttp2Stream, method: string): void {
    const how = howEnded(stream, session);
    // A connection that dies ends the request streams on it before it closes them (see
    // `whenNotCancelled` in `handlers.ts`): grpc-js may still start a call whose message had
    // come, a few microtasks after the close, and its handler then logs it.
    setImmediate(() => {
      if (!started.has(stream) && !marksLost) report(method, how);
    });
  }
  // One listener per method and session, with the stream as `this`: no closure per call.
  const listeners = new Map<string, (this: http2.ServerHttp2Stream) => void>();
  for (const [path, method] of WATCHED) {
    listeners.set(path, function (this: http2.ServerHttp2Stream): void {
      if (!started.has(this) && !marksLost) reportSoon(this, method);
    });
  }
  session.on(
    "stream",
    (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
      const listener = listeners.get(headers[":path"] ?? "");
      if (listener !== undefined) stream.on("close", listener);
    },
  );
}

/**
 * The line for a call that ended before grpc-js ran its handler: cancelled or cut off calls as
 * info, as the handlers log theirs, and calls grpc-js failed as a warning.
 *
 * @param logger The server's logger.
 * @returns The reporter to watch sessions with.
 */
export function unstartedCallLogger(
  logger: ServerLogger,
): UnstartedCallReporter {
  return (method, how) => {
    try {
      switch (how.kind) {
        case "cancelled":
          logger.info(
            `${method} cancelled by the client before its request arrived`,
          );
          break;
        case "connection closed":
          logger.info(
            `${method} ended before its request arrived: connection closed`,
          );
          break;
        case "reset":
          logger.info(
            `${method} ended before its request arrived: reset with ${how.code}`,
          );
          break;
        case "answered":
          logger.warn(
            `${method} failed before it started: ${how.code}: ${how.details}`,
          );
          break;
      }
    } catch {
      // A logger that fails must not take the session's other calls down with it.
    }
  };
}
