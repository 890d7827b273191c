/**
 * What a channel of the default transport is told, and the defaults both transports share:
 * gRPC's connect timeout and connection backoff, and grpc-js's keepalive timeout. The
 * options reach here checked (`client_options.ts`).
 *
 * @module
 */

/**
 * How long a connection attempt may take, TCP, TLS and the server's first SETTINGS frame
 * together, unless `connectTimeoutMs` says otherwise: gRPC's minimum connect timeout
 * (grpc-go and C-core). Calls on an attempt that runs out end with `UNAVAILABLE`.
 *
 * @example Allow a slow link twice the default
 * ```ts
 * import { createClient, DEFAULT_CONNECT_TIMEOUT_MS } from "@streamrpc/grpc-stream";
 *
 * using client = createClient("127.0.0.1:8082", {
 *   connectTimeoutMs: 2 * DEFAULT_CONNECT_TIMEOUT_MS,
 * });
 * ```
 */
export const DEFAULT_CONNECT_TIMEOUT_MS: number = 20_000;

/** gRPC's connection backoff: the first delay after a failed connection attempt. */
export const DEFAULT_INITIAL_BACKOFF_MS = 1_000;
/** gRPC's connection backoff: how much longer each delay is than the one before. */
export const DEFAULT_BACKOFF_MULTIPLIER = 1.6;
/** gRPC's connection backoff: the longest delay between two connection attempts. */
export const DEFAULT_MAX_BACKOFF_MS = 120_000;

/** How long a keepalive ping may go unanswered unless told otherwise, as in grpc-js. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 20_000;

/** How a channel secures its connection: already checked, PEM text or bytes. */
export interface ChannelTls {
  /** CA certificates to trust instead of Deno's default root store. */
  ca?: string | Uint8Array | undefined;
  /** A client certificate chain, for mutual TLS. */
  cert?: string | Uint8Array | undefined;
  /** The private key of `cert`. */
  key?: string | Uint8Array | undefined;
  /** The host name the server's certificate must be valid for, instead of the address's. */
  serverName?: string | undefined;
}

/** Options for a channel. */
export interface ChannelOptions {
  /** The largest message accepted from the server, in bytes. */
  maxReceiveMessageBytes: number;
  /**
   * Whether cleartext connections use the client's own HTTP/2 (`http2/`) rather than
   * `node:http2`.
   *
   * @default {Unless `GRPC_STREAM_HTTP2=node`}
   */
  ownHttp2?: boolean | undefined;
  /** TLS settings; plaintext HTTP/2 (h2c) without them. */
  tls?: ChannelTls | undefined;
  /**
   * The largest message sent to the server, in bytes; a larger one ends its call with
   * `RESOURCE_EXHAUSTED` before it is sent.
   *
   * @default {Infinity}
   */
  maxSendMessageBytes?: number | undefined;
  /**
   * How often to send an HTTP/2 PING while calls are in flight, in milliseconds; `undefined`
   * sends none.
   *
   * @default {undefined}
   */
  keepaliveMs?: number | undefined;
  /**
   * How long a keepalive PING may go unanswered before the connection is dropped and its
   * calls end with `UNAVAILABLE`, in milliseconds.
   *
   * @default {20_000}
   */
  keepaliveTimeoutMs?: number | undefined;
  /**
   * The delay after a first failed connection attempt before the next one, in milliseconds;
   * each further failure multiplies it by `backoffMultiplier` (with 20% jitter), up to
   * `maxBackoffMs`.
   *
   * @default {1_000}
   */
  initialBackoffMs?: number | undefined;
  /**
   * How much longer each delay between failed connection attempts is than the one before.
   *
   * @default {1.6}
   */
  backoffMultiplier?: number | undefined;
  /**
   * The longest delay between two connection attempts, in milliseconds.
   *
   * @default {120_000}
   */
  maxBackoffMs?: number | undefined;
  /**
   * How long a connection attempt may take, in milliseconds: TCP, TLS and the server's first
   * SETTINGS frame together. Calls on an attempt that runs out end with `UNAVAILABLE`.
   *
   * @default {20_000}
   */
  connectTimeoutMs?: number | undefined;
  /**
   * Whether calls that do not say otherwise wait for ready (see
   * `CallSetup.waitForReady` in `transport.ts`).
   *
   * @default {false}
   */
  waitForReady?: boolean | undefined;
}
