/**
 * `createClient` and the one-call helpers `pow`, `sum` and `sqrt`.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import net from "node:net";
import {
  INT64_MAX,
  INT64_MIN,
  MAX_TIMER_MS,
  MAX_UINT32,
} from "../proto/limits.ts";
import { checkPem, pemBuffer } from "../proto/pem.ts";
import { parseAddress } from "./address.ts";
import { streamMethods } from "../proto/definitions.ts";
import { type CallOptions, prepareCall } from "./call_options.ts";
import { Channel } from "./channel.ts";
import {
  type ChannelTls,
  DEFAULT_BACKOFF_MULTIPLIER,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_INITIAL_BACKOFF_MS,
  DEFAULT_MAX_BACKOFF_MS,
} from "./channel_options.ts";
import { DEFAULT_MAX_RECEIVE_MESSAGE_BYTES } from "../proto/envelope.ts";
import { GrpcError, Status } from "./grpc_error.ts";
import { GrpcJsChannel } from "./grpc_js_channel.ts";
import { errorFromStatus, ReplyIterator, writeAll } from "./streams.ts";
import type { CallStatus, Transport } from "./transport.ts";

export type { CallOptions, MetadataInit } from "./call_options.ts";
export { DEFAULT_CONNECT_TIMEOUT_MS } from "./channel_options.ts";

/** Options for {@linkcode StreamClient.pow}. */
export interface PowOptions extends CallOptions {
  /**
   * How many powers to receive: `base^0` through `base^(count - 1)`.
   *
   * @default {10}
   */
  count?: number;
}

/** How a client checks the server's certificate, and the client's own for mutual TLS. */
export interface ClientTlsOptions {
  /**
   * CA certificates in PEM to trust for the server's certificate, instead of Deno's default
   * root store (which `--cert` and `DENO_TLS_CA_STORE` also adjust).
   *
   * @default {undefined}
   */
  ca?: string | Uint8Array;
  /**
   * The client's certificate chain in PEM, for a server that requires client certificates
   * (mutual TLS). Needs `key`.
   *
   * @default {undefined}
   */
  cert?: string | Uint8Array;
  /**
   * The private key of `cert`, in PEM.
   *
   * @default {undefined}
   */
  key?: string | Uint8Array;
  /**
   * The name the server's certificate must be valid for, when it differs from the host of
   * the address (for example when calling by IP address a server whose certificate names
   * only its host name).
   *
   * @default {The host of the address}
   */
  serverName?: string;
}

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
  /** Whether the credentials make a TLS connection (grpc-js's own method). */
  _isSecure(): boolean;
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

/** The numbers `sum` adds: any iterable or async iterable of integers. */
export type Int64Source =
  | Iterable<bigint | number>
  | AsyncIterable<bigint | number>;

/** The numbers `sqrt` answers: any iterable or async iterable of numbers. */
export type NumberSource = Iterable<number> | AsyncIterable<number>;

/** A connection to a grpc-stream server (or the original Go demo's), shared by every call. */
export interface StreamClient extends Disposable {
  /** The `host:port` (or, over grpc-js, the target) this client calls. */
  readonly address: string;
  /**
   * Streams the powers of `base` from `stream.ServerStream/Pow`.
   *
   * @param base The base, an int64.
   * @param options The count, cancellation, deadline and metadata.
   * @returns The powers `base^0`, `base^1`, … as bigints, as they arrive.
   * @throws {RangeError} If `base` is not an int64 or `count` is not an integer from 1 to
   * 4294967295.
   */
  pow(
    base: bigint | number,
    options?: PowOptions,
  ): AsyncIterableIterator<bigint>;
  /**
   * Streams `numbers` to `stream.ClientStream/Sum` and resolves to their exact sum.
   *
   * @param numbers The addends, each an int64.
   * @param options Cancellation, deadline and metadata.
   * @returns The sum; it rejects with a {@linkcode GrpcError} (`OUT_OF_RANGE` when the sum does
   * not fit in int64) or with a `RangeError` for a number that is not an int64.
   */
  sum(numbers: Int64Source, options?: CallOptions): Promise<bigint>;
  /**
   * Streams `numbers` to `stream.BidirectionalStreamServer/Sqrt` and yields each square root
   * as soon as it arrives.
   *
   * @param numbers The numbers; a negative one or `NaN` ends the call with `INVALID_ARGUMENT`.
   * @param options Cancellation, deadline and metadata.
   * @returns The square roots, in order.
   */
  sqrt(
    numbers: NumberSource,
    options?: CallOptions,
  ): AsyncIterableIterator<number>;
  /** Closes the connection once the calls in flight have ended. */
  close(): void;
}

