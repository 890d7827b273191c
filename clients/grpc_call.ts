/**
 * One call of the default transport on its HTTP/2 stream: request frames out, messages in,
 * one status, and the transparent retry of a call the server never processed.
 *
 * @module
 */
import type http2 from "node:http2";
import { Buffer } from "node:buffer";
import { headersUnsent } from "../internals/deno_http2_stream.ts";
import {
  EnvelopeDecoder,
  PREFIX_BYTES,
  tooLargeToSend,
  writePrefix,
} from "../proto/envelope.ts";
import { Status } from "./grpc_error.ts";
import type { CallRecorder } from "./telemetry.ts";
import { type DeadlineTimer, startDeadlineTimer } from "./deadline.ts";
import type { CallListener, CallStatus, TransportCall } from "./transport.ts";
import { encodeTimeout } from "./request_headers.ts";
import { type HeldRequest, RetryBuffer } from "./retry_buffer.ts";
import {
  responseHeaders,
  statusOfClosedStream,
  statusOfResponse,
  statusOfTrailers,
} from "./status_mapping.ts";
import type { CallChannel, GrpcCallSetup } from "./call_channel.ts";
import { FrameBatch } from "./write_batching.ts";
import type { CallState } from "./call_state.ts";
import type { CallStream, StreamSession } from "./http2_surface.ts";
import { onNodeHttp2 } from "./http2/client_stream.ts";

/** The HTTP/2 frame type of HEADERS, as `frameError` events report it. */
const HEADERS_FRAME = 1;

/** How often a call waiting behind the server's stream limit checks whether its HEADERS went. */
const SLOT_CHECK_MS = 10;

function nothing(): void {}

/**
 * One call on a channel: request headers sent, messages written and read, one status.
 *
 * A call the server provably never processed is retried once, transparently, as gRPC does
 * (gRFC A6): its stream was refused (`RST_STREAM(REFUSED_STREAM)`) before any response
 * headers, or a GOAWAY's last-stream-id is below it (nghttp2 closes such streams with
 * `REFUSED_STREAM` too). That happens when a server or proxy retires a connection while a
 * request is on its way (nginx's `keepalive_requests`, a server's GOAWAY). The retry goes on
 * the channel's current connection, a new one after a GOAWAY, and re-sends the messages
 * written so far, which the call holds until the server's response headers arrive (the
 * commit), within the budgets of `retry_buffer.ts`; past either, the call is not retried.
 * A request that never left this side (nghttp2 reports its HEADERS frame not sent: it was
 * queued behind the server's stream limit when the GOAWAY came) does not use up the retry.
 * The deadline runs across every attempt. A stream reset with any other code, or after
 * response headers, is not retried: the server may have seen it.
 */
export class GrpcCall implements TransportCall {
  #stream: CallStream;
  #session: StreamSession | undefined;
  #state: CallState = { phase: "requested", early: [], unsent: false };
  #channel: CallChannel;
  #listener: CallListener;
  #decoder: EnvelopeDecoder;
  #batch: FrameBatch;
  #retry: RetryBuffer;
  /** The stream's error, the best explanation of a status this side makes up. */
  #error: (Error & { code?: string }) | undefined;
  #timer: DeadlineTimer | undefined;
  /** Looks again whether the HEADERS held behind the server's stream limit went. */
  #slotTimer: ReturnType<typeof setTimeout> | undefined;
  #maxSendBytes: number;
  #telemetry: CallRecorder | undefined;
  #deadline: number | undefined;
  /** Whether a transparent retry waits for a connection (see `#retryUnprocessed`). */
  #waitForReady: boolean;

