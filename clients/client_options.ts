/**
 * What `createClient` and the one-call helpers take (`ClientOptions` and the types it names),
 * and the check of the options both transports share.
 *
 * @module
 */
import { MAX_TIMER_MS } from "../proto/limits.ts";
import { DEFAULT_MAX_RECEIVE_MESSAGE_BYTES } from "../proto/envelope.ts";
import {
  DEFAULT_BACKOFF_MULTIPLIER,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_INITIAL_BACKOFF_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_MAX_BACKOFF_MS,
} from "./channel_options.ts";
import type { ClientTlsOptions } from "./tls_options.ts";

/**
 * Which client carries the calls: `"http2"`, the module's own gRPC over `node:http2`, or
 * `"grpc-js"`, a `@grpc/grpc-js` client. See `docs/transports.md`.
 */
export type ClientTransport = "http2" | "grpc-js";

/**
 * grpc-js channel options (`grpc.ChannelOptions` of `@grpc/grpc-js`): names and values as
 * grpc-js documents them, such as `"grpc.service_config"` or `"grpc.keepalive_time_ms"`.
 */
export type GrpcJsChannelOptions = Record<string, unknown>;

/**
 * grpc-js channel credentials: a `ChannelCredentials` of `@grpc/grpc-js`, such as
 * `grpc.credentials.createSsl(ca)`, alone or combined with call credentials.
 */
export interface GrpcJsCredentials {
  /**
   * Combines the credentials with call credentials (`ChannelCredentials.compose` of
   * `@grpc/grpc-js`).
   *
   * @param callCredentials grpc-js call credentials.
   * @returns The combined credentials.
   */
  compose(callCredentials: never): GrpcJsCredentials;
}

/**
 * A grpc-js client interceptor (`Interceptor` of `@grpc/grpc-js`): a function of the call's
 * options and the next call, returning a `grpc.InterceptingCall`.
 */
export type GrpcJsInterceptor = (options: never, nextCall: never) => unknown;