/**
 * Checks that `value` is an int64.
 *
 * @param value A bigint, or a number that is a safe integer.
 * @param what What the value is, for the error message.
 * @returns The value as a bigint.
 */
function toInt64(value: bigint | number, what: string): bigint {
  if (typeof value === "bigint") {
    if (value < INT64_MIN || value > INT64_MAX) {
      throw new RangeError(`${what} does not fit in int64: ${value}`);
    }
    return value;
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new RangeError(
        `${what} must be a safe integer or a bigint: ${value}`,
      );
    }
    return BigInt(value);
  }
  throw new TypeError(`${what} must be a bigint or a number: ${typeof value}`);
}

function toPowCount(count: number | undefined): number {
  if (count === undefined) return 10;
  if (!Number.isInteger(count) || count < 1 || count > MAX_UINT32) {
    throw new RangeError(
      `Count must be an integer from 1 to ${MAX_UINT32}: ${count}`,
    );
  }
  return count;
}

function checkSource(numbers: unknown): void {
  if (
    typeof numbers !== "object" || numbers === null ||
    (typeof (numbers as Iterable<unknown>)[Symbol.iterator] !== "function" &&
      typeof (numbers as AsyncIterable<unknown>)[Symbol.asyncIterator] !==
        "function")
  ) {
    throw new TypeError("Numbers must be an iterable or an async iterable");
  }
}

function decodePow(message: Buffer): bigint {
  return streamMethods.pow.deserializeReply(message).number;
}

function decodeSqrt(message: Buffer): number {
  return streamMethods.sqrt.deserializeReply(message).sqrt;
}

function encodeSum(value: bigint | number, index: number): Uint8Array {
  return streamMethods.sum.serializeRequest({
    number: toInt64(value, `Number at index ${index}`),
  });
}

function encodeSqrt(value: number, index: number): Uint8Array {
  if (typeof value !== "number") {
    throw new TypeError(
      `Number at index ${index} must be a number: ${typeof value}`,
    );
  }
  return streamMethods.sqrt.serializeRequest({ number: value });
}

/** The connection a call goes over, and who is told when the call has ended. */
interface CallTarget {
  /** The connection. */
  channel: Transport;
  /**
   * Runs once the call has ended; a one-call helper closes its connection there.
   *
   * @default {nothing}
   */
  onFinish?: () => void;
}

function callPow(
  { channel, onFinish = nothing }: CallTarget,
  base: bigint | number,
  options: PowOptions = {},
): AsyncIterableIterator<bigint> {
  const request = streamMethods.pow.serializeRequest({
    number: toInt64(base, "Base"),
    count: toPowCount(options.count),
  });
  const { headers, deadline, signal, waitForReady } = prepareCall(options);
  return new ReplyIterator<bigint>(
    (listener) => {
      const call = channel.startCall(streamMethods.pow.path, {
        headers,
        deadline,
        waitForReady,
        listener,
      });
      call.write(request);
      call.end();
      return call;
    },
    { decode: decodePow, signal, onFinish },
  );
}

