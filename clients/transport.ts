/**
 * What the helpers need of a transport, so the same `pow`, `sum` and `sqrt` run over the
 * module's own HTTP/2 client (`channel.ts`) or over a grpc-js client (`grpc_js_channel.ts`).
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type { ResponseMetadata, Status, Trailers } from "./grpc_error.ts";

/** How a call ended. */
export interface CallStatus {
  /** The gRPC status code. */
  code: Status;
  /** The status details. */
  details: string;
  /** The trailing metadata. */
  trailers: Trailers;
  /** Whether this side ended the call (cancel, deadline, a malformed reply). */
  local?: boolean;
  /** The connection or stream error behind a status this side made up, if any. */
  cause?: unknown;
}

/** What a call reports to its owner. */
export interface CallListener {
  /**
   * The server's response headers arrived, before any message: called at most once, and not
   * for a response that carries its status at once (trailers-only).
   */
  onHeaders?(headers: ResponseMetadata): void;
  /** One message arrived (without its 5-byte prefix). */
  onMessage(message: Buffer): void;
  /** The call is over; every message before the status has been reported. */
  onStatus(status: CallStatus): void;
}

/** Request headers for a call: the caller's metadata, already checked and encoded. */
export type RequestHeaders = Record<string, string | string[]>;

/** How to start a call with {@linkcode Transport.startCall}. */
export interface CallSetup {
  /** Receives the messages and the status. */
  listener: CallListener;
  /**
   * The caller's metadata.
   *
   * @default {{}}
   */
  headers?: RequestHeaders;
  /**
   * When the call must end, in epoch milliseconds.
   *
   * @default {undefined} (never)
   */
  deadline?: number | undefined;
  /**
   * Whether the call, made while the channel is connecting or backing off after a failed
   * attempt, waits (within its deadline) for a connection rather than failing with
   * `UNAVAILABLE`.
   *
   * @default {The channel's waitForReady}
   */
  waitForReady?: boolean | undefined;
}

/** One call: request messages written, replies and one status reported to its listener. */
export interface TransportCall {
  /** Whether the call has ended (its status is reported or about to be). */
  readonly finished: boolean;
  /**
   * Sends one message.
   *
   * @returns `false` when the caller should wait for `drained()` first.
   */
  write(message: Uint8Array): boolean;
  /** Resolves when the call can take more writes, or when it has ended. */
  drained(): Promise<void>;
  /** Half-closes the call: no more messages from this side. */
  end(): void;
  /** Stops handing up replies until `resume()`. */
  pause(): void;
  /** Hands up replies again. */
  resume(): void;
  /** Ends the call from this side: the server sees it cancelled; the status is `code`. */
  cancel(code?: Status, details?: string): void;
}

/** A connection (or a set of them) that starts calls. */
export interface Transport {
  /**
   * Starts a call on `path`.
   *
   * @param path The method path, e.g. `/stream.ServerStream/Pow`.
   * @param setup Who hears about the call, its metadata and its deadline.
   * @returns The call.
   */
  startCall(path: string, setup: CallSetup): TransportCall;
  /** Closes the connection once the calls in flight have ended. */
  close(): void;
}
