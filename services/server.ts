/**
 * `startServer`: one gRPC server hosting the three streaming services on one or more ports.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { setTimeout as delay } from "node:timers/promises";
import { MAX_TIMER_MS, MAX_UINT32 } from "../proto/limits.ts";
import { pemBuffer } from "../proto/pem.ts";
import {
  streamPackageDefinition,
  streamServices,
} from "../proto/definitions.ts";
import {
  healthPackageDefinition,
  reflectionPackageDefinition,
} from "../proto/standard.ts";
import type { UnstartedCallReporter } from "./call_starts.ts";
import { guardSessions } from "./session_guard.ts";
import { createHandlers } from "./handlers.ts";
import type { ServerLogger } from "./server_logger.ts";
import { createHealth, type Health } from "./health.ts";
import { createReflection } from "./reflection.ts";
import { drainSessions } from "./session_drain.ts";
import { ObservedServer } from "./telemetry.ts";
import { fastPathsOn, reportFallbacksTo } from "../internals/fast_paths.ts";

export type { ServerLogger } from "./server_logger.ts";

/** TLS settings of a server: its certificate, and optionally the CA of client certificates. */
export interface ServerTlsOptions {
  /**
   * The server's certificate chain in PEM: its own certificate first, then any intermediate
   * certificates. Clients check it against the name or IP address they connect to.
   */
  cert: string | Uint8Array;
  /** The private key of `cert`, in PEM. */
  key: string | Uint8Array;
  /**
   * CA certificates in PEM that client certificates must chain to. With it, every client
   * must present such a certificate (mutual TLS), unless `requireClientCert` is `false`.
   *
   * @default {undefined}
   */
  ca?: string | Uint8Array;
  /**
   * Whether a client must present a certificate signed by `ca`; a client without one cannot
   * connect. `true` needs `ca`; `false` serves plain TLS even when `ca` is set.
   *
   * @default {true when `ca` is set, otherwise false}
   */
  requireClientCert?: boolean;
}

/** Options for {@linkcode startServer}. */
export interface StartServerOptions {
  /**
   * The address to listen on. Use `"0.0.0.0"` or `"::"` to accept connections from other
   * machines.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The port, or several ports that each serve all three services. `0` picks a free port.
   *
   * @default {0}
   */
  port?: number | readonly number[];
  /**
   * The largest `count` a `Pow` call may ask for; larger requests end with
   * `INVALID_ARGUMENT` before any message.
   *
   * @default {1_000_000}
   */
  maxPowCount?: number;
  /**
   * Where the handlers write what they receive and why calls fail. `console` prints the
   * lines of the original Go demo's servers.
   *
   * @default {undefined} (silent)
   */
  logger?: ServerLogger;
  /**
   * Whether the logger gets a line for every message received, as the Go demo's servers
   * print (`Recved 3`, `Recv Data:2`), or only the lines about calls: one where each starts
   * (`Sum called by 127.0.0.1:40214`) and one for how it ended (`Sum completed: 6`, a
   * cancellation, a failure). Cancellations and failures are logged either way.
   *
   * @default {true}
   */
  logMessages?: boolean;
  /**
   * How long {@linkcode StreamServer.close} lets calls in flight finish before it ends them
   * with `UNAVAILABLE`, in milliseconds, from 0 to 2,147,483,647 (the longest a timer waits).
   * Calls ended that way get up to one more second to deliver their status before the
   * connections are closed, so `close()` can take up to `gracePeriod + 1000` ms.
   *
   * @default {5_000}
   */
  gracePeriod?: number;
  /**
   * How long {@linkcode StreamServer.close} goes on answering new calls after it has set the
   * health status to `NOT_SERVING`, in milliseconds, so that load balancers and health probes
   * (`Check`) see the server leave before it stops accepting calls. From 0 to 2,147,483,647.
   *
   * @default {0}
   */
  drainPeriod?: number;
  /**
   * How long a new connection may take to complete the HTTP/2 handshake (the client's
   * connection preface and SETTINGS) before the server closes it, in milliseconds; 0 waits
   * forever. Keeps connections that never speak from piling up.
   *
   * @default {10_000}
   */
  handshakeTimeout?: number;
  /**
   * Options handed to the grpc-js server, such as `"grpc.max_receive_message_length"` or
   * `"grpc.keepalive_time_ms"`. `"grpc.max_concurrent_streams"` (how many calls one
   * connection may have open at once; clients queue the rest) defaults to 100 here, where
   * grpc-js leaves it unlimited.
   *
   * @default {{"grpc.max_concurrent_streams": 100}}
   */
  channelOptions?: Readonly<Record<string, string | number>>;
  /**
   * Serve over TLS with this certificate (and, with `ca`, require client certificates).
   * Without it the server speaks plaintext HTTP/2 (h2c), as the original Go demo did.
   *
   * @default {undefined}
   */
  tls?: ServerTlsOptions;
  /**
   * Whether to host gRPC server reflection (`grpc.reflection.v1.ServerReflection` and
   * `v1alpha`), describing every hosted service, so that tools such as `buf curl` and
   * `grpcurl` can list and call them without the `.proto` files.
   *
   * @default {true}
   */
  reflection?: boolean;
  /**
   * Whether to host the standard health service `grpc.health.v1.Health`. It answers
   * `SERVING` for `""` (the whole server) and for each hosted service, and `NOT_SERVING` to
   * its `Watch` calls once {@linkcode StreamServer.close} begins.
   *
   * @default {true}
   */
  health?: boolean;
}