function callSum(
  channel: Transport,
  numbers: Int64Source,
  options: CallOptions = {},
): Promise<bigint> {
  checkSource(numbers);
  const { headers, deadline, signal, waitForReady } = prepareCall(options);
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    let settled = false;
    let reply: Buffer | undefined;
    function settle(error: unknown, total?: bigint): void {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      if (error === undefined) resolve(total!);
      else reject(error);
    }
    function onAbort(): void {
      settle(signal?.reason);
      call.cancel();
    }
    const call = channel.startCall(streamMethods.sum.path, {
      headers,
      deadline,
      waitForReady,
      listener: {
        onMessage(message: Buffer): void {
          // Sum has one reply; grpc-js ends a call that gets more the same way.
          if (reply !== undefined) {
            call.cancel(Status.UNIMPLEMENTED, "Too many responses received");
          }
          reply = message;
        },
        onStatus(status: CallStatus): void {
          if (status.code !== Status.OK) {
            settle(errorFromStatus(status));
          } else if (reply === undefined) {
            settle(
              new GrpcError(Status.INTERNAL, "Server sent no reply to Sum"),
            );
          } else {
            try {
              settle(undefined, streamMethods.sum.deserializeReply(reply).sum);
            } catch (error) {
              settle(
                new GrpcError(
                  Status.INTERNAL,
                  "Cannot decode the reply to Sum",
                  {
                    cause: error,
                  },
                ),
              );
            }
          }
        },
      },
    });
    signal?.addEventListener("abort", onAbort, { once: true });
    writeAll(call, { values: numbers, encode: encodeSum }).catch(
      (error: unknown) => {
        settle(error);
        call.cancel();
      },
    );
  });
}

function callSqrt(
  { channel, onFinish = nothing }: CallTarget,
  numbers: NumberSource,
  options: CallOptions = {},
): AsyncIterableIterator<number> {
  checkSource(numbers);
  const { headers, deadline, signal, waitForReady } = prepareCall(options);
  return new ReplyIterator<number>(
    (listener, iterator) => {
      const call = channel.startCall(streamMethods.sqrt.path, {
        headers,
        deadline,
        waitForReady,
        listener,
      });
      writeAll(call, { values: numbers, encode: encodeSqrt }).catch((
        error: unknown,
      ) => iterator.fail(error));
      return call;
    },
    { decode: decodeSqrt, signal, onFinish },
  );
}

function nothing(): void {}

