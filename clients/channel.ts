/**
 * The client's transport: gRPC over `node:http2`, one HTTP/2 session per channel.
 *
 * The helpers speak gRPC themselves rather than through the grpc-js client because, under
 * Deno, the grpc-js client drops the messages a server sent just before a non-OK status: it
 * pauses its HTTP/2 stream after every message and gives up on unread messages once trailers
 * with an error arrive, and Deno's `node:http2` delivers those trailers while the paused
 * stream still holds the messages. Here a status is reported only after every message that
 * preceded it.
 *
 * The channel starts calls; the rooms around it do the rest: `session_manager.ts` keeps the
 * connection, `grpc_call.ts` runs each call, `stream_reset.ts` resets a stream given up on.
 *
 * @module
 */
import http2 from "node:http2";
import { GrpcError, Status } from "./grpc_error.ts";
import {
  type CallRecorder,
  inCallContext,
  startClientCall,
} from "./telemetry.ts";
import type { CallSetup, Transport, TransportCall } from "./transport.ts";
import {
  type ReadyWaiter,
  WaitingCall,
  type WaitingChannel,
} from "./wait_for_ready.ts";
import {
  type ChannelOptions,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
} from "./channel_options.ts";
import type { CallChannel } from "./call_channel.ts";
import { GrpcCall } from "./grpc_call.ts";
import { Keepalive } from "./keepalive.ts";
import { requestHeaders } from "./request_headers.ts";
import { RetryBudget } from "./retry_buffer.ts";
import { SessionManager } from "./session_manager.ts";
import { resetWhenQuiet } from "./stream_reset.ts";
import type {
  CallSession,
  CallStream,
  StreamSession,
} from "./http2_surface.ts";
import { onNodeHttp2 } from "./http2/client_stream.ts";

const { NGHTTP2_REFUSED_STREAM } = http2.constants;

/**
 * An HTTP/2 connection to one server, opened on the first call, reopened after it is lost,
 * and shared by every call (see {@linkcode SessionManager} for how it connects, backs off
 * and serves the calls that wait for ready).
 */
export class Channel implements Transport, WaitingChannel, CallChannel {
  #options: ChannelOptions;
  #sessions: SessionManager;
  #keepalive: Keepalive;
  #activeCalls = 0;
  #closed = false;
  /** The streams each connection has opened and not yet closed, sent or not. */
  #openStreams = new WeakMap<StreamSession, number>();
  /** Cancelled streams waiting to be reset, each with what resets it now. */
  #pendingResets = new Set<() => void>();
  /** What the calls of this channel hold for transparent retries. */
  readonly retryBudget: RetryBudget = new RetryBudget();