/** Options for {@linkcode createClient}. */
export interface ClientOptions {
  /**
   * Which client carries the calls. `"http2"` is faster and never loses a reply before a
   * failure status; `"grpc-js"` adds what only grpc-js has: targets such as
   * `dns:///host:port`, `ipv4:a:p,b:p` and `unix:path`, load balancing and retries through a
   * service config, proxies, call credentials and interceptors (`channelOptions`,
   * `credentials`, `interceptors`).
   *
   * @default {"http2"}
   */
  transport?: ClientTransport;
  /**
   * grpc-js channel options, passed through as they are (for example
   * `"grpc.service_config"` with `round_robin` and a `retryPolicy`). Only with
   * `transport: "grpc-js"`. Unless set here, the transport uses a 16 KiB
   * `"grpc.per_rpc_retry_buffer_size"` (grpc-js's 1 MiB lets a client stream run far
   * ahead of the network) and a subchannel pool of its own
   * (`"grpc.use_local_subchannel_pool": 1`), so `close()` closes this client's connections.
   *
   * @default {{}}
   */
  channelOptions?: GrpcJsChannelOptions;
  /**
   * grpc-js channel credentials, for example `grpc.credentials.createSsl()` combined with
   * call credentials. Only with `transport: "grpc-js"`, and not together with `tls`.
   *
   * @default {Insecure, or TLS as `tls` says}
   */
  credentials?: GrpcJsCredentials;
  /**
   * grpc-js client interceptors, run on every call, outermost first. Only with
   * `transport: "grpc-js"`.
   *
   * @default {[]}
   */
  interceptors?: GrpcJsInterceptor[];
  /**
   * The largest reply message accepted, in bytes; a larger one ends the call with
   * `RESOURCE_EXHAUSTED`.
   *
   * @default {4_194_304}
   */
  maxReceiveMessageBytes?: number;
  /**
   * The largest request message sent, in bytes; a larger one ends its call with
   * `RESOURCE_EXHAUSTED` before it is sent. Unlimited by default, as in grpc-js.
   *
   * @default {Infinity}
   */
  maxSendMessageBytes?: number;
  /**
   * Send an HTTP/2 PING every this many milliseconds while calls are in flight, so that a
   * connection the server can no longer answer on (a peer that vanished, a dropped route)
   * ends its calls with `UNAVAILABLE` instead of leaving them waiting. Off by default, as in
   * grpc-js; servers limit how often they accept pings (grpc-go: not more often than every
   * 5 minutes unless told otherwise), so keep it at minutes against servers you do not run.
   *
   * @default {undefined} (no keepalive pings)
   */
  keepaliveMs?: number;
  /**
   * How long a keepalive PING may go unanswered before the connection counts as lost.
   *
   * @default {20_000}
   */
  keepaliveTimeoutMs?: number;
  /**
   * How long a connection attempt may take, in milliseconds: the TCP connection, the TLS
   * handshake and the server's first HTTP/2 SETTINGS frame together. A peer that accepts the
   * connection and then says nothing (a hung process, the wrong port, a firewall that
   * swallows data) fails the calls on it with `UNAVAILABLE` once it runs out, as grpc-go and
   * C-core do with the same default. The attempt counts as failed: the next one waits its
   * backoff.
   *
   * @default {20_000}
   */
  connectTimeoutMs?: number;
  /**
   * Whether calls made while the client is connecting or waiting to dial again after a
   * failed attempt wait for the connection (within their deadline) instead of failing at
   * once with `UNAVAILABLE`: gRPC's wait-for-ready, for every call that does not say
   * otherwise (see {@linkcode CallOptions.waitForReady}). Give such calls a deadline: one
   * without waits as long as the server is down.
   *
   * @default {false}
   */
  waitForReady?: boolean;
  /**
   * The delay after a failed connection attempt before the next one, in milliseconds
   * (gRPC's connection backoff). Each further failure makes it `backoffMultiplier` times
   * longer, up to `maxBackoffMs`, with ±20% jitter; a connection resets it.
   *
   * @default {1_000}
   */
  initialBackoffMs?: number;
  /**
   * How much longer each backoff delay is than the one before, at least 1. Only the default
   * over `transport: "grpc-js"`, whose backoff multiplier is fixed.
   *
   * @default {1.6}
   */
  backoffMultiplier?: number;
  /**
   * The longest backoff delay between two connection attempts, in milliseconds.
   *
   * @default {120_000}
   */
  maxBackoffMs?: number;
  /**
   * Connect over TLS: `true` to trust Deno's default root store, or the CA to trust and,
   * for mutual TLS, the client's certificate. A server that cannot be verified ends each
   * call with `UNAVAILABLE`.
   *
   * @default {false}
   */
  tls?: boolean | ClientTlsOptions;
}

/** A client's options, checked, with the defaults filled in where both transports share them. */
export interface CheckedClientOptions extends ConnectionSettings {
  /** Which client carries the calls. */
  transport: ClientTransport;
  /** The largest reply message accepted, in bytes. */
  maxReceiveMessageBytes: number;
  /** The largest request message sent, in bytes; `undefined` is no limit. */
  maxSendMessageBytes: number | undefined;
  /** How often to ping while calls are in flight; `undefined` sends no pings. */
  keepaliveMs: number | undefined;
  /** How long a ping may go unanswered. */
  keepaliveTimeoutMs: number;
}

/**
 * Checks the options both transports take, and fills in their defaults. What only one
 * transport takes (TLS, grpc-js's credentials) is checked where that transport is set up.
 *
 * @param options The options as the caller gave them.
 * @returns The checked options.
 * @throws {TypeError} If `transport` or `waitForReady` is malformed.
 * @throws {RangeError} If a limit, a timeout or a backoff is out of range.
 */
