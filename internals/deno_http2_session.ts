/**
 * What the server reads of Deno's `node:http2` beyond Node's API (ext/node/polyfills/http2.ts
 * and internal/stream_base_commons.ts of the pinned Deno, `internals/versions.ts`): a session's
 * map of streams, and the native handles under a session and its streams. Deno keeps them
 * behind symbols it does not export, so they are found by their descriptions, here only, once.
 * When one is gone (another Deno, Node) each view says so once for the fast path that asked,
 * and the caller takes the public path. With `GRPC_STREAM_FAST_PATHS=off` no view looks.
 *
 * @module
 */
import type http2 from "node:http2";
import { fastPathsOn, missedFastPath, usedFastPath } from "./fast_paths.ts";

/** The symbol on `object` or its prototypes whose description is `description`. */
function findSymbol(
  object: object | null,
  description: string,
): symbol | undefined {
  for (; object !== null; object = Object.getPrototypeOf(object)) {
    const found = Object.getOwnPropertySymbols(object).find((key) =>
      key.description === description
    );
    if (found !== undefined) return found;
  }
  return undefined;
}

function privateField(object: object, symbol: symbol | undefined): unknown {
  return symbol === undefined
    ? undefined
    : (object as Record<symbol, unknown>)[symbol];
}

/** The map of streams in `session`'s private `state`, or `undefined` when it is not there. */
function streamsIn(
  session: http2.Http2Session,
): { values(): Iterable<http2.Http2Stream> } | undefined {
  // Deno names the symbol `state` (Node names it `kState`), and its map of streams is a
  // primordials `SafeMap`, which is not an instance of `Map`.
  const state = (privateField(session, findSymbol(session, "state")) ??
    privateField(session, findSymbol(session, "kState"))) as {
      streams?: { values?: () => Iterable<http2.Http2Stream> };
    } | undefined;
  const streams = state?.streams;
  return typeof streams?.values === "function"
    ? streams as { values(): Iterable<http2.Http2Stream> }
    : undefined;
}

/**
 * The streams of `session` (its private `state.streams`), to see whether one is still
 * answering, for the session drain.
 *
 * @param session A server session.
 * @returns Its streams, or `undefined` when the session lacks the shape (said once) or the
 * fast paths are off.
 */
export function sessionStreams(
  session: http2.Http2Session,
): Iterable<http2.Http2Stream> | undefined {
  const streams = fastPathsOn() ? streamsIn(session) : undefined;
  if (streams === undefined) {
    missedFastPath("session drain", "the session's state.streams");
    return undefined;
  }
  usedFastPath("session drain");
  return streams.values();
}

/**
 * The streams of `session` for a fault that cuts its connection (`drop: "connection"`), a
 * feature rather than an optimisation, so `GRPC_STREAM_FAST_PATHS=off` leaves this read on.
 *
 * @param session A server session.
 * @returns Its streams, or `undefined` when the session lacks the shape (said once).
 */
export function cutSessionStreams(
  session: http2.Http2Session,
): Iterable<http2.Http2Stream> | undefined {
  const streams = streamsIn(session);
  if (streams === undefined) {
    missedFastPath("fault drops", "the session's state.streams");
    return undefined;
  }
  return streams.values();
}

/**
 * What Deno calls with each inbound DATA frame of a stream: a fresh `Uint8Array` and its
 * length, and no bytes with a negative length at the end of the stream.
 */
export type OnRead = (
  this: StreamHandle,
  bytes: Uint8Array | undefined,
  length?: number,
) => unknown;

/** The native handle under a stream (`stream[kHandle]`), as far as the server uses it. */
export interface StreamHandle {
  /**
   * Called per inbound DATA frame; its default (`onStreamRead`) pushes the bytes through the
   * stream's `Readable`. Anything but a function makes Deno skip the frame's buffer and call.
   */
  onread: OnRead | null;
  /** Restarts the native read. */
  readStart(): unknown;
}

/** The private parts of one stream that the request reader uses. */
export interface StreamInternals {
  /** The stream's native handle. */
  readonly handle: StreamHandle;
  /** The handle's own `onread`, as Deno set it. */
  readonly onread: OnRead;
  /** Refreshes the stream's idle timer (`stream[kUpdateTimer]()`), as a read does. */
  updateTimer(): void;
  /** Sends what the session's native handle has queued, such as a WINDOW_UPDATE. */
  sendPending(): void;
}

/** The Deno private keys the handle path uses, found once. */
let streamKeys: { handle: symbol; updateTimer: symbol } | null | undefined;

/**
 * The native handles under a server stream and its session, for the request reader to take
 * DATA frames from.
 *
 * @param stream A server stream of Deno's `node:http2`, open.
 * @returns Its internals, or `undefined` when the fast paths are off, the stream lacks the
 * shape (said once), or it or its session is already destroyed (no handle, nothing missing).
 */
export function streamInternalsOf(
  stream: object,
): StreamInternals | undefined {
  if (!fastPathsOn()) return undefined;
  if (streamKeys === undefined) {
    const handle = findSymbol(stream, "kHandle");
    const updateTimer = findSymbol(stream, "kUpdateTimer");
    streamKeys = handle !== undefined && updateTimer !== undefined
      ? { handle, updateTimer }
      : null;
  }
  if (streamKeys === null) {
    missedFastPath(
      "request frames from Deno's handle",
      "the stream's kHandle or kUpdateTimer symbol",
    );
    return undefined;
  }
  const handle = privateField(stream, streamKeys.handle) as
    | Partial<StreamHandle>
    | undefined;
  const updateTimer = privateField(stream, streamKeys.updateTimer);
  const session = (stream as { session?: unknown }).session;
  const sessionHandle = typeof session !== "object" || session === null
    ? undefined
    : privateField(session, streamKeys.handle) as
      | { sendPending?: unknown }
      | undefined;
  const onread = handle?.onread;
  if (
    handle === undefined || typeof onread !== "function" ||
    typeof handle.readStart !== "function" ||
    typeof updateTimer !== "function" ||
    typeof sessionHandle?.sendPending !== "function"
  ) {
    // A stream or session already destroyed has no handle: that is not a missing field.
    if (handle !== undefined && sessionHandle !== undefined) {
      missedFastPath(
        "request frames from Deno's handle",
        "the handle's onread or readStart, or the session handle's sendPending",
      );
    }
    return undefined;
  }
  usedFastPath("request frames from Deno's handle");
  const sendPending = sessionHandle.sendPending as () => unknown;
  return {
    handle: handle as StreamHandle,
    onread,
    updateTimer(): void {
      (updateTimer as () => void).call(stream);
    },
    sendPending(): void {
      sendPending.call(sessionHandle);
    },
  };
}