  /**
   * @param stream The HTTP/2 stream the call runs on, its request headers sent.
   * @param setup The channel it belongs to, who hears about it, and its limits.
   */
  constructor(stream: CallStream, setup: GrpcCallSetup) {
    const { channel, listener, deadline, maxReceiveBytes } = setup;
    this.#channel = channel;
    this.#stream = stream;
    this.#session = stream.session;
    this.#maxSendBytes = setup.maxSendBytes ?? Infinity;
    this.#telemetry = setup.telemetry;
    this.#listener = listener;
    this.#batch = new FrameBatch(stream);
    this.#retry = new RetryBuffer(setup.requestHeaders, channel.retryBudget);
    this.#decoder = new EnvelopeDecoder({
      message: (span) => {
        if (this.finished) return;
        this.#telemetry?.received();
        // The decoder's chunks are the stream's Buffers or its own: a view, not a copy.
        this.#listener.onMessage(
          (span.bytes as Buffer).subarray(span.start, span.end),
        );
      },
      fail: (fault) => this.cancel(fault.code, fault.details),
    }, { maxBytes: maxReceiveBytes });
    this.#deadline = deadline;
    this.#waitForReady = setup.waitForReady ?? false;
    this.#listen(stream);
    if (channel.behindStreamLimit(stream)) this.#waitForSlot();
    if (deadline !== undefined) {
      this.#timer = startDeadlineTimer(
        deadline,
        () => this.cancel(Status.DEADLINE_EXCEEDED, "Deadline exceeded"),
      );
    }
  }

  /** Hears what `stream` reports, for as long as it is the call's stream. */
  #listen(stream: CallStream): void {
    stream.on("frameError", (type: number) => {
      const state = this.#state;
      if (
        stream === this.#stream && type === HEADERS_FRAME &&
        (state.phase === "requested" || state.phase === "body ended")
      ) {
        state.unsent = true;
      }
    });
    stream.on("response", (headers) => {
      if (stream === this.#stream) this.#onResponse(headers);
    });
    stream.on("data", (chunk: Buffer) => {
      if (stream === this.#stream) this.#onData(chunk);
    });
    stream.on("trailers", (headers) => {
      if (stream !== this.#stream) return;
      this.#onTrailers(headers);
      // Deno emits the trailers while a paused stream still buffers the DATA before them,
      // and a connection closed next (a server stopping) destroys that buffer: the status
      // would then stand for messages never delivered. Trailers end the body, so what is
      // buffered is bounded by the window: read it out now.
      while (stream.readableLength > 0 && stream.read() !== null);
    });
    stream.on("end", () => {
      if (stream === this.#stream) this.#onEnd();
    });
    stream.on("error", (error: Error & { code?: string }) => {
      if (stream === this.#stream) this.#error ??= error;
    });
    stream.on("close", () => {
      if (stream === this.#stream) this.#onClose();
    });
  }

  /** Whether the call has ended (its status is reported or about to be). */
  get finished(): boolean {
    return this.#state.phase === "finished";
  }

  /**
   * Sends one message.
   *
   * @returns `false` when the caller should wait for {@linkcode GrpcCall.drained} first.
   */
  write(message: Uint8Array): boolean {
    if (this.finished) return false;
    if (message.length > this.#maxSendBytes) {
      const fault = tooLargeToSend(message.length, this.#maxSendBytes);
      this.cancel(fault.code, fault.details);
      return false;
    }
    const frame = Buffer.allocUnsafe(PREFIX_BYTES + message.length);
    writePrefix(frame, message.length);
    frame.set(message, PREFIX_BYTES);
    this.#telemetry?.sent();
    this.#retry.hold(frame);
    return this.#batch.add(frame);
  }

  /** Resolves when the call can take more writes, or when it has ended. */
  drained(): Promise<void> {
    if (this.finished) return Promise.resolve();
    return this.#batch.drained();
  }

  /** Half-closes the call: no more messages from this side. */
  end(): void {
    if (!this.finished) this.#batch.end();
  }

  /** Stops reading from the network until {@linkcode GrpcCall.resume}. */
  pause(): void {
    if (!this.finished) this.#stream.pause();
  }

  /** Reads from the network again. */
  resume(): void {
    if (!this.finished) this.#stream.resume();
  }

  /** Ends the call from this side: the server sees it cancelled; the status is `code`. */
  cancel(
    code: Status = Status.CANCELLED,
    details = "Cancelled on the client",
  ): void {
    if (this.finished) return;
    const answered = this.#answered;
    this.#finish({ code, details, trailers: {}, local: true });
    this.#channel.resetStream(this.#stream, answered);
  }

  /**
   * Holds the request frames while the stream waits behind the server's stream limit, until
   * its HEADERS are sent (see {@linkcode FrameBatch}).
   */
  #waitForSlot(): void {
    this.#batch.hold();
    const check = (): void => {
      this.#slotTimer = undefined;
      if (this.finished) return;
      const stream = this.#stream;
      if (onNodeHttp2(stream) && headersUnsent(stream)) {
        this.#slotTimer = setTimeout(check, SLOT_CHECK_MS);
        return;
      }
      this.#batch.release();
    };
    // The count can be a stream high (one that has closed and not yet said so): look first
    // just after the HEADERS would have gone, then every SLOT_CHECK_MS.
    this.#slotTimer = setTimeout(check, 0);
  }

  /** Whether the server has begun its answer: headers, or data ahead of them. */
  get #answered(): boolean {
    const state = this.#state;
    switch (state.phase) {
      case "requested":
        return state.early.length > 0;
      case "body ended":
        return state.answered;
      case "awaiting retry":
        return false;
      default:
        return true;
    }
  }

  #onResponse(headers: http2.IncomingHttpHeaders): void {
    this.#retry.commit();
    const state = this.#state;
    if (state.phase !== "requested") return;
    this.#state = { phase: "answered" };
    this.#checkResponse(headers);
    for (const chunk of state.early) this.#onData(chunk);
  }

  #checkResponse(headers: http2.IncomingHttpHeaders): void {
    const response = statusOfResponse(headers);
    if (response?.kind === "trailers-only") {
      this.#state = { phase: "status received", status: response.status };
    } else if (response?.kind === "not gRPC") {
      this.#endEarly(response.status);
    } else {
      this.#listener.onHeaders?.(responseHeaders(headers));
    }
  }

  /** Ends the call with `status` at once and resets its stream, leaving the body unread. */
  #endEarly(status: CallStatus): void {
    if (this.finished) return;
    this.#finish(status);
    this.#channel.resetStream(this.#stream);
  }

  #onData(chunk: Buffer): void {
    const state = this.#state;
    if (state.phase === "finished") return;
    if (state.phase === "requested") {
      state.early.push(Buffer.from(chunk));
      return;
    }
    this.#decoder.write(chunk);
  }

  #onTrailers(headers: http2.IncomingHttpHeaders): void {
    const phase = this.#state.phase;
    if (
      phase !== "requested" && phase !== "answered" && phase !== "body ended"
    ) {
      return;
    }
    const status = statusOfTrailers(headers);
    if (phase === "body ended") this.#finish(status);
    else this.#state = { phase: "status received", status };
  }

  #onEnd(): void {
    const state = this.#state;
    switch (state.phase) {
      case "status received":
        this.#finish(state.status);
        return;
      case "requested":
        this.#state = {
          phase: "body ended",
          answered: state.early.length > 0,
          unsent: state.unsent,
        };
        return;
      case "answered":
        this.#state = { phase: "body ended", answered: true, unsent: false };
        return;
    }
  }

  #onClose(): void {
    const state = this.#state;
    if (state.phase === "finished") return;
    if (state.phase === "status received") {
      // The stream can close before 'end' when it was reset after the trailers.
      this.#finish(state.status);
      return;
    }
    if (this.#retryUnprocessed()) return;
    // A connection that went down takes its streams with it: its cause explains them best.
    const sessionLost = this.#session?.destroyed === true ||
      this.#session?.closed === true;
    const probe = sessionLost ? this.#channel.probeFailedAttempt() : undefined;
    if (probe !== undefined) {
      // A cancel or the deadline may end the call while the server is probed.
      probe.then(() => {
        if (this.#state.phase !== "finished") this.#finishClosed(sessionLost);
      });
      return;
    }
    this.#finishClosed(sessionLost);
  }

  /** Ends a call whose stream closed with no gRPC status, by what best explains it. */
  #finishClosed(sessionLost: boolean): void {
    const error = sessionLost
      ? this.#channel.lastError ?? this.#error
      : this.#error ?? this.#channel.lastError;
    const { code, details } = statusOfClosedStream({
      rstCode: this.#stream.rstCode,
      error,
      sessionLost,
      authority: this.#channel.authority,
    });
    this.#finish({
      code,
      details,
      trailers: {},
      ...(error === undefined ? {} : { cause: error }),
    });
  }

  /**
   * Retries the call on a new stream if its server provably never processed it (see
   * {@linkcode GrpcCall}): at most once, unless the request never left this side.
   *
   * @returns Whether the call goes on, on a new stream.
   */
  #retryUnprocessed(): boolean {
    const held = this.#retry.held;
    const state = this.#state;
    if (
      held === undefined || this.#answered ||
      (state.phase !== "requested" && state.phase !== "body ended") ||
      !this.#channel.unprocessed(this.#stream, this.#session)
    ) {
      return false;
    }
    // A request whose HEADERS were never sent (queued behind the server's stream limit when
    // its GOAWAY came) does not use up the one retry, as in grpc-js and gRPC's C core: it
    // keeps what it holds, for the next connection if need be.
    if (!state.unsent) this.#retry.commit();
    // What `held` has includes the frames not yet written (see `FrameBatch`).
    this.#batch.take();
    const deadline = this.#deadline;
    if (
      this.#waitForReady && !this.#channel.ready &&
      (deadline === undefined || deadline > Date.now())
    ) {
      // The retry waits for a connection, as the call did; what is written meanwhile
      // follows what it holds, which then no longer grows.
      this.#retry.commit();
      this.#awaitReadyToRetry(held);
      return true;
    }
    const stream = this.#openRetry(held.headers);
    if (stream === undefined) {
      this.#retry.commit();
      return false;
    }
    this.#resumeOn(stream, held.frames);
    return true;
  }

  /** Opens the stream of a retry, or `undefined` when the deadline passed or no connection. */
  #openRetry(
    headers: http2.OutgoingHttpHeaders,
  ): CallStream | undefined {
    const deadline = this.#deadline;
    if (deadline !== undefined && deadline <= Date.now()) return undefined;
    if (deadline !== undefined && headers["grpc-timeout"] !== undefined) {
      headers["grpc-timeout"] = encodeTimeout(deadline - Date.now());
    }
    try {
      return this.#channel.openStream(headers, this.#telemetry);
    } catch {
      // No connection to retry on: the refusal stands.
      return undefined;
    }
  }

  /**
   * Holds a wait-for-ready call's retry until its channel is ready; frames written meanwhile
   * wait in the batch, as behind a stream limit.
   */
  #awaitReadyToRetry(held: HeldRequest): void {
    this.#batch.hold();
    const waiting: CallState = { phase: "awaiting retry", forget: nothing };
    this.#state = waiting;
    const forget = this.#channel.whenReady({
      ready: () => {
        if (this.#state !== waiting) return;
        waiting.forget = nothing;
        const stream = this.#openRetry(held.headers);
        if (stream === undefined) {
          this.#finish({
            code: Status.UNAVAILABLE,
            details: `Cannot reach ${this.#channel.authority}: ${
              this.#channel.describeLastError() ?? "Connection failed"
            }`,
            trailers: {},
          });
          return;
        }
        this.#resumeOn(stream, held.frames);
      },
      closed: () => {
        if (this.#state !== waiting) return;
        waiting.forget = nothing;
        this.#finish({
          code: Status.UNAVAILABLE,
          details: "Client closed while the call waited for a connection",
          trailers: {},
          local: true,
        });
      },
    });
    if (this.#state === waiting) waiting.forget = forget;
  }

  /** Goes on on `stream`, a retry's, re-sending `held` and what was written since. */
  #resumeOn(stream: CallStream, held: Buffer[]): void {
    // The caller's pause holds across attempts: the old stream still says whether it is on.
    const paused = this.#stream.isPaused();
    this.#stream = stream;
    this.#session = stream.session;
    this.#error = undefined;
    this.#state = { phase: "requested", early: [], unsent: false };
    clearTimeout(this.#slotTimer);
    this.#slotTimer = undefined;
    this.#listen(stream);
    // Frames written while a retry waited for ready, which it does not hold.
    const queued = this.#batch.take();
    const later = this.#retry.held === undefined ? queued : [];
    this.#batch.restartOn(stream, [...held, ...later]);
    if (paused) stream.pause();
  }

  #finish(reported: CallStatus): void {
    const state = this.#state;
    if (state.phase === "finished") return;
    let status = reported;
    this.#state = { phase: "finished", status };
    this.#timer?.clear();
    clearTimeout(this.#slotTimer);
    this.#slotTimer = undefined;
    this.#retry.commit();
    // A call that ends before the turn's queued requests are written never writes them (see
    // `FrameBatch`): a cancelled call reaches the server as a reset, not as a finished
    // request.
    this.#batch.drop();
    if (state.phase === "awaiting retry") state.forget();
    if (status.code === Status.OK) {
      const fault = this.#decoder.end();
      if (fault !== undefined) {
        status = { code: fault.code, details: fault.details, trailers: {} };
      }
    }
    this.#telemetry?.end(status.code, status.details);
    this.#channel.callEnded();
    this.#listener.onStatus(status);
  }
}