export function checkClientOptions(
  options: ClientOptions,
): CheckedClientOptions {
  const { transport = "http2" } = options;
  if (transport !== "http2" && transport !== "grpc-js") {
    throw new TypeError(
      `Transport must be "http2" or "grpc-js": ${String(transport)}`,
    );
  }
  const maxReceiveMessageBytes = options.maxReceiveMessageBytes ??
    DEFAULT_MAX_RECEIVE_MESSAGE_BYTES;
  if (!Number.isInteger(maxReceiveMessageBytes) || maxReceiveMessageBytes < 0) {
    throw new RangeError(
      `Max receive message bytes must be an integer >= 0: ${maxReceiveMessageBytes}`,
    );
  }
  const { maxSendMessageBytes, keepaliveMs, keepaliveTimeoutMs } = options;
  checkLimit(maxSendMessageBytes, "Max send message bytes");
  checkLimit(keepaliveMs, "Keepalive ms", { min: 1 });
  checkLimit(keepaliveTimeoutMs, "Keepalive timeout ms", { min: 1 });
  return {
    transport,
    maxReceiveMessageBytes,
    maxSendMessageBytes,
    keepaliveMs,
    keepaliveTimeoutMs: keepaliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS,
    ...checkConnectionOptions(options),
  };
}

/** The least value {@linkcode checkLimit} accepts. */
interface LimitOptions {
  /**
   * The least value accepted.
   *
   * @default {0}
   */
  min?: number;
}

/** Checks an optional whole-number option: `undefined`, `Infinity` or an integer >= `min`. */
function checkLimit(
  value: unknown,
  name: string,
  { min = 0 }: LimitOptions = {},
): void {
  if (value === undefined || value === Infinity) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}: ${value}`);
  }
}

/** How a client connects and reconnects, checked, with the defaults filled in. */
interface ConnectionSettings {
  connectTimeoutMs: number;
  waitForReady: boolean;
  initialBackoffMs: number;
  backoffMultiplier: number;
  maxBackoffMs: number;
}

/** Checks `timeout`: a whole number of milliseconds a timer can wait, or `Infinity`. */
function checkTimerMs(value: unknown, name: string): void {
  if (value === Infinity) return;
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < 1 ||
    value > MAX_TIMER_MS
  ) {
    throw new RangeError(
      `${name} must be an integer from 1 to ${MAX_TIMER_MS}, or Infinity: ${value}`,
    );
  }
}

function checkConnectionOptions(options: ClientOptions): ConnectionSettings {
  const {
    connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS,
    waitForReady = false,
    initialBackoffMs = DEFAULT_INITIAL_BACKOFF_MS,
    backoffMultiplier = DEFAULT_BACKOFF_MULTIPLIER,
    maxBackoffMs = DEFAULT_MAX_BACKOFF_MS,
  } = options;
  checkTimerMs(connectTimeoutMs, "Connect timeout ms");
  if (typeof waitForReady !== "boolean") {
    throw new TypeError(
      `Wait for ready must be a boolean: ${typeof waitForReady}`,
    );
  }
  for (
    const [value, name] of [
      [initialBackoffMs, "Initial backoff ms"],
      [maxBackoffMs, "Max backoff ms"],
    ] as const
  ) {
    if (
      typeof value !== "number" || !Number.isInteger(value) || value < 1 ||
      value > MAX_TIMER_MS
    ) {
      throw new RangeError(
        `${name} must be an integer from 1 to ${MAX_TIMER_MS}: ${value}`,
      );
    }
  }
  if (maxBackoffMs < initialBackoffMs) {
    throw new RangeError(
      `Max backoff ms must be at least the initial backoff ms: ${maxBackoffMs} < ${initialBackoffMs}`,
    );
  }
  if (
    typeof backoffMultiplier !== "number" ||
    !Number.isFinite(backoffMultiplier) || backoffMultiplier < 1
  ) {
    throw new RangeError(
      `Backoff multiplier must be a finite number >= 1: ${backoffMultiplier}`,
    );
  }
  return {
    connectTimeoutMs,
    waitForReady,
    initialBackoffMs,
    backoffMultiplier,
    maxBackoffMs,
  };
}