/** A running server, returned by {@linkcode startServer}. */
export interface StreamServer extends AsyncDisposable {
  /** The address the server listens on. */
  readonly hostname: string;
  /** The first bound port, the one to use when there is only one. */
  readonly port: number;
  /** Every bound port, in the order they were asked for. */
  readonly ports: readonly number[];
  /** `host:port` for every bound port, ready for `createClient`. */
  readonly addresses: readonly string[];
  /**
   * Sets the health status to `NOT_SERVING`, answers calls for the drain period, then stops
   * accepting calls, lets calls in flight finish for the grace period, and ends whatever is
   * left with `UNAVAILABLE`. Calling it again returns the same promise.
   *
   * @returns A promise that settles once the server is closed.
   */
  close(): Promise<void>;
}

const DEFAULT_HOSTNAME = "127.0.0.1";
const DEFAULT_MAX_POW_COUNT = 1_000_000;
/**
 * How long {@linkcode StreamServer.close} lets calls in flight finish when
 * {@linkcode StartServerOptions.gracePeriod} is not given, in milliseconds.
 *
 * @example Give a process supervisor's stop timeout room for a graceful close
 * ```ts
 * import { DEFAULT_GRACE_PERIOD_MS } from "@streamrpc/grpc-stream";
 *
 * // close() takes up to the grace period plus 1 s for the last statuses.
 * const seconds = Math.ceil((DEFAULT_GRACE_PERIOD_MS + 1_000) / 1_000) + 1;
 * console.log(`TimeoutStopSec=${seconds}`); // TimeoutStopSec=7
 * ```
 */
export const DEFAULT_GRACE_PERIOD_MS: number = 5_000;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_CONCURRENT_STREAMS = 100;

/** `stream.ServerStream` from the path of the service's method. */
function serviceName(service: grpc.ServiceDefinition): string {
  const [method] = Object.values(service);
  return method!.path.split("/")[1]!;
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(`Port must be an integer from 0 to 65535: ${port}`);
  }
  return port;
}

/** A delay in ms that a timer can honour: setTimeout fires at once past 2^31-1. */
function checkDelay(value: number, what: string): number {
  if (!Number.isFinite(value) || value < 0 || value > MAX_TIMER_MS) {
    throw new RangeError(
      `${what} must be a number of ms from 0 to ${MAX_TIMER_MS}: ${value}`,
    );
  }
  return value;
}

