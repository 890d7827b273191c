/**
 * `startServer`: one gRPC server hosting the three streaming services on one or more ports.
 *
 * @module
 */
import type * as grpc from "../internals/npm/grpc_js.ts";
import { setTimeout as delay } from "node:timers/promises";
import { MAX_TIMER_MS, MAX_UINT32 } from "../proto/limits.ts";
import {
  streamPackageDefinition,
  streamServices,
} from "../proto/definitions.ts";
import {
  healthPackageDefinition,
  reflectionPackageDefinition,
} from "../proto/standard.ts";
import { unstartedCallLogger } from "./call_starts.ts";
import { guardSessions } from "./session_guard.ts";
import { createHandlers, type StreamHandlers } from "./handlers.ts";
import type { FaultSwitch } from "./fault_plan.ts";
import { checkRules, checkSeed, type FaultRule } from "./fault_rules.ts";
import { FaultPlanner } from "./faults.ts";
import type { ServerLogger } from "./server_logger.ts";
import { createHealth, type Health } from "./health.ts";
import { createReflection } from "./reflection.ts";
import { shutDown } from "./server_close.ts";
import { serverCredentials, type ServerTlsOptions } from "./server_tls.ts";
import { ObservedServer } from "./telemetry.ts";
import { serveLeanCalls } from "./lean_calls.ts";
import { serveOwnHttp2 } from "./http2/own_connections.ts";
import { probeOf, type ServerProbe } from "./_testing.ts";
import { portSharingOf } from "./port_sharing.ts";
import { listenOnOwnSocket } from "../internals/grpc_js_listen.ts";
import { fastPathsOn, reportFallbacksTo } from "../internals/fast_paths.ts";
import { bind, hostPort } from "./server_bind.ts";

export type { ServerLogger } from "./server_logger.ts";
export type { FaultMethod, FaultRule } from "./fault_rules.ts";
export type { ServerTlsOptions } from "./server_tls.ts";

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
   * grpc-js leaves it unlimited. `Pow`, `Sum` and `Sqrt` are answered past grpc-js's per-call
   * machinery unless an option needs it: `"grpc.server_call_metric_recording"` sends every
   * call through grpc-js, and channelz does not count those calls (see docs/decisions.md).
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
  /**
   * Faults on request: the rules the server misbehaves by, for tests of how a client copes
   * (docs/faults.md). Given at all (even `[]`), it also makes the server obey the Envoy fault
   * headers a call sends (`x-envoy-fault-abort-grpc-request`, `x-envoy-fault-delay-request`
   * and their `…-percentage`); without it they are ignored.
   * {@linkcode StreamServer.setFaults} replaces the rules.
   *
   * @default {undefined} (no faults, fault headers ignored)
   */
  faults?: readonly FaultRule[];
  /**
   * The seed of the draws that pick the calls a rule with a `ratio` (or a header's
   * percentage) hits, an integer from 0 to 4,294,967,295: the same seed hits the same calls,
   * by the order they start. Without it the server draws a seed and says it as it starts
   * ({@linkcode StreamServer.faultSeed}, and a line on the logger).
   *
   * @default {undefined} (a random seed)
   */
  faultSeed?: number;
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
  /**
   * The seed of the fault draws ({@linkcode StartServerOptions.faultSeed}, or the one drawn
   * at start).
   */
  readonly faultSeed: number;
  /**
   * Replaces the server's fault rules, for the calls that start from now on; `[]` ends them.
   * The draws of `ratio` count calls from here again, so a test step replays the same way.
   * A server started without `faults` keeps ignoring the fault headers.
   *
   * @param rules The new rules.
   * @throws {TypeError} If a rule is malformed, naming the rule, the field and its value.
   * @throws {RangeError} If a rule's number is out of range, naming the same.
   */
  setFaults(rules: readonly FaultRule[]): void;
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

/** A grpc-js server with the services of {@linkcode startServer} added, not yet bound. */
interface HostedServices {
  server: ObservedServer;
  /** The options the grpc-js server was made with. */
  serverOptions: grpc.ServerOptions;
  handlers: StreamHandlers;
  health: Health | undefined;
}

