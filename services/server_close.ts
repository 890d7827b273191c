/**
 * The end of a server's life: it stops accepting calls, lets those in flight finish for the
 * grace period, ends the rest with `UNAVAILABLE`, and closes every connection gracefully
 * (`session_drain.ts`) or, at last, at once.
 *
 * @module
 */
import type * as grpc from "../internals/npm/grpc_js.ts";
import { drainSessions } from "./session_drain.ts";
import {
  destroyOwnConnections,
  drainOwnConnections,
} from "./http2/own_connections.ts";

/**
 * How long calls ended at the end of the grace period get to deliver their status before
 * every connection is closed; documented with `gracePeriod`.
 */
const STATUS_DELIVERY_MS = 1_000;

/**
 * The longest wait before the final GOAWAY on a connection with no call being answered, for a
 * peer that neither answers the drain's PINGs nor closes the connection, bounded by the grace
 * period. Only such a peer meets it: a proxy closes its idle connection at the first PING, and
 * a busy one opens a stream, which sends the GOAWAY at once. The GOAWAY it sends may cut off a
 * request, so it is a last resort, not a usual path.
 */
const GOAWAY_PING_WAIT_MS = 3_000;

/**
 * Stops accepting calls and waits for those in flight; once the grace period is over, ends
 * them with `UNAVAILABLE` (`endRunningCalls`), and closes every connection if that is not
 * enough either.
 *
 * @param server The grpc-js server.
 * @param options The grace period, and how to end the calls still running when it is over.
 * @returns A promise that settles once the server is closed.
 */
export function shutDown(
  server: grpc.Server,
  { gracePeriod, endRunningCalls }: {
    gracePeriod: number;
    endRunningCalls: () => void;
  },
): Promise<void> {
  // Before grpc-js closes the listeners and sessions, so that its `close()` of each session
  // sends the final GOAWAY only once the peer has seen the first.
  const drain = drainSessions(
    server,
    Math.min(GOAWAY_PING_WAIT_MS, gracePeriod),
  );
  drainOwnConnections(server, {
    pingWaitMs: Math.min(GOAWAY_PING_WAIT_MS, gracePeriod),
    listenersClosed: drain.listenersClosed,
  });
  return new Promise((resolve) => {
    let forceTimer: ReturnType<typeof setTimeout> | undefined;
    const graceTimer = setTimeout(() => {
      endRunningCalls();
      forceTimer = setTimeout(() => {
        server.forceShutdown();
        destroyOwnConnections(server);
      }, STATUS_DELIVERY_MS);
    }, gracePeriod);
    server.tryShutdown(() => {
      clearTimeout(graceTimer);
      clearTimeout(forceTimer);
      drain.stop();
      resolve();
    });
  });
}