function hostPort(hostname: string, port: number): string {
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

function bind(
  server: grpc.Server,
  { address, credentials }: {
    address: string;
    credentials: grpc.ServerCredentials;
  },
): Promise<number> {
  // grpc-js meets a missing permission as an exception outside any callback, which would end
  // the process; asking first turns it into an error the caller can handle.
  if (
    Deno.permissions.querySync({ name: "net", host: address }).state !==
      "granted"
  ) {
    return Promise.reject(
      new Error(
        `Cannot listen on ${address}: Deno has no net permission for it`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => {
      if (error) {
        reject(
          new Error(`Cannot listen on ${address}: ${error.message}`, {
            cause: error,
          }),
        );
      } else {
        resolve(port);
      }
    });
  });
}

/**
 * The grpc-js credentials for `tls`.
 *
 * grpc-js wants `Buffer`s. When it is given no client CA, it falls back to the CA bundle named
 * by `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` and hands it to `node:tls` as `ca`; Deno's `node:tls`
 * then sends every one of those certificates to each client along with the server's own
 * chain, and OpenSSL-based clients (grpc-js under Node, gRPC C-core, `openssl s_client`) refuse
 * a Certificate message that large (`excessive message size`). Without a client CA, an empty
 * `ca` keeps the chain to what `cert` holds.
 */
function serverCredentials(
  tls: ServerTlsOptions | undefined,
): grpc.ServerCredentials {
  if (tls === undefined) return grpc.ServerCredentials.createInsecure();
  if (typeof tls !== "object" || tls === null) {
    throw new TypeError("TLS options must be an object");
  }
  const cert = pemBuffer(tls.cert, "TLS certificate");
  const key = pemBuffer(tls.key, "TLS key");
  const requireClientCert = tls.requireClientCert ?? tls.ca !== undefined;
  if (requireClientCert && tls.ca === undefined) {
    throw new TypeError(
      "Requiring client certificates needs the CA that signs them: tls.ca",
    );
  }
  const clientCa = requireClientCert
    ? pemBuffer(tls.ca, "TLS client CA")
    : Buffer.alloc(0);
  return grpc.ServerCredentials.createSsl(
    clientCa,
    [{ cert_chain: cert, private_key: key }],
    requireClientCert,
  );
}

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
 */
function shutDown(
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
  return new Promise((resolve) => {
    let forceTimer: ReturnType<typeof setTimeout> | undefined;
    const graceTimer = setTimeout(() => {
      endRunningCalls();
      forceTimer = setTimeout(() => server.forceShutdown(), STATUS_DELIVERY_MS);
    }, gracePeriod);
    server.tryShutdown(() => {
      clearTimeout(graceTimer);
      clearTimeout(forceTimer);
      drain.stop();
      resolve();
    });
  });
}

/**
 * The line for a call that ended before grpc-js ran its handler: cancelled or cut off calls as
 * info, as the handlers log theirs, and calls grpc-js failed as a warning.
 */
function unstartedCallLogger(logger: ServerLogger): UnstartedCallReporter {
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

/**
 * Starts a gRPC server that hosts `stream.ServerStream/Pow`, `stream.ClientStream/Sum` and
 * `stream.BidirectionalStreamServer/Sqrt` (and the unary `stream.Single/Sqrt`) on every port
 * it is given, beside the standard health service and server reflection unless told
 * otherwise, over plaintext HTTP/2 or, with `tls`, over TLS.
 *
 * @param options Where to listen and how to behave; all optional.
 * @returns The running server, once every port is bound.
 * @throws {RangeError} If a port, a limit or a period is out of range.
 * @throws {TypeError} If the TLS options are malformed, or require client certificates
 * without a CA to check them.
 * @throws {Error} If a port cannot be bound (it is in use, or Deno lacks the net
 * permission for it).
 *
 * @example Serve on a free port and call it
 * ```ts
 * import { createClient, startServer } from "@streamrpc/grpc-stream";
 * import { strictEqual } from "node:assert";
 *
 * await using server = await startServer({ port: 0 });
 * using client = createClient(server.addresses[0]!);
 * strictEqual(await client.sum([1, 2, 3]), 6n);
 * ```
 */
export async function startServer(
  options: StartServerOptions = {},
): Promise<StreamServer> {
  const hostname = options.hostname ?? DEFAULT_HOSTNAME;
  const requestedPorts =
    typeof options.port === "number" || options.port === undefined
      ? [options.port ?? 0]
      : [...options.port];
  if (requestedPorts.length === 0) {
    throw new RangeError("Port list must not be empty");
  }
  requestedPorts.forEach(checkPort);
  const maxPowCount = options.maxPowCount ?? DEFAULT_MAX_POW_COUNT;
  if (
    !Number.isInteger(maxPowCount) || maxPowCount < 1 ||
    maxPowCount > MAX_UINT32
  ) {
    throw new RangeError(
      `Max pow count must be an integer from 1 to ${MAX_UINT32}: ${maxPowCount}`,
    );
  }
  const drainPeriod = checkDelay(options.drainPeriod ?? 0, "Drain period");
  const gracePeriod = checkDelay(
    options.gracePeriod ?? DEFAULT_GRACE_PERIOD_MS,
    "Grace period",
  );
  const handshakeTimeout = checkDelay(
    options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    "Handshake timeout",
  );

  const credentials = serverCredentials(options.tls);

  const server = new ObservedServer({
    "grpc.max_concurrent_streams": DEFAULT_MAX_CONCURRENT_STREAMS,
    ...options.channelOptions,
  });
  const handlers = createHandlers({
    maxPowCount,
    logger: options.logger,
    logMessages: options.logMessages ?? true,
  });
  server.addService(streamServices.serverStream, handlers.serverStream);
  server.addService(streamServices.clientStream, handlers.clientStream);
  server.addService(
    streamServices.bidirectionalStream,
    handlers.bidirectionalStream,
  );
  server.addService(streamServices.single, handlers.single);
  let health: Health | undefined;
  if (options.health ?? true) {
    health = createHealth(
      Object.values(streamServices).map((service) => serviceName(service)),
    );
    server.addService(health.service, health.handlers);
  }
  if (options.reflection ?? true) {
    const described = {
      ...streamPackageDefinition,
      ...(health === undefined ? {} : healthPackageDefinition),
      ...reflectionPackageDefinition,
    };
    for (const { service, handlers } of createReflection(described)) {
      server.addService(service, handlers);
    }
  }

  const stopReporting = options.logger === undefined
    ? undefined
    : reportFallbacksTo(options.logger);
  // Read the switch now: a server that has it set says so as it starts, on its logger.
  fastPathsOn();
  const unstartedCall = options.logger === undefined
    ? undefined
    : unstartedCallLogger(options.logger);
  const ports: number[] = [];
  try {
    for (const port of requestedPorts) {
      ports.push(
        await bind(server, { address: hostPort(hostname, port), credentials }),
      );
      guardSessions(server, { handshakeTimeout, unstartedCall });
    }
  } catch (error) {
    stopReporting?.();
    server.forceShutdown();
    throw error;
  }

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    if (closing === undefined) {
      // Tell health watchers first, then end their calls, which would otherwise hold the
      // shutdown up for the whole grace period.
      health?.setAll("NOT_SERVING");
      health?.endWatches();
      closing = delay(drainPeriod).then(() =>
        shutDown(server, {
          gracePeriod,
          endRunningCalls: handlers.endRunningCalls,
        })
      ).finally(() => stopReporting?.());
    }
    return closing;
  }
  return {
    hostname,
    port: ports[0]!,
    ports,
    addresses: ports.map((port) => hostPort(hostname, port)),
    close,
    [Symbol.asyncDispose]: close,
  };
}
