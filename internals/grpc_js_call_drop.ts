/**
 * What faults on request (`services/fault_plan.ts`) read beyond the public API to drop a call
 * the way a broken network or a crashed host would: the HTTP/2 stream under a grpc-js server
 * call (grpc-js's private `call.stream`, found through the interceptors that may wrap it,
 * each keeping the next in its private `nextCall`), and the TCP socket under Deno's session
 * (behind a symbol described `socket`; the public `session.socket` refuses `destroy`).
 * These reads make a feature, not an optimisation: `GRPC_STREAM_FAST_PATHS=off` leaves them
 * on. When one is gone (another grpc-js or Deno) the view says so once ("fault drops") and the
 * caller takes its fallback: the call ends with a status instead of a reset stream, and a
 * session is destroyed through its public `destroy()` when its socket cannot be reached.
 *
 * @module
 */
import { missedFastPath, usedFastPath } from "./fast_paths.ts";
import type http2 from "node:http2";
import { cutSessionStreams } from "./deno_http2_session.ts";
import { LEAN_CALL } from "./grpc_js_server_call.ts";

/** The HTTP/2 stream under a call, as far as a drop uses it. */
interface DropStream {
  readonly destroyed: boolean;
  close(code: number): unknown;
  readonly session?: DropSession | undefined;
}

/** A server session, as far as a drop uses it. */
interface DropSession {
  readonly destroyed: boolean;
  destroy(): unknown;
  /**
   * The server's own HTTP/2 connection (`services/http2/connection.ts`) is its streams'
   * session and cuts itself: it writes what it has framed, then destroys its socket.
   */
  cut?(): unknown;
  /** The own connection's open streams. */
  streams?(): Iterable<object>;
}

/** A TCP socket, as far as a drop uses it. */
interface DropSocket {
  readonly destroyed: boolean;
  readonly writableCorked?: number;
  uncork?(): unknown;
  write?(chunk: Uint8Array, done: () => void): unknown;
  destroy(): unknown;
}

/** How long a cut waits for the socket to take what was written before it. */
const FLUSH_LIMIT_MS = 1_000;

/** How to drop one call. */
export interface CallDrop {
  /** Resets the call's HTTP/2 stream with `code` (an HTTP/2 error code). */
  resetStream(code: number): void;
  /**
   * Cuts the call's TCP connection at once, with no GOAWAY.
   *
   * @returns `"socket"` when the socket itself was destroyed, or `"session"` when only the
   * session's public `destroy()` could be used (said once).
   */
  cutConnection(): "socket" | "session";
}

/** How deep interceptors may wrap a call before the view gives up. */
const MAX_WRAPPERS = 8;

function streamUnder(call: object): DropStream | undefined {
  // A call of the lean path (`services/lean_call.ts`) holds its HTTP/2 stream itself.
  const lean = (call as { [LEAN_CALL]?: { stream?: unknown } })[LEAN_CALL];
  if (lean !== undefined) {
    const stream = lean.stream as Partial<DropStream> | undefined;
    return typeof stream?.close === "function"
      ? stream as DropStream
      : undefined;
  }
  let inner = (call as { call?: unknown }).call;
  for (let depth = 0; depth < MAX_WRAPPERS; depth++) {
    if (typeof inner !== "object" || inner === null) return undefined;
    const stream = (inner as { stream?: Partial<DropStream> }).stream;
    if (
      typeof stream === "object" && stream !== null &&
      typeof stream.close === "function"
    ) {
      return stream as DropStream;
    }
    inner = (inner as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

function socketOf(session: DropSession): DropSocket | undefined {
  for (
    let object: object | null = session;
    object !== null;
    object = Object.getPrototypeOf(object)
  ) {
    const key = Object.getOwnPropertySymbols(object).find((symbol) =>
      symbol.description === "socket"
    );
    if (key === undefined) continue;
    const socket = (session as unknown as Record<symbol, unknown>)[key] as
      | Partial<DropSocket>
      | undefined;
    return typeof socket?.destroy === "function"
      ? socket as DropSocket
      : undefined;
  }
  return undefined;
}

/** The streams of connections a fault cut, so that their calls are not blamed on the client. */
const cutStreams = new WeakSet<object>();

/**
 * Whether `call`'s connection was cut by a fault (`drop: "connection"`).
 *
 * @param call A server call, as a handler gets it.
 * @returns `true` once a fault has cut the call's connection.
 */
export function cutByFault(call: object): boolean {
  const stream = streamUnder(call);
  return stream !== undefined && cutStreams.has(stream);
}

/**
 * Destroys `socket` once what was written to it before has gone to the kernel: a destroy
 * throws away what the server corked for this turn (`services/write_coalescing.ts`) and the
 * writes still in flight, and with them replies the call had already handed over.
 */
function flushThenDestroy(socket: DropSocket): void {
  while ((socket.writableCorked ?? 0) > 0) socket.uncork?.();
  function destroy(): void {
    clearTimeout(limit);
    if (!socket.destroyed) socket.destroy();
  }
  const limit = setTimeout(destroy, FLUSH_LIMIT_MS);
  // Writes complete in order: this one's callback runs once every earlier one has.
  if (typeof socket.write === "function") {
    socket.write(new Uint8Array(0), destroy);
  } else destroy();
}

/**
 * How to drop a server call (grpc-js's, or the lean path's): its stream, or its whole
 * connection.
 *
 * @param call A server call, as a handler gets it.
 * @returns The drop, or `undefined` when the call's stream cannot be found (said once).
 */
export function callDropOf(call: object): CallDrop | undefined {
  const stream = streamUnder(call);
  if (stream === undefined) {
    missedFastPath("fault drops", "grpc-js call.stream");
    return undefined;
  }
  usedFastPath("fault drops");
  return {
    resetStream(code: number): void {
      if (!stream.destroyed) stream.close(code);
    },
    cutConnection(): "socket" | "session" {
      const session = stream.session;
      if (
        typeof session?.cut === "function" &&
        typeof session.streams === "function"
      ) {
        for (const open of session.streams()) cutStreams.add(open);
        cutStreams.add(stream);
        session.cut();
        return "socket";
      }
      // The session lets its streams go as it ends, before their calls hear of it: mark them.
      const streams = session === undefined
        ? undefined
        : cutSessionStreams(session as unknown as http2.Http2Session);
      for (const open of streams ?? [stream]) cutStreams.add(open);
      const socket = session === undefined ? undefined : socketOf(session);
      if (socket !== undefined) {
        if (!socket.destroyed) flushThenDestroy(socket);
        return "socket";
      }
      missedFastPath("fault drops", "the session's socket");
      if (session !== undefined && !session.destroyed) session.destroy();
      return "session";
    },
  };
}