  /**
   * @param authority The server's `host:port`.
   * @param options How to connect, and the calls' limits.
   */
  constructor(authority: string, options: ChannelOptions) {
    this.#options = options;
    this.#sessions = new SessionManager(authority, options);
    this.#keepalive = new Keepalive({
      intervalMs: options.keepaliveMs,
      timeoutMs: options.keepaliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS,
      session: () => this.#sessions.session,
      lost: (_session, error) => {
        this.#sessions.lastError = error;
        this.#disconnect();
      },
    });
  }

  /** The server's `host:port`. */
  get authority(): string {
    return this.#sessions.authority;
  }

  /** Whether the channel has a connection calls can use. */
  get ready(): boolean {
    return this.#sessions.ready;
  }

  /** The last connection-level error, to explain why a stream failed. */
  get lastError(): (Error & { code?: string }) | undefined {
    return this.#sessions.lastError;
  }

  /**
   * Starts a call on `path`. A call that waits for ready, made while the channel is not
   * ready, starts once it is (see {@linkcode WaitingCall}).
   *
   * @param path The method path, e.g. `/stream.ServerStream/Pow`.
   * @param setup Who hears about the call, its metadata and its deadline.
   * @returns The call.
   * @throws {TypeError} If the channel is closed.
   * @throws {GrpcError} `UNAVAILABLE` when the channel backs off after a failed attempt and
   * the call does not wait for ready.
   */
  startCall(path: string, setup: CallSetup): TransportCall {
    if (this.#closed) throw new TypeError("Client is closed");
    const waitForReady = setup.waitForReady ?? this.#options.waitForReady;
    if (waitForReady === true && !this.#sessions.ready) {
      return new WaitingCall(this, { path, setup });
    }
    return this.#startNow(path, setup);
  }

  #startNow(path: string, setup: CallSetup): GrpcCall {
    const { headers = {}, deadline, listener } = setup;
    const session = this.#sessions.connect();
    const headersSent = requestHeaders(path, { metadata: headers, deadline });
    const telemetry = startClientCall(path, {
      authority: this.authority,
      headers: headersSent,
    });
    let stream: CallStream;
    try {
      stream = this.#request(session, { headers: headersSent, telemetry });
    } catch (error) {
      telemetry?.end(Status.UNAVAILABLE, String((error as GrpcError).cause));
      throw error;
    }
    this.#activeCalls += 1;
    if (this.#activeCalls === 1) this.#keepalive.start();
    return new GrpcCall(stream, {
      channel: this,
      listener,
      deadline,
      maxReceiveBytes: this.#options.maxReceiveMessageBytes,
      maxSendBytes: this.#options.maxSendMessageBytes ?? Infinity,
      telemetry,
      requestHeaders: headersSent,
      waitForReady: setup.waitForReady ?? this.#options.waitForReady ?? false,
    });
  }

  /**
   * Has `waiter` told once the channel is ready (see {@linkcode SessionManager.whenReady}).
   *
   * @param waiter What to tell.
   * @returns A function that forgets the waiter (its call ended while it waited).
   */
  whenReady(waiter: ReadyWaiter): () => void {
    return this.#sessions.whenReady(waiter);
  }

  /**
   * Probes the server of a connection attempt that failed with no word of why.
   *
   * @returns Once the channel's last error is as good as it gets, or `undefined` at once.
   */
  probeFailedAttempt(): Promise<void> | undefined {
    return this.#sessions.probeFailedAttempt();
  }

  /**
   * Says why the channel has no connection, for a call that gave up waiting for one.
   *
   * @returns The words, or `undefined` when no attempt failed.
   */
  describeLastError(): string | undefined {
    return this.#sessions.describeLastError();
  }

  /**
   * Opens another stream for a call already counted as active (a transparent retry), on the
   * current connection or a new one.
   *
   * @param headers The call's request headers.
   * @param telemetry The call's span and metrics, if any.
   * @returns The stream, its headers sent.
   * @throws {GrpcError} `UNAVAILABLE` when the channel is closed or has no connection.
   */
  openStream(
    headers: http2.OutgoingHttpHeaders,
    telemetry: CallRecorder | undefined,
  ): CallStream {
    if (this.#closed) {
      throw new GrpcError(Status.UNAVAILABLE, "Client is closed");
    }
    return this.#request(this.#sessions.connect(), { headers, telemetry });
  }

  #request(
    session: CallSession,
    { headers, telemetry }: {
      headers: http2.OutgoingHttpHeaders;
      telemetry: CallRecorder | undefined;
    },
  ): CallStream {
    let stream: CallStream;
    try {
      stream = inCallContext(
        telemetry,
        () => session.request(headers, { endStream: false }),
      );
    } catch (cause) {
      throw new GrpcError(
        Status.UNAVAILABLE,
        `Cannot start a call on ${this.authority}: ${
          cause instanceof Error ? cause.message : cause
        }`,
        { cause },
      );
    }
    session.ref();
    this.#openStreams.set(session, (this.#openStreams.get(session) ?? 0) + 1);
    stream.once("close", () => {
      this.#openStreams.set(session, (this.#openStreams.get(session) ?? 1) - 1);
    });
    return stream;
  }

  /**
   * Whether `stream`, just opened, waits behind its server's limit on concurrent streams: the
   * connection already has as many streams open as the server allows, so nghttp2 holds its
   * HEADERS until one closes.
   *
   * @param stream A stream this channel has just opened.
   * @returns Whether its HEADERS wait for a free slot.
   */
  behindStreamLimit(stream: CallStream): boolean {
    // The own HTTP/2's streams hold their frames until their HEADERS go, and drop them on a
    // reset.
    if (!onNodeHttp2(stream)) return false;
    const session = stream.session;
    if (session === undefined || session === null) return false;
    const limit = session.remoteSettings?.maxConcurrentStreams;
    const open = this.#openStreams.get(session) ?? 0;
    return typeof limit === "number" && open - 1 >= limit;
  }

  /**
   * Whether the server provably never processed `stream`: refused (`REFUSED_STREAM`), or
   * above the last-stream-id of a GOAWAY its connection received.
   *
   * @param stream A closed stream of this channel.
   * @param session The connection it ran on.
   * @returns Whether a retry cannot run the call twice.
   */
  unprocessed(
    stream: CallStream,
    session: StreamSession | undefined,
  ): boolean {
    if (stream.rstCode === NGHTTP2_REFUSED_STREAM) return true;
    const lastStreamId = session && this.#sessions.goawayLastStreamId(session);
    return lastStreamId !== undefined && stream.id !== undefined &&
      stream.id > lastStreamId;
  }

  /** Called by each call when it ends, so an idle connection does not keep Deno alive. */
  callEnded(): void {
    this.#activeCalls -= 1;
    if (this.#activeCalls > 0) return;
    this.#keepalive.stop();
    if (this.#closed) this.#disconnect();
    else this.#sessions.session?.unref();
  }

  /**
   * Closes the connection once the calls in flight have ended. Calls still waiting for a
   * connection end with `UNAVAILABLE`.
   */
  close(): void {
    this.#closed = true;
    this.#sessions.close();
    if (this.#activeCalls === 0) this.#disconnect();
  }

  /**
   * Resets a stream this side has given up on (`RST_STREAM(CANCEL)`), without losing the
   * connection to a server that goes on sending: see {@linkcode resetWhenQuiet}. Dropping
   * the connection (closing the channel once its calls are over) resets at once.
   *
   * @param stream The stream; the call on it has already reported its status.
   * @param answered Whether the server has begun its answer.
   */
  resetStream(stream: CallStream, answered = true): void {
    let done = false;
    let now: (() => void) | undefined = undefined;
    now = resetWhenQuiet(stream, {
      answered,
      settled: () => {
        done = true;
        if (now !== undefined) this.#pendingResets.delete(now);
      },
    });
    if (!done) this.#pendingResets.add(now);
  }

  /** Drops the connection (see {@linkcode SessionManager.disconnect}). */
  #disconnect(): void {
    // Streams still waiting for their reset go with the connection.
    for (const reset of [...this.#pendingResets]) reset();
    this.#sessions.disconnect();
  }
}
