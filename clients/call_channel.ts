/**
 * What a call of the default transport needs of its channel and is told when it starts, so
 * that `grpc_call.ts` depends on the channel's promises, not on `channel.ts` (which starts
 * the calls).
 *
 * @module
 */
import type http2 from "node:http2";
import type { CallRecorder } from "./telemetry.ts";
import type { CallListener } from "./transport.ts";
import type { ReadyWaiter } from "./wait_for_ready.ts";
import type { RetryBudget } from "./retry_buffer.ts";
import type { CallStream, StreamSession } from "./http2_surface.ts";

/** What a call needs of its channel. */
export interface CallChannel {
  /** The server's `host:port`, as a call's errors name it. */
  readonly authority: string;
  /** Whether the channel has a connection calls can use. */
  readonly ready: boolean;
  /** The last connection-level error, to explain why a stream failed. */
  readonly lastError: (Error & { code?: string }) | undefined;
  /** What the channel's calls hold for transparent retries together. */
  readonly retryBudget: RetryBudget;
  /**
   * Has `waiter` told once the channel is ready.
   *
   * @returns A function that forgets the waiter.
   */
  whenReady(waiter: ReadyWaiter): () => void;
  /**
   * Probes the server of a connection attempt that failed with no word of why, so that
   * `lastError` can say what it speaks (see `SessionManager.probeFailedAttempt`).
   *
   * @returns Once `lastError` is as good as it gets, or `undefined` at once.
   */
  probeFailedAttempt(): Promise<void> | undefined;
  /** Why the channel has no connection, for a call that gave up waiting for one. */
  describeLastError(): string | undefined;
  /**
   * Opens another stream for a call already counted as active (a transparent retry).
   *
   * @throws {GrpcError} `UNAVAILABLE` when the channel is closed or has no connection.
   */
  openStream(
    headers: http2.OutgoingHttpHeaders,
    telemetry: CallRecorder | undefined,
  ): CallStream;
  /** Whether `stream`, just opened, waits behind its server's limit on concurrent streams. */
  behindStreamLimit(stream: CallStream): boolean;
  /** Whether the server provably never processed `stream`, closed on `session`. */
  unprocessed(
    stream: CallStream,
    session: StreamSession | undefined,
  ): boolean;
  /** Resets a stream this side has given up on, once its server is quiet. */
  resetStream(stream: CallStream, answered?: boolean): void;
  /** Called by each call when it ends. */
  callEnded(): void;
}

/** What a call needs besides its stream. */
export interface GrpcCallSetup {
  /** The channel the call belongs to. */
  channel: CallChannel;
  /** Receives the messages and the status. */
  listener: CallListener;
  /** When the call must end, in epoch milliseconds; `undefined` is never. */
  deadline: number | undefined;
  /** The largest message accepted from the server, in bytes. */
  maxReceiveBytes: number;
  /**
   * The largest message this side sends, in bytes; a larger one ends the call with
   * `RESOURCE_EXHAUSTED`.
   *
   * @default {Infinity}
   */
  maxSendBytes?: number;
  /** The call's span and metrics, when OpenTelemetry is on. */
  telemetry?: CallRecorder | undefined;
  /**
   * The headers the stream was opened with, to open another one for a transparent retry
   * (see call); without them the call is never retried.
   *
   * @default {undefined}
   */
  requestHeaders?: http2.OutgoingHttpHeaders | undefined;
  /**
   * Whether a transparent retry waits for a connection when the channel has none ready,
   * as the call itself did.
   *
   * @default {false}
   */
  waitForReady?: boolean | undefined;
}
