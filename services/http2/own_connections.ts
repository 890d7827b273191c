/**
 * Serves a grpc-js server's cleartext connections with the server's own HTTP/2
 * (`connection.ts`) in place of `node:http2`'s sessions. Deno's `node:http2` costs about
 * 100 µs of CPU per short call (nghttp2 behind a per-frame crossing into JavaScript, a
 * `Duplex` per stream); framing HTTP/2 in JavaScript from the socket's bytes costs a few.
 *
 * Each socket is taken before `node:http2` sees it (`internals/node_http2_server.ts`), and
 * each request stream is handed to the listeners of the `node:http2` server's `'stream'`
 * event, as `node:http2` would: the lean path answers `Pow`, `Sum` and `Sqrt`, grpc-js every
 * other method (health, reflection, `stream.Single`, unknown paths) through its own call code,
 * which needs no more of a stream than {@linkcode ServerStream} gives.
 *
 * What grpc-js does per connection does not happen on these connections, so a server whose
 * options ask for it keeps `node:http2` (see {@linkcode ownHttp2Refusal}). TLS connections
 * keep `node:http2` too. A server's connections end through {@linkcode drainOwnConnections}
 * and {@linkcode destroyOwnConnections}, which its shutdown calls beside grpc-js's.
 *
 * @module
 */
import tls from "node:tls";
import type http2 from "node:http2";
import type * as grpc from "../../internals/npm/grpc_js.ts";
import { http2ServersOf } from "../../internals/grpc_js_server.ts";
import { takeSocketsBefore } from "../../internals/node_http2_server.ts";
import { ownHttp2Chosen } from "../../proto/http2/choice.ts";
import { Http2Connection } from "./connection.ts";
import type { ServerProbe } from "../_testing.ts";
import {
  type UnstartedCallReporter,
  watchUnstartedCalls,
} from "../call_starts.ts";

/** The connections of one grpc-js server, and whether they drain. */
interface Connections {
  readonly open: Set<Http2Connection>;
  /**
   * Once the server closes: the longest wait for a PING's answer, and the connections
   * accepted since (from the listener's accept queue), which retire at their first streams.
   */
  draining: { pingWaitMs: number; fresh: Set<Http2Connection> } | undefined;
}

const connectionsOf = new WeakMap<object, Connections>();
/** The `node:http2` servers whose sockets are taken already, since each bind adds one. */
const taken = new WeakSet<http2.Http2Server>();

/** grpc-js server options whose per-connection work only `node:http2`'s sessions get. */
const SESSION_OPTIONS = [
  "grpc.keepalive_time_ms",
  "grpc.keepalive_timeout_ms",
  "grpc.max_connection_age_ms",
  "grpc.max_connection_age_grace_ms",
  "grpc.max_connection_idle_ms",
  "grpc-node.max_session_memory",
] as const;

/**
 * Why a server with `options` must keep `node:http2` for its connections, if it must: each
 * of these options is carried out by grpc-js on `node:http2`'s sessions.
 *
 * @param options The grpc-js server's options.
 * @returns The first such option, or `undefined` when the own HTTP/2 may serve.
 */
export function ownHttp2Refusal(
  options: grpc.ServerOptions,
): string | undefined {
  return SESSION_OPTIONS.find((name) => options[name] !== undefined);
}

/** What {@linkcode serveOwnHttp2} needs besides the server. */
export interface OwnHttp2Options {
  /** The grpc-js server's options. */
  serverOptions: grpc.ServerOptions;
  /** How long a connection may take to send its preface and SETTINGS; 0 waits forever. */
  handshakeTimeout: number;
  /** A test's choice, over the environment's. */
  probe: ServerProbe | undefined;
  /** Where calls that ended before their handler ran are told, for the log. */
  unstartedCall: UnstartedCallReporter | undefined;
}

/**
 * Serves the cleartext connections of every port `server` has bound so far with the own
 * HTTP/2, unless its options need `node:http2`.
 *
 * @param server A grpc-js server, after `bindAsync` has succeeded.
 * @param options Its options and the handshake timeout.
 * @returns Whether any port is served so.
 */
export function serveOwnHttp2(
  server: object,
  { serverOptions, handshakeTimeout, probe, unstartedCall }: OwnHttp2Options,
): boolean {
  if (!(probe?.ownHttp2 ?? ownHttp2Chosen())) return false;
  if (ownHttp2Refusal(serverOptions) !== undefined) return false;
  const views = http2ServersOf(server);
  if (views === undefined) return false;
  let connections = connectionsOf.get(server);
  if (connections === undefined) {
    connections = { open: new Set(), draining: undefined };
    connectionsOf.set(server, connections);
  }
  const all = connections;
  const maxConcurrentStreams = serverOptions["grpc.max_concurrent_streams"];
  let serving = false;
  for (const { server: http2Server } of views) {
    if (taken.has(http2Server)) {
      serving = true;
      continue;
    }
    if (http2Server instanceof tls.Server) continue;
    const took = takeSocketsBefore(http2Server, (socket, handOver) => {
      const connection = new Http2Connection(socket, {
        onStream: handOver,
        maxConcurrentStreams,
        handshakeTimeout,
      });
      if (unstartedCall !== undefined) {
        watchUnstartedCalls(connection, unstartedCall);
      }
      all.open.add(connection);
      connection.onClose(() => all.open.delete(connection));
      all.draining?.fresh.add(connection);
      return true;
    });
    if (took) {
      taken.add(http2Server);
      serving = true;
    }
  }
  return serving;
}

/**
 * Starts the graceful end of every own connection of `server` once its listeners have closed:
 * earlier, a proxy whose idle connections it ends (nginx closes one a GOAWAY or PING reaches)
 * would open new ones into the listener's accept queue, which the close then resets. Each
 * connection open before gets a GOAWAY and a PING, then the final GOAWAY once the PING is
 * answered (or after `pingWaitMs`); each accepted since closes after its first streams. Each
 * closes once its calls have finished.
 *
 * @param server The grpc-js server.
 * @param options The longest wait for a PING's answer, and when the listeners have closed.
 */
export function drainOwnConnections(
  server: object,
  { pingWaitMs, listenersClosed }: {
    pingWaitMs: number;
    listenersClosed: Promise<void>;
  },
): void {
  const connections = connectionsOf.get(server);
  if (connections === undefined || connections.draining !== undefined) return;
  const draining = { pingWaitMs, fresh: new Set<Http2Connection>() };
  connections.draining = draining;
  listenersClosed.then(() => {
    for (const connection of connections.open) {
      if (draining.fresh.has(connection)) {
        connection.retireAfterFirstStreams(pingWaitMs);
      } else {
        connection.drain(pingWaitMs);
      }
    }
  });
}

/**
 * Closes every own connection of `server` at once, resetting the calls still open.
 *
 * @param server The grpc-js server.
 */
export function destroyOwnConnections(server: object): void {
  const connections = connectionsOf.get(server);
  if (connections === undefined) return;
  for (const connection of [...connections.open]) connection.destroy();
}