function toChannelTls(tls: ClientOptions["tls"]): ChannelTls | undefined {
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return {};
  if (typeof tls !== "object" || tls === null) {
    throw new TypeError(
      `TLS options must be a boolean or an object: ${
        tls === null ? "null" : typeof tls
      }`,
    );
  }
  checkPem(tls.ca, "TLS CA");
  checkPem(tls.cert, "TLS certificate");
  checkPem(tls.key, "TLS key");
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError(
      "TLS client certificate and key go together: set both cert and key",
    );
  }
  if (
    tls.serverName !== undefined &&
    (typeof tls.serverName !== "string" || tls.serverName === "")
  ) {
    throw new TypeError(
      `TLS server name must be a non-empty string: ${tls.serverName}`,
    );
  }
  return {
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    serverName: tls.serverName,
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

/** The target schemes of grpc-js's own resolvers, and what must follow each. */
const TARGET_SCHEMES = /^(dns|ipv4|ipv6|unix|unix-abstract):(.+)$/;

function isHostPort(address: string): boolean {
  try {
    parseAddress(address);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether grpc-js can dial `target`: `host:port`, `[ipv6]:port`, or one of grpc-js's own
 * schemes (`dns:[//authority/]host:port`, `ipv4:` or `ipv6:` with a comma-separated list of
 * addresses and ports, `unix:path`, `unix-abstract:name`). grpc-js itself takes almost any
 * string and fails each call later; a typo is better caught here.
 */
function isGrpcJsTarget(target: unknown): boolean {
  if (typeof target !== "string" || /\s/.test(target)) return false;
  if (isHostPort(target)) return true;
  const match = TARGET_SCHEMES.exec(target);
  if (match === null) return false;
  const [, scheme, rest] = match as unknown as [string, string, string];
  switch (scheme) {
    case "dns":
      return isHostPort(rest.replace(/^\/\/[^/]*\//, ""));
    case "ipv4":
    case "ipv6":
      return rest.split(",").every((entry) => {
        const host = entry.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
        return isHostPort(entry) &&
          net.isIP(host) === (scheme === "ipv4" ? 4 : 6);
      });
    default:
      return true;
  }
}

function openGrpcJsChannel(
  target: string,
  options:
    & ClientOptions
    & ConnectionSettings
    & { maxReceiveMessageBytes: number },
): GrpcJsChannel {
  if (!isGrpcJsTarget(target)) {
    throw new TypeError(
      `Target must be "host:port", "[ipv6]:port", "dns:[//authority/]host:port", "ipv4:a:p[,b:p]", "ipv6:[a]:p[,[b]:p]", "unix:path" or "unix-abstract:name": ${target}`,
    );
  }
  const { channelOptions = {}, credentials, interceptors = [] } = options;
  if (typeof channelOptions !== "object" || channelOptions === null) {
    throw new TypeError(
      `Channel options must be an object: ${
        channelOptions === null ? "null" : typeof channelOptions
      }`,
    );
  }
  if (
    credentials !== undefined &&
    !(credentials instanceof grpc.ChannelCredentials)
  ) {
    throw new TypeError("Credentials must be grpc-js ChannelCredentials");
  }
  if (credentials !== undefined && options.tls !== undefined) {
    throw new TypeError("Set either tls or credentials, not both");
  }
  if (
    !Array.isArray(interceptors) ||
    interceptors.some((interceptor) => typeof interceptor !== "function")
  ) {
    throw new TypeError("Interceptors must be an array of functions");
  }
  const tls = toChannelTls(options.tls);
  if (options.backoffMultiplier !== DEFAULT_BACKOFF_MULTIPLIER) {
    throw new TypeError(
      `Option backoffMultiplier needs transport "http2": grpc-js's is fixed at ${DEFAULT_BACKOFF_MULTIPLIER}`,
    );
  }
  const defaults: grpc.ChannelOptions = {
    "grpc.use_local_subchannel_pool": 1,
    "grpc.max_receive_message_length": options.maxReceiveMessageBytes,
    "grpc.initial_reconnect_backoff_ms": options.initialBackoffMs,
    "grpc.max_reconnect_backoff_ms": options.maxBackoffMs,
  };
  // The options both transports share, in grpc-js's own names.
  if (
    options.maxSendMessageBytes !== undefined &&
    options.maxSendMessageBytes !== Infinity
  ) {
    defaults["grpc.max_send_message_length"] = options.maxSendMessageBytes;
  }
  if (options.keepaliveMs !== undefined && options.keepaliveMs !== Infinity) {
    defaults["grpc.keepalive_time_ms"] = options.keepaliveMs;
    defaults["grpc.keepalive_timeout_ms"] = options.keepaliveTimeoutMs ??
      20_000;
  }
  if (tls?.serverName !== undefined) {
    defaults["grpc.ssl_target_name_override"] = tls.serverName;
  }
  return new GrpcJsChannel(target, {
    credentials: credentials ??
      (tls === undefined
        ? grpc.credentials.createInsecure()
        : grpc.credentials.createSsl(
          tls.ca === undefined ? null : pemBuffer(tls.ca, "TLS CA"),
          tls.key === undefined ? null : pemBuffer(tls.key, "TLS key"),
          tls.cert === undefined
            ? null
            : pemBuffer(tls.cert, "TLS certificate"),
        )),
    channelOptions: { ...defaults, ...channelOptions } as grpc.ChannelOptions,
    interceptors: interceptors as grpc.Interceptor[],
    connectTimeoutMs: options.connectTimeoutMs,
    waitForReady: options.waitForReady,
  });
}

function openChannel(address: string, options: ClientOptions): Transport {
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
  const connection = checkConnectionOptions(options);
  if (transport === "grpc-js") {
    return openGrpcJsChannel(address, {
      ...options,
      maxReceiveMessageBytes,
      ...connection,
    });
  }
  for (
    const key of ["channelOptions", "credentials", "interceptors"] as const
  ) {
    if (options[key] !== undefined) {
      throw new TypeError(`Option ${key} needs transport "grpc-js"`);
    }
  }
  parseAddress(address);
  return new Channel(address, {
    maxReceiveMessageBytes,
    tls: toChannelTls(options.tls),
    maxSendMessageBytes,
    keepaliveMs,
    keepaliveTimeoutMs,
    ...connection,
  });
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

/**
 * Connects to a server that hosts the three streaming services. The connection is made on the
 * first call and shared by every call after it.
 *
 * @param address The server's `host:port`.
 * @param options Channel options.
 * @returns The client; close it (or declare it with `using`) when done.
 * @throws {TypeError} If `address` is not `host:port` or `[ipv6]:port`, or the TLS options
 * are malformed (for example a `cert` without its `key`).
 * @throws {RangeError} If `maxReceiveMessageBytes` or `maxSendMessageBytes` is not an integer
 * >= 0, `keepaliveMs` or `keepaliveTimeoutMs` is not an integer >= 1, or `connectTimeoutMs`,
 * `initialBackoffMs`, `maxBackoffMs` or `backoffMultiplier` is out of range.
 *
 * @example Call all three methods over one connection
 * ```ts
 * import { createClient, startServer } from "@streamrpc/grpc-stream";
 * import { deepStrictEqual, strictEqual } from "node:assert";
 *
 * await using server = await startServer({ port: 0 });
 * using client = createClient(server.addresses[0]!);
 * deepStrictEqual(await Array.fromAsync(client.pow(2, { count: 4 })), [1n, 2n, 4n, 8n]);
 * strictEqual(await client.sum([1, 2, 3n]), 6n);
 * deepStrictEqual(await Array.fromAsync(client.sqrt([4, 9])), [2, 3]);
 * ```
 *
 * @example Wait out a server that is not up yet, and give up on a silent one sooner
 * ```ts
 * import { createClient, startServer } from "@streamrpc/grpc-stream";
 * import { strictEqual } from "node:assert";
 *
 * const port = 20_000 + Math.floor(Math.random() * 10_000);
 * using client = createClient(`127.0.0.1:${port}`, {
 *   waitForReady: true,
 *   connectTimeoutMs: 5_000,
 *   initialBackoffMs: 500,
 * });
 * // Made before the server listens: the call waits (within its deadline) for it.
 * const total = client.sum([1, 2, 3], { timeout: 5_000 });
 * await using _server = await startServer({ port });
 * strictEqual(await total, 6n);
 * ```
 */
export function createClient(
  address: string,
  options: ClientOptions = {},
): StreamClient {
  const channel = openChannel(address, options);
  function close(): void {
    channel.close();
  }
  return {
    address,
    pow(
      base: bigint | number,
      options: PowOptions = {},
    ): AsyncIterableIterator<bigint> {
      return callPow({ channel }, base, options);
    },
    sum(numbers: Int64Source, options: CallOptions = {}): Promise<bigint> {
      try {
        return callSum(channel, numbers, options);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    sqrt(
      numbers: NumberSource,
      options: CallOptions = {},
    ): AsyncIterableIterator<number> {
      return callSqrt({ channel }, numbers, options);
    },
    close,
    [Symbol.dispose]: close,
  };
}

/** The ports of the original Go demo's servers, where the one-call helpers go by default. */
export const DEFAULT_ADDRESSES: Readonly<
  { pow: string; sum: string; sqrt: string }
> = {
  pow: "127.0.0.1:8082",
  sum: "127.0.0.1:8081",
  sqrt: "127.0.0.1:8083",
};

/** Where a one-call helper connects, on top of its call options. */
export interface ConnectOptions extends ClientOptions {
  /**
   * The server's `host:port`.
   *
   * @default {The original Go demo's port for the method: "127.0.0.1:8082" for pow, "127.0.0.1:8081" for sum, "127.0.0.1:8083" for sqrt}
   */
  address?: string;
}

/** Options for the one-call {@linkcode pow}. */
export interface PowCallOptions extends PowOptions, ConnectOptions {}

/** Options for the one-call {@linkcode sum} and {@linkcode sqrt}. */
export interface StreamCallOptions extends CallOptions, ConnectOptions {}

/**
 * Streams the powers of `base` from `stream.ServerStream/Pow` over a connection of its own,
 * closed when the call ends.
 *
 * @param base The base, an int64.
 * @param options Where to connect, the count, cancellation, deadline and metadata.
 * @returns The powers `base^0` … `base^(count - 1)` as bigints, as they arrive.
 * @throws {RangeError} If `base` is not an int64 or `count` is out of range.
 * @throws {TypeError} If the address or the TLS options are malformed.
 *
 * @example Print the powers of two
 * ```ts
 * import { pow, startServer } from "@streamrpc/grpc-stream";
 *
 * await using server = await startServer({ port: 0 });
 * for await (const power of pow(2, { address: server.addresses[0]! })) {
 *   console.log(power); // 1n, 2n, 4n, … 512n
 * }
 * ```
 */
export function pow(
  base: bigint | number,
  options: PowCallOptions = {},
): AsyncIterableIterator<bigint> {
  const channel = openChannel(
    options.address ?? DEFAULT_ADDRESSES.pow,
    options,
  );
  try {
    return callPow({ channel, onFinish: () => channel.close() }, base, options);
  } catch (error) {
    channel.close();
    throw error;
  }
}

/**
 * Streams `numbers` to `stream.ClientStream/Sum` over a connection of its own and resolves to
 * their exact sum.
 *
 * @param numbers The addends, each an int64, from any iterable or async iterable.
 * @param options Where to connect, cancellation, deadline and metadata.
 * @returns The sum. It rejects with a {@linkcode GrpcError} when the call fails
 * (`OUT_OF_RANGE` when the sum does not fit in int64), a `RangeError` for a number that is not
 * an int64, or the signal's reason when aborted.
 *
 * @example Add numbers from a generator
 * ```ts
 * import { startServer, sum } from "@streamrpc/grpc-stream";
 * import { strictEqual } from "node:assert";
 *
 * await using server = await startServer({ port: 0 });
 * async function* count() {
 *   for (let i = 0; i < 10; i++) yield i;
 * }
 * strictEqual(await sum(count(), { address: server.addresses[0]! }), 45n);
 * ```
 */
export function sum(
  numbers: Int64Source,
  options: StreamCallOptions = {},
): Promise<bigint> {
  let channel: Transport;
  try {
    channel = openChannel(options.address ?? DEFAULT_ADDRESSES.sum, options);
  } catch (error) {
    return Promise.reject(error);
  }
  let result: Promise<bigint>;
  try {
    result = callSum(channel, numbers, options);
  } catch (error) {
    result = Promise.reject(error);
  }
  return result.finally(() => channel.close());
}

/**
 * Streams `numbers` to `stream.BidirectionalStreamServer/Sqrt` over a connection of its own
 * and yields each square root as soon as it arrives.
 *
 * @param numbers The numbers, from any iterable or async iterable; a negative one or `NaN`
 * ends the call with `INVALID_ARGUMENT` after the answers before it.
 * @param options Where to connect, cancellation, deadline and metadata.
 * @returns The square roots, in order.
 * @throws {TypeError} If `numbers` is not iterable, or the address or the TLS options are
 * malformed.
 *
 * @example Answer square roots as they come
 * ```ts
 * import { sqrt, startServer } from "@streamrpc/grpc-stream";
 * import { deepStrictEqual } from "node:assert";
 *
 * await using server = await startServer({ port: 0 });
 * const roots = await Array.fromAsync(sqrt([0, 1, 4, 9], { address: server.addresses[0]! }));
 * deepStrictEqual(roots, [0, 1, 2, 3]);
 * ```
 */
export function sqrt(
  numbers: NumberSource,
  options: StreamCallOptions = {},
): AsyncIterableIterator<number> {
  const channel = openChannel(
    options.address ?? DEFAULT_ADDRESSES.sqrt,
    options,
  );
  try {
    return callSqrt(
      { channel, onFinish: () => channel.close() },
      numbers,
      options,
    );
  } catch (error) {
    channel.close();
    throw error;
  }
}
