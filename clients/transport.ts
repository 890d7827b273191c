/**
 * What the helpers need of a transport, so the same `pow`, `sum` and `sqrt` run over the
 * module's own HTTP/2 client (`channel.ts`) or over a grpc-js client (`grpc_js_channel.ts`).
 *
 * @module
 */
import type { CallSetup } from "./channel.ts";

export type { CallListener, CallSetup, CallStatus } from "./channel.ts";

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
  cancel(code?: number, details?: string): void;
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
