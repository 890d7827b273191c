/**
 * Keeps a client's GOAWAY from aborting the server's process under Deno: every HTTP/2
 * session of the server defers the close that follows a GOAWAY (see `proto/http2_session.ts`
 * for why). Without it, any client that closes its connection politely could bring the
 * server down.
 *
 * @module
 */
import type http2 from "node:http2";
import { deferCloseAfterGoaway } from "../proto/http2_session.ts";

/** The HTTP/2 servers already guarded, since each bind adds one and guards them all. */
const guarded = new WeakSet<http2.Http2Server>();

/**
 * Guards every HTTP/2 session of a grpc-js server bound so far.
 *
 * @param server A grpc-js server, after `bindAsync` has succeeded.
 * @returns Whether grpc-js exposed its HTTP/2 servers (it keeps them in a private map).
 */
export function guardSessions(server: object): boolean {
  const http2Servers = (server as { http2Servers?: unknown }).http2Servers;
  if (!(http2Servers instanceof Map)) return false;
  for (
    const http2Server of http2Servers.keys() as Iterable<http2.Http2Server>
  ) {
    if (guarded.has(http2Server)) continue;
    guarded.add(http2Server);
    http2Server.on("session", deferCloseAfterGoaway);
  }
  return true;
}
