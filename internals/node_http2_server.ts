/**
 * What the server's own HTTP/2 connection reads of a `node:http2` server beyond its public
 * API: the `'connection'` listener through which `Http2Server` (a `net.Server`) hands each
 * new socket to its HTTP/2 session code, named `connectionListener` in Deno's
 * `ext/node/polyfills/http2.ts` as in Node's `lib/internal/http2/core.js`. The own connection
 * takes the sockets in its place; without that listener (another runtime), or with
 * `GRPC_STREAM_FAST_PATHS=off`, it says so once and every socket goes to `node:http2` as before.
 *
 * @module
 */
import type http2 from "node:http2";
import type net from "node:net";
import { fastPathsOn, missedFastPath, usedFastPath } from "./fast_paths.ts";

/** Hands a request stream to the `node:http2` server's `'stream'` listeners. */
export type StreamHandOver = (
  stream: object,
  headers: http2.IncomingHttpHeaders,
) => void;

/**
 * Decides who serves a new socket: `true` when it has taken it. `handOver` gives its request
 * streams to the listeners `node:http2` would have given them to.
 */
export type SocketTaker = (
  socket: net.Socket,
  handOver: StreamHandOver,
) => boolean;

/** The name the session code's listener has in Deno and Node. */
const CONNECTION_LISTENER = "connectionListener";

/**
 * Puts `take` before the session code of `http2Server`: every new socket goes to `take`
 * first, and to `node:http2` when `take` leaves it.
 *
 * @param http2Server A cleartext `node:http2` server, before it accepts a connection.
 * @param take Told of every new socket first.
 * @returns Whether `take` is in place: `false` (said once) when the listener is not found or
 * the fast paths are off.
 */
export function takeSocketsBefore(
  http2Server: http2.Http2Server,
  take: SocketTaker,
): boolean {
  if (!fastPathsOn()) return false;
  const listeners = http2Server.listeners("connection") as ((
    ...args: unknown[]
  ) => void)[];
  const sessions = listeners.find((listener) =>
    listener.name === CONNECTION_LISTENER
  );
  if (sessions === undefined) {
    missedFastPath("own HTTP/2", "node:http2 server's connectionListener");
    return false;
  }
  usedFastPath("own HTTP/2");
  const after = listeners.slice(listeners.indexOf(sessions) + 1);
  function handOver(
    stream: object,
    headers: http2.IncomingHttpHeaders,
  ): void {
    http2Server.emit("stream", stream, headers);
  }
  function dispatch(
    this: unknown,
    socket: net.Socket,
    ...rest: unknown[]
  ): void {
    if (!take(socket, handOver)) sessions!.call(this, socket, ...rest);
  }
  http2Server.off("connection", sessions);
  for (const listener of after) http2Server.off("connection", listener);
  http2Server.on("connection", dispatch);
  for (const listener of after) http2Server.on("connection", listener);
  return true;
}