/** Makes the grpc-js server and adds every service `options` asks for. */
function hostServices(
  options: StartServerOptions,
  limits: {
    maxPowCount: number;
    probe: ServerProbe | undefined;
    faults: FaultSwitch;
  },
): HostedServices {
  const serverOptions: grpc.ServerOptions = {
    "grpc.max_concurrent_streams": DEFAULT_MAX_CONCURRENT_STREAMS,
    ...options.channelOptions,
  };
  const server = new ObservedServer(serverOptions);
  const handlers = createHandlers({
    maxPowCount: limits.maxPowCount,
    logger: options.logger,
    logMessages: options.logMessages ?? true,
    probe: limits.probe,
    faults: limits.faults,
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
  return { server, serverOptions, handlers, health };
}

/**
 * Starts a gRPC server that hosts `stream.ServerStream/Pow`, `stream.ClientStream/Sum` and
 * `stream.BidirectionalStreamServer/Sqrt` (and the unary `stream.Single/Sqrt`) on every port
 * it is given, beside the standard health service and server reflection unless told
 * otherwise, over plaintext HTTP/2 or, with `tls`, over TLS.
 *
 * @param options Where to listen and how to behave; all optional.
 * @returns The running server, once every port is bound.
 * @throws {RangeError} If a port, a limit, a period, the fault seed or a fault rule's number
 * is out of range.
 * @throws {TypeError} If the TLS options are malformed, or require client certificates
 * without a CA to check them, or a fault rule is malformed.
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
  options?: StartServerOptions,
): Promise<StreamServer> {
  // Optional in the signature, so the documentation shows it so; `= {}` would not.
  options ??= {};
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

  const faultSeed = options.faultSeed === undefined
    ? Math.floor(Math.random() * 2 ** 32)
    : checkSeed(options.faultSeed);
  // Only a server started with `faults` obeys the headers: production never fails on a
  // client's say-so.
  const obeyHeaders = options.faults !== undefined;
  const faultLogger = options.logger;
  function plannerFor(rules: readonly FaultRule[]): FaultPlanner | undefined {
    const checked = checkRules(rules);
    if (checked.length === 0 && !obeyHeaders) return undefined;
    return new FaultPlanner(checked, {
      seed: faultSeed,
      headers: obeyHeaders,
      logger: faultLogger,
    });
  }
  const faults: FaultSwitch = {
    planner: options.faults === undefined
      ? undefined
      : plannerFor(options.faults),
  };

  const stopReporting = options.logger === undefined
    ? undefined
    : reportFallbacksTo(options.logger);
  // Read the switch now: a server that has it set says so as it starts, on its logger, and
  // is made with the fallbacks it then needs (see `ObservedServer`).
  fastPathsOn();
  // Only the tests and soak runs attach one (`_testing.ts`).
  const probe = probeOf(options);
  let hosted: HostedServices;
  try {
    hosted = hostServices(options, { maxPowCount, probe, faults });
  } catch (error) {
    stopReporting?.();
    throw error;
  }
  const { server, serverOptions, handlers, health } = hosted;
  const sharing = portSharingOf(options);
  if (sharing !== undefined) sharing.ownSocket = listenOnOwnSocket(server);
  const unstartedCall = options.logger === undefined
    ? undefined
    : unstartedCallLogger(options.logger);
  const ports: number[] = [];
  try {
    for (const port of requestedPorts) {
      ports.push(
        await bind(server, { address: hostPort(hostname, port), credentials }),
      );
      serveOwnHttp2(server, {
        serverOptions,
        handshakeTimeout,
        probe,
        unstartedCall,
      });
      guardSessions(server, { handshakeTimeout, unstartedCall, probe });
      serveLeanCalls(server, { serverOptions, probe });
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
  if (options.faults !== undefined) {
    options.logger?.info(
      `Faults on: ${options.faults.length} ${
        options.faults.length === 1 ? "rule" : "rules"
      }, fault seed ${faultSeed}`,
    );
  }
  return {
    hostname,
    port: ports[0]!,
    faultSeed,
    setFaults(rules: readonly FaultRule[]): void {
      faults.planner = plannerFor(rules);
    },
    ports,
    addresses: ports.map((port) => hostPort(hostname, port)),
    close,
    [Symbol.asyncDispose]: close,
  };
}
