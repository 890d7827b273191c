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
 * @module
 */
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import process from "node:process";
import { addAbortSignal } from "node:stream";
import denoConfig from "../deno.json" with { type: "json" };
import { deferCloseAfterGoaway } from "../internals/deno_goaway_close.ts";
import { GrpcError, Status, type Trailers } from "./grpc_error.ts";
import {
  type CallRecorder,
  inCallContext,
  startClientCall,
} from "./telemetry.ts";
import { type DeadlineTimer, startDeadlineTimer } from "./deadline.ts";
import { MAX_TIMER_MS } from "../proto/limits.ts";
import {
  EnvelopeDecoder,
  PREFIX_BYTES,
  tooLargeToSend,
  writePrefix,
} from "../proto/envelope.ts";
import type {
  CallListener,
  CallSetup,
  CallStatus,
  TransportCall,
} from "./transport.ts";
import {
  type ReadyWaiter,
  WaitingCall,
  type WaitingChannel,
} from "./wait_for_ready.ts";

/** How long a keepalive ping may go unanswered unless told otherwise, as in grpc-js. */
const DEFAULT_KEEPALIVE_TIMEOUT_MS = 20_000;

/** gRPC's connection backoff: the first delay after a failed connection attempt. */
export const DEFAULT_INITIAL_BACKOFF_MS = 1_000;
/** gRPC's connection backoff: how much longer each delay is than the one before. */
export const DEFAULT_BACKOFF_MULTIPLIER = 1.6;
/** gRPC's connection backoff: the longest delay between two connection attempts. */
export const DEFAULT_MAX_BACKOFF_MS = 120_000;
/** gRPC's connection backoff: each delay is this much shorter or longer, at random. */
const BACKOFF_JITTER = 0.2;

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

/**
 * The least time between two connection attempts that wait-for-ready calls bring forward
 * during a backoff (see {@linkcode Channel}): a server that is back within a call's deadline
 * is found within this much, while a loop of such calls dials a server that is down at most
 * five times a second.
 */
const WAIT_FOR_READY_REDIAL_MS = 200;

/** Sent with every call, so a server's logs can tell this client and its version. */
const USER_AGENT = `grpc-stream-deno/${denoConfig.version}`;

/** The HTTP/2 frame type of HEADERS, as `frameError` events report it. */
const HEADERS_FRAME = 1;

const {
  HTTP2_HEADER_STATUS,
  HTTP2_HEADER_CONTENT_TYPE,
  NGHTTP2_CANCEL,
  NGHTTP2_REFUSED_STREAM,
  NGHTTP2_ENHANCE_YOUR_CALM,
  NGHTTP2_INADEQUATE_SECURITY,
  NGHTTP2_STREAM_STATE_IDLE,
} = http2.constants;

const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_HTTP2_INVALID_SESSION",
  "ERR_GRPC_KEEPALIVE_TIMEOUT",
  "ERR_GRPC_CONNECT_TIMEOUT",
]);

/**
 * Says in plain words why a connection failed, for a call's details after
 * `Cannot reach HOST:PORT: `. Node's words for a request made while the connection was being
 * set up ("The pending stream has been canceled (caused by: connect ECONNREFUSED …)") give
 * way to their cause.
 */
function describeConnectionError(
  error: Error & { code?: string; cause?: unknown },
): string {
  if (
    error.code === "ERR_HTTP2_STREAM_CANCEL" && error.cause instanceof Error
  ) {
    return describeConnectionError(error.cause);
  }
  switch (error.code) {
    case "ECONNREFUSED":
      return "Connection refused";
    case "ECONNRESET":
      // Not this module's own words ("Connection closed by the server").
      return /ECONNRESET|^(read|write) /.test(error.message)
        ? "Connection reset by the server"
        : error.message;
    case "ETIMEDOUT":
      return "Connection timed out";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "No route to the host";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "Host name not found";
    default:
      return error.message;
  }
}

/**
 * Whether `error` means the server could not be reached: a refused or lost connection, or a
 * TLS handshake that failed (`ERR_SSL_*` and `ERR_TLS_*`, e.g. an untrusted certificate, or a
 * client certificate the server requires and did not get), which gRPC reports as
 * `UNAVAILABLE`.
 */
function isConnectionError(error: Error & { code?: string }): boolean {
  const code = error.code ?? "";
  return CONNECTION_ERROR_CODES.has(code) || code.startsWith("ERR_SSL_") ||
    code.startsWith("ERR_TLS_");
}

/** The units of `grpc-timeout`, each with its length in milliseconds, smallest first. */
const TIMEOUT_UNITS: readonly [string, number][] = [
  ["m", 1],
  ["S", 1_000],
  ["M", 60_000],
  ["H", 3_600_000],
];

/**
 * Writes a timeout as `grpc-timeout` wants it: at most 8 digits and a unit, rounded up so
 * the server never gives up before the client does.
 */
function encodeTimeout(milliseconds: number): string {
  for (const [unit, size] of TIMEOUT_UNITS) {
    const amount = Math.max(1, Math.ceil(milliseconds / size));
    if (amount <= 99_999_999) return `${amount}${unit}`;
  }
  return "99999999H";
}

function statusFromHttp(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}

function decodeDetails(value: unknown): string {
  if (typeof value !== "string") return "";
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Keys that carry the status; they are reported as the status, not as trailers. */
const STATUS_KEYS = new Set(["grpc-status", "grpc-message"]);

/**
 * The caller's view of response metadata. Text values are kept whole, commas and all (an
 * HTTP/2 peer joins repeated fields with ", ", so they cannot be told apart); only `-bin`
 * values, whose base64 has no commas, are split, as grpc-js does. Base64 with or without
 * padding is accepted.
 */
function toTrailers(headers: http2.IncomingHttpHeaders): Trailers {
  const trailers: Trailers = {};
  for (const [key, value] of Object.entries(headers)) {
    if (key.startsWith(":") || value === undefined || STATUS_KEYS.has(key)) {
      continue;
    }
    const values = Array.isArray(value) ? value : [String(value)];
    trailers[key] = key.endsWith("-bin")
      ? values.flatMap((item) => item.split(",")).map((item) =>
        new Uint8Array(Buffer.from(item.trim(), "base64"))
      )
      : values;
  }
  return trailers;
}

/** `grpc-status` is one or more ASCII digits, nothing else. */
const STATUS_VALUE = /^[0-9]+$/;
const LARGEST_KNOWN_CODE = Status.UNAUTHENTICATED;

function statusFromHeaders(
  headers: http2.IncomingHttpHeaders,
): CallStatus | undefined {
  const raw = headers["grpc-status"];
  if (raw === undefined) return undefined;
  const value = Array.isArray(raw) ? raw.join(", ") : String(raw);
  const details = decodeDetails(headers["grpc-message"]);
  const trailers = toTrailers(headers);
  if (!STATUS_VALUE.test(value)) {
    return {
      code: Status.UNKNOWN,
      details: `Server sent an invalid grpc-status: "${value}"${
        details === "" ? "" : `: ${details}`
      }`,
      trailers,
    };
  }
  const code = Number(value);
  if (code > LARGEST_KNOWN_CODE) {
    return {
      code: Status.UNKNOWN,
      details: details === ""
        ? `Server sent an unknown grpc-status: ${value}`
        : details,
      trailers,
    };
  }
  return { code, details, trailers };
}

/**
 * How many bytes of messages a call holds within one turn before it writes them (see
 * `GrpcCall.#queue`): a DATA frame's default largest size.
 */
const QUEUE_FLUSH_BYTES = 16 * 1024;

/** What a {@linkcode GrpcCall} needs besides its stream. */
export interface GrpcCallSetup {
  /** The channel the call belongs to. */
  channel: Channel;
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
   * (see {@linkcode GrpcCall}); without them the call is never retried.
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

/**
 * The most request bytes (messages with their prefixes) one call holds for a transparent
 * retry; a call that has sent more is no longer retried. As the grpc-js transport's default
 * per-call retry buffer (`clients/grpc_js_retry_buffer.ts`).
 */
const RETRY_BUFFER_CALL_BYTES = 16 * 1024;

/**
 * The most request bytes all the calls of one channel hold for transparent retries; a call
 * that would go past it is not retried.
 */
const RETRY_BUFFER_CHANNEL_BYTES = 256 * 1024;

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
 * commit), up to {@linkcode RETRY_BUFFER_CALL_BYTES} per call and
 * {@linkcode RETRY_BUFFER_CHANNEL_BYTES} per channel; past either, the call is not retried.
 * A request that never left this side (nghttp2 reports its HEADERS frame not sent: it was
 * queued behind the server's stream limit when the GOAWAY came) does not use up the retry.
 * The deadline runs across every attempt. A stream reset with any other code, or after
 * response headers, is not retried: the server may have seen it.
 */
export class GrpcCall {
  #stream: http2.ClientHttp2Stream;
  #listener: CallListener;
  #decoder: EnvelopeDecoder;
  #status: CallStatus | undefined;
  #readEnded = false;
  #finished = false;
  #error: (Error & { code?: string }) | undefined;
  #timer: DeadlineTimer | undefined;
  #channel: Channel;
  #session: http2.Http2Session | undefined;
  #maxSendBytes: number;
  /**
   * Body chunks that came before the response headers, held until the headers say whether
   * the body is gRPC at all; `undefined` once they came. Deno 2.7.5 to 2.9.6 emit "data"
   * before "response" when both arrive in one read (denoland/deno#35947); this can go once
   * a Deno with its fix (denoland/deno#35959) is the oldest supported.
   */
  #early: Buffer[] | undefined = [];
  #telemetry: CallRecorder | undefined;
  /** The request headers, to open a stream for a transparent retry. */
  #requestHeaders: http2.OutgoingHttpHeaders | undefined;
  #deadline: number | undefined;
  /**
   * The request frames written so far, held for a transparent retry until the call commits;
   * `undefined` once it can no longer be retried.
   */
  #held: Buffer[] | undefined = [];
  #heldBytes = 0;
  #halfClosed = false;
  #paused = false;
  /** Whether the stream's HEADERS frame was never sent (nghttp2 reported it not sent). */
  #unsent = false;
  /** Frames written in this turn, not yet handed to the stream (see `#queue`). */
  #queued: Buffer[] = [];
  #queuedBytes = 0;
  /**
   * Whether the stream waits behind the server's stream limit, its HEADERS unsent: the
   * request frames stay in `#queued` until the HEADERS go (see `#waitForSlot`).
   */
  #waitingForSlot = false;
  #slotTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether `end()` was called while waiting for a slot. */
  #endWhenSent = false;
  /** Writers waiting in `drained()` while the call waits for a slot. */
  #slotWaiters: (() => void)[] = [];
  /** Whether a transparent retry waits for a connection (see `#retryUnprocessed`). */
  #waitForReady: boolean;
  /** Forgets the retry's wait for a connection, while it waits. */
  #forgetReadyWait: (() => void) | undefined;

  /**
   * @param stream The HTTP/2 stream the call runs on, its request headers sent.
   * @param setup The channel it belongs to, who hears about it, and its limits.
   */
  constructor(stream: http2.ClientHttp2Stream, setup: GrpcCallSetup) {
    const { channel, listener, deadline, maxReceiveBytes } = setup;
    this.#channel = channel;
    this.#session = stream.session;
    this.#maxSendBytes = setup.maxSendBytes ?? Infinity;
    this.#telemetry = setup.telemetry;
    this.#stream = stream;
    this.#listener = listener;
    this.#decoder = new EnvelopeDecoder({
      message: (span) => {
        if (this.#finished) return;
        this.#telemetry?.received();
        // The decoder's chunks are the stream's Buffers or its own: a view, not a copy.
        this.#listener.onMessage(
          (span.bytes as Buffer).subarray(span.start, span.end),
        );
      },
      fail: (fault) => this.cancel(fault.code, fault.details),
    }, { maxBytes: maxReceiveBytes });
    this.#requestHeaders = setup.requestHeaders;
    this.#deadline = deadline;
    this.#waitForReady = setup.waitForReady ?? false;
    if (setup.requestHeaders === undefined) this.#held = undefined;
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
  #listen(stream: http2.ClientHttp2Stream): void {
    stream.on("frameError", (type: number) => {
      if (stream === this.#stream && type === HEADERS_FRAME) {
        this.#unsent = true;
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
      this.#status ??= statusFromHeaders(headers) ?? {
        code: Status.INTERNAL,
        details: "Server ended the call without a gRPC status",
        trailers: toTrailers(headers),
      };
      // Deno emits the trailers while a paused stream still buffers the DATA before them,
      // and a connection closed next (a server stopping) destroys that buffer: the status
      // would then stand for messages never delivered. Trailers end the body, so what is
      // buffered is bounded by the window: read it out now.
      while (stream.readableLength > 0 && stream.read() !== null);
    });
    stream.on("end", () => {
      if (stream !== this.#stream) return;
      this.#readEnded = true;
      this.#maybeFinish();
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
    return this.#finished;
  }

  /**
   * Sends one message.
   *
   * @returns `false` when the caller should wait for {@linkcode GrpcCall.drained} first.
   */
  write(message: Uint8Array): boolean {
    if (this.#finished) return false;
    if (message.length > this.#maxSendBytes) {
      const fault = tooLargeToSend(message.length, this.#maxSendBytes);
      this.cancel(fault.code, fault.details);
      return false;
    }
    const frame = Buffer.allocUnsafe(PREFIX_BYTES + message.length);
    writePrefix(frame, message.length);
    frame.set(message, PREFIX_BYTES);
    this.#telemetry?.sent();
    if (this.#held !== undefined) this.#hold(frame);
    return this.#queue(frame);
  }

  /**
   * Holds `frame` until the end of the current turn (or until the call half-closes), so the
   * messages written in one turn go to `node:http2` as one write. Deno 2.9.6's `node:http2`
   * frames the first write at once and the ones after it, buffered by the stream, in a DATA
   * frame of their own, then sends END_STREAM in a third, empty one (a 10-number `Sum` was
   * four packets); one write followed by `end()` goes out as one DATA frame with END_STREAM.
   */
  #queue(frame: Buffer): boolean {
    this.#queued.push(frame);
    this.#queuedBytes += frame.length;
    if (this.#queuedBytes >= QUEUE_FLUSH_BYTES) return this.#flush();
    if (this.#queued.length === 1) process.nextTick(this.#flushQueued);
    return !this.#stream.writableNeedDrain;
  }

  #flushQueued = (): void => {
    this.#flush();
  };

  /**
   * Holds the request frames while the stream waits behind the server's stream limit, until
   * its HEADERS are sent. Deno 2.9.6's `node:http2` cannot take back a request it has queued
   * there (see `headersUnsent`): frames handed to the stream go out with the HEADERS once a
   * slot frees, even if the call was cancelled meanwhile, and a server takes a `Sum` with
   * END_STREAM as finished. Held here, they are dropped with a cancelled call, whose server
   * sees the HEADERS and then the reset.
   */
  #waitForSlot(): void {
    this.#waitingForSlot = true;
    const check = (): void => {
      this.#slotTimer = undefined;
      if (this.#finished) return;
      if (headersUnsent(this.#stream)) {
        this.#slotTimer = setTimeout(check, SLOT_CHECK_MS);
        return;
      }
      this.#waitingForSlot = false;
      if (this.#endWhenSent) this.end();
      else this.#flush();
      this.#releaseSlotWaiters();
    };
    // The count can be a stream high (one that has closed and not yet said so): look first
    // just after the HEADERS would have gone, then every SLOT_CHECK_MS.
    this.#slotTimer = setTimeout(check, 0);
  }

  #stopWaitingForSlot(): void {
    this.#waitingForSlot = false;
    this.#endWhenSent = false;
    clearTimeout(this.#slotTimer);
    this.#slotTimer = undefined;
    this.#releaseSlotWaiters();
  }

  #releaseSlotWaiters(): void {
    const waiters = this.#slotWaiters;
    this.#slotWaiters = [];
    for (const release of waiters) release();
  }

  /** Writes the queued frames as one chunk; returns what the stream's `write` returned. */
  #flush(): boolean {
    const queued = this.#queued;
    if (this.#waitingForSlot) return this.#finished || queued.length === 0;
    if (queued.length === 0) return !this.#stream.writableNeedDrain;
    this.#queued = [];
    this.#queuedBytes = 0;
    if (this.#finished) return false;
    return this.#stream.write(
      queued.length === 1 ? queued[0]! : Buffer.concat(queued),
    );
  }

  /** Resolves when the call can take more writes, or when it has ended. */
  drained(): Promise<void> {
    if (this.#finished) return Promise.resolve();
    if (this.#flush()) return Promise.resolve();
    if (this.#waitingForSlot) {
      return new Promise((resolve) => this.#slotWaiters.push(resolve));
    }
    return new Promise((resolve) => {
      const stream = this.#stream;
      function done(): void {
        stream.off("drain", done);
        stream.off("close", done);
        resolve();
      }
      stream.on("drain", done);
      stream.on("close", done);
    });
  }

  /** Half-closes the call: no more messages from this side. */
  end(): void {
    this.#halfClosed = true;
    if (this.#finished) return;
    if (this.#waitingForSlot) {
      this.#endWhenSent = true;
      return;
    }
    // The last messages and END_STREAM in one DATA frame (see `#queue`).
    const queued = this.#queued;
    this.#queued = [];
    this.#queuedBytes = 0;
    if (queued.length === 0) this.#stream.end();
    else {
      this.#stream.end(
        queued.length === 1 ? queued[0]! : Buffer.concat(queued),
      );
    }
  }

  /** Stops reading from the network until {@linkcode GrpcCall.resume}. */
  pause(): void {
    this.#paused = true;
    if (!this.#finished) this.#stream.pause();
  }

  /** Reads from the network again. */
  resume(): void {
    this.#paused = false;
    if (!this.#finished) this.#stream.resume();
  }

  /** Keeps `frame` for a transparent retry, or gives up retrying past the limits. */
  #hold(frame: Buffer): void {
    if (
      this.#heldBytes + frame.length > RETRY_BUFFER_CALL_BYTES ||
      !this.#channel.holdForRetry(frame.length)
    ) {
      this.#commit();
      return;
    }
    this.#held!.push(frame);
    this.#heldBytes += frame.length;
  }

  /** The call can no longer be retried: what it held is let go. */
  #commit(): void {
    if (this.#held === undefined) return;
    this.#held = undefined;
    this.#channel.holdForRetry(-this.#heldBytes);
    this.#heldBytes = 0;
  }

  /**
   * Retries the call on a new stream if its server provably never processed it (see
   * {@linkcode GrpcCall}): at most once, unless the request never left this side.
   *
   * @returns Whether the call goes on, on a new stream.
   */
  #retryUnprocessed(): boolean {
    const held = this.#held;
    const headers = this.#requestHeaders;
    if (
      held === undefined || headers === undefined || this.#answered ||
      !this.#channel.unprocessed(this.#stream, this.#session)
    ) {
      return false;
    }
    // A request whose HEADERS were never sent (queued behind the server's stream limit when
    // its GOAWAY came) does not use up the one retry, as in grpc-js and gRPC's C core: it
    // keeps what it holds, for the next connection if need be.
    const sent = !this.#unsent;
    this.#unsent = false;
    if (sent) {
      this.#commit();
      this.#requestHeaders = undefined;
    }
    const deadline = this.#deadline;
    // What `held` has includes the frames not yet written (see `#queue`).
    this.#queued = [];
    this.#queuedBytes = 0;
    if (
      this.#waitForReady && !this.#channel.ready &&
      (deadline === undefined || deadline > Date.now())
    ) {
      // The retry waits for a connection, as the call did; what is written meanwhile
      // follows what it holds, which then no longer grows.
      this.#commit();
      this.#requestHeaders = undefined;
      this.#awaitReadyToRetry(headers, held);
      return true;
    }
    const stream = this.#openRetry(headers);
    if (stream === undefined) {
      this.#commit();
      return false;
    }
    this.#resumeOn(stream, held);
    return true;
  }

  /** Opens the stream of a retry, or `undefined` when the deadline passed or no connection. */
  #openRetry(
    headers: http2.OutgoingHttpHeaders,
  ): http2.ClientHttp2Stream | undefined {
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
   * wait in `#queued`, as behind a stream limit.
   */
  #awaitReadyToRetry(
    headers: http2.OutgoingHttpHeaders,
    held: Buffer[],
  ): void {
    this.#waitingForSlot = true;
    this.#forgetReadyWait = this.#channel.whenReady({
      ready: () => {
        this.#forgetReadyWait = undefined;
        if (this.#finished) return;
        const stream = this.#openRetry(headers);
        if (stream === undefined) {
          this.#status = {
            code: Status.UNAVAILABLE,
            details: `Cannot reach ${this.#channel.authority}: ${
              this.#channel.describeLastError() ?? "Connection failed"
            }`,
            trailers: {},
          };
          this.#finish();
          return;
        }
        this.#resumeOn(stream, held);
      },
      closed: () => {
        this.#forgetReadyWait = undefined;
        if (this.#finished) return;
        this.#status = {
          code: Status.UNAVAILABLE,
          details: "Client closed while the call waited for a connection",
          trailers: {},
          local: true,
        };
        this.#finish();
      },
    });
  }

  /** Goes on on `stream`, a retry's, re-sending `held` and what was written since. */
  #resumeOn(stream: http2.ClientHttp2Stream, held: Buffer[]): void {
    this.#stream = stream;
    this.#session = stream.session;
    this.#error = undefined;
    this.#early = [];
    this.#listen(stream);
    // Frames written while a retry waited for ready, which it does not hold.
    const later = this.#held === undefined ? this.#queued : [];
    this.#queued = [];
    this.#queuedBytes = 0;
    this.#stopWaitingForSlot();
    for (const frame of held) stream.write(frame);
    for (const frame of later) stream.write(frame);
    if (this.#halfClosed) stream.end();
    if (this.#paused) stream.pause();
  }

  /** Ends the call from this side: the server sees it cancelled; the status is `code`. */
  cancel(
    code: number = Status.CANCELLED,
    details = "Cancelled on the client",
  ): void {
    if (this.#finished) return;
    this.#status = { code, details, trailers: {}, local: true };
    this.#finish();
    this.#channel.resetStream(this.#stream, this.#answered);
  }

  /** Whether the server has begun its answer: headers, or data ahead of them. */
  get #answered(): boolean {
    return this.#early === undefined || this.#early.length > 0;
  }

  #onResponse(headers: http2.IncomingHttpHeaders): void {
    const early = this.#early ?? [];
    this.#early = undefined;
    this.#commit();
    this.#checkResponse(headers);
    for (const chunk of early) this.#onData(chunk);
  }

  #checkResponse(headers: http2.IncomingHttpHeaders): void {
    const httpStatus = Number(headers[HTTP2_HEADER_STATUS]);
    const trailersOnly = statusFromHeaders(headers);
    if (trailersOnly !== undefined) {
      this.#status ??= trailersOnly;
      return;
    }
    // Not a gRPC response (a proxy's error page, a web server): the HTTP status says what
    // happened, as gRPC maps it (doc/http-grpc-status-mapping.md); the body is not read.
    const contentType = String(headers[HTTP2_HEADER_CONTENT_TYPE] ?? "");
    if (httpStatus !== 200) {
      this.#endEarly({
        code: statusFromHttp(httpStatus),
        details: `Server answered with HTTP status ${httpStatus}${
          contentType === "" ? "" : ` (${contentType})`
        }`,
        trailers: toTrailers(headers),
      });
    } else if (!/^application\/grpc(?:$|[+;])/.test(contentType)) {
      this.#endEarly({
        code: Status.UNKNOWN,
        details: `Server answered with content type ${contentType || "(none)"}`,
        trailers: toTrailers(headers),
      });
    }
  }

  /** Ends the call with `status` at once and resets its stream, leaving the body unread. */
  #endEarly(status: CallStatus): void {
    if (this.#finished) return;
    this.#status = status;
    this.#finish();
    this.#channel.resetStream(this.#stream);
  }

  #onData(chunk: Buffer): void {
    if (this.#finished) return;
    if (this.#early !== undefined) {
      this.#early.push(Buffer.from(chunk));
      return;
    }
    this.#decoder.write(chunk);
  }

  #onClose(): void {
    if (this.#finished) return;
    if (this.#status !== undefined) {
      // The stream can close before 'end' when it was reset after the trailers.
      this.#finish();
      return;
    }
    if (this.#retryUnprocessed()) return;
    // A connection that went down takes its streams with it: its cause explains them best.
    const sessionLost = this.#session?.destroyed === true ||
      this.#session?.closed === true;
    const error = sessionLost
      ? this.#channel.lastError ?? this.#error
      : this.#error ?? this.#channel.lastError;
    let code: number = Status.INTERNAL;
    let details =
      `Stream closed without a gRPC status (HTTP/2 code ${this.#stream.rstCode})`;
    if (this.#stream.rstCode === NGHTTP2_REFUSED_STREAM) {
      code = Status.UNAVAILABLE;
      details = "Stream refused by the server";
    } else if (this.#stream.rstCode === NGHTTP2_ENHANCE_YOUR_CALM) {
      code = Status.RESOURCE_EXHAUSTED;
      details = "Server reported too much load (ENHANCE_YOUR_CALM)";
    } else if (this.#stream.rstCode === NGHTTP2_INADEQUATE_SECURITY) {
      code = Status.PERMISSION_DENIED;
      details = "Connection not secure enough";
    } else if (
      error !== undefined && isConnectionError(error)
    ) {
      code = Status.UNAVAILABLE;
      details = `Cannot reach ${this.#channel.authority}: ${
        describeConnectionError(error)
      }`;
    } else if (sessionLost) {
      code = Status.UNAVAILABLE;
      details =
        `Connection to ${this.#channel.authority} closed during the call${
          error === undefined ? "" : `: ${error.message}`
        }`;
    } else if (this.#stream.rstCode === NGHTTP2_CANCEL) {
      code = Status.CANCELLED;
      details = "Call cancelled by the server";
    } else if (error !== undefined) {
      details = `Stream failed: ${error.message}`;
    }
    this.#status = {
      code,
      details,
      trailers: {},
      ...(error === undefined ? {} : { cause: error }),
    };
    this.#finish();
  }

  #maybeFinish(): void {
    if (this.#readEnded && this.#status !== undefined) this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#timer?.clear();
    this.#commit();
    // A call that ends before the turn's queued requests are written never writes them (see
    // `#queue`): a cancelled call reaches the server as a reset, not as a finished request.
    this.#queued = [];
    this.#queuedBytes = 0;
    this.#stopWaitingForSlot();
    this.#forgetReadyWait?.();
    this.#forgetReadyWait = undefined;
    let status = this.#status!;
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

/** How a {@linkcode Channel} secures its connection: already checked, PEM text or bytes. */
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

/** Options for a {@linkcode Channel}. */
export interface ChannelOptions {
  /** The largest message accepted from the server, in bytes. */
  maxReceiveMessageBytes: number;
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
   * {@linkcode CallSetup.waitForReady}).
   *
   * @default {false}
   */
  waitForReady?: boolean | undefined;
}

/**
 * A cancelled stream waits, paused, for its server to use up what is left of the stream's
 * flow-control window, or to stop sending, before it is reset; see
 * {@linkcode resetWhenQuiet}.
 */
const RESET_CHECK_MS = 10;
/** How often a call waiting behind the server's stream limit checks whether its HEADERS went. */
const SLOT_CHECK_MS = 10;
/** A remainder of the window small enough to reset at once: a few frames at most. */
const RESET_WINDOW_BYTES = 64;
/** The longest a reset waits for the window to be used up. */
const RESET_WAIT_MS = 1_000;
/**
 * How long a cancelled stream whose server has not answered at all waits for an answer
 * already on its way before it is reset: such a server is reading the request (a `Sum`
 * server waiting for its next number), so it should hear of the cancel at once.
 */
const RESET_UNANSWERED_MS = 30;

/** Options for {@linkcode resetWhenQuiet}. */
export interface ResetOptions {
  /**
   * Whether the server has begun its answer (headers or data arrived): only a stream whose
   * server has not is reset within {@linkcode RESET_UNANSWERED_MS}.
   *
   * @default {true}
   */
  answered?: boolean | undefined;
  /** Called once the stream has been reset or has closed. */
  settled?: (() => void) | undefined;
}

function localWindow(stream: http2.ClientHttp2Stream): number | undefined {
  try {
    return stream.state?.localWindowSize;
  } catch {
    return undefined;
  }
}

/**
 * Whether `stream`'s HEADERS frame has not been sent yet, so that a reset now would be lost.
 * Deno 2.9.6's `node:http2` sends a request's HEADERS at the next `setImmediate` (or
 * later, behind the server's stream limit), and until then nghttp2 has no stream for it (its
 * state reads idle); its `rstStream` drops a reset for a stream nghttp2 does not have, and the
 * HEADERS still go out: the server sees a request that never ends (a `Sum` waits for numbers
 * until the connection closes). Node's own `rstStream` cancels the unsent HEADERS instead.
 * Remove once Deno's `submit_rst_stream` (ext/node/ops/http2/session.rs) hands such a reset to
 * nghttp2 (no upstream issue found as of Deno 2.9.6).
 */
function headersUnsent(stream: http2.ClientHttp2Stream): boolean {
  // A stream with no id yet (its connection is being set up) is dropped whole by a reset.
  if (stream.closed || stream.destroyed || stream.pending) return false;
  try {
    return stream.state?.state === NGHTTP2_STREAM_STATE_IDLE;
  } catch {
    return false;
  }
}

/**
 * Resets `stream` with `RST_STREAM(CANCEL)` and nothing before it. `stream.close(CANCEL)` in
 * Deno 2.9.6's `node:http2` ends the writable side first, so a server reading a request
 * stream (`Sum`, `Sqrt`) gets an empty DATA frame with END_STREAM, takes it as the end of the
 * request and answers in full; the reset that follows comes too late. Destroying the stream
 * with Node's `AbortError` (which `addAbortSignal` does) takes the path that submits the
 * reset first (denoland/deno#33633). Remove once `close(NGHTTP2_CANCEL)` resets first.
 */
function cancelStream(stream: http2.ClientHttp2Stream): void {
  if (stream.closed || stream.destroyed) return;
  const controller = new AbortController();
  addAbortSignal(controller.signal, stream);
  controller.abort();
}

/**
 * Resets a stream this side has given up on (`RST_STREAM(CANCEL)`) once its server has
 * stopped sending, so the connection survives a server that goes on sending after a cancel.
 *
 * A server sends the DATA frames it had in flight after the reset, as RFC 9113 allows, and
 * grpc-go sends each message in a frame of its own. The nghttp2 inside Deno 2.9 (1.68.0)
 * counts every frame for a stream it no longer has as a "glitch" and ends the whole
 * connection with `GOAWAY(ENHANCE_YOUR_CALM)` when they come too fast (nghttp2/nghttp2#2597;
 * nghttp2 1.69.0 stopped counting them, so this can go once Deno ships it). Deno 2.9.6's
 * nghttp2 allows a burst of only 1,000 such frames, then 33 a second. The stream is
 * paused instead, so its flow-control window is no longer replenished, and reset once the
 * server has used up the window (nothing can follow the reset then), or after a second at
 * most (a server that sent that little in a second sends little after the reset too). A
 * server that has not answered at all and has not had the whole request is reading it and
 * sends nothing, so its stream is reset after {@linkcode RESET_UNANSWERED_MS} (if no answer
 * turns up meanwhile):
 * a `Sum` server hears of the cancel within tens of milliseconds. (A window that stops
 * moving does not show that the server stopped: Deno 2.9.6 often stops reading a paused
 * stream's data, so its window stands still while the server's frames queue up unread.)
 * The caller has its status at once; only the server hears of the cancel later. The reset
 * goes out first, with no END_STREAM before it (see `cancelStream`).
 *
 * @param stream The stream; the call on it has already reported its status.
 * @param options Whether the server has answered, and what to call once the stream is reset.
 * @returns A function that resets the stream at once, if it has not been already.
 */
export function resetWhenQuiet(
  stream: http2.ClientHttp2Stream,
  options: ResetOptions = {},
): () => void {
  const { settled } = options;
  if (stream.closed || stream.destroyed) {
    settled?.();
    return () => {};
  }
  stream.pause();
  const started = Date.now();
  let answered = options.answered ?? true;
  // A server with the whole request (a `Pow`) answers whatever it has heard, and may flood
  // the window after the reset if it is reset before its answer arrives (seen on a busy
  // machine): only a server still reading a request is quiet until it ends.
  const requestSent = stream.writableEnded;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let done = false;
  const onResponse = (): void => {
    answered = true;
  };
  const reset = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    stream.off("close", reset);
    stream.off("response", onResponse);
    cancelStream(stream);
    settled?.();
  };
  const check = (): void => {
    if (headersUnsent(stream)) {
      timer = setTimeout(check, RESET_CHECK_MS);
      return;
    }
    const window = localWindow(stream);
    const waited = Date.now() - started;
    if (
      (window !== undefined && window <= RESET_WINDOW_BYTES) ||
      (!answered && !requestSent && waited >= RESET_UNANSWERED_MS) ||
      waited >= RESET_WAIT_MS
    ) {
      reset();
      return;
    }
    timer = setTimeout(check, RESET_CHECK_MS);
  };
  const window = localWindow(stream);
  if (
    !headersUnsent(stream) && window !== undefined &&
    window <= RESET_WINDOW_BYTES
  ) {
    reset();
    return reset;
  }
  stream.once("close", reset);
  stream.on("response", onResponse);
  timer = setTimeout(check, RESET_CHECK_MS);
  return reset;
}

/**
 * Sends what the HTTP/2 session writes to `socket` in one turn as one `writev`. Deno 2.9.6's
 * `node:http2` writes each frame it takes from nghttp2 with a `socket.write` of its own, so a
 * call's HEADERS and its first DATA frame were two system calls and two packets; corked, they
 * go out together, within the same turn (the uncork runs in the same `nextTick` queue).
 */
function coalesceWrites(socket: net.Socket): void {
  const write = socket.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (
    this: net.Socket,
    ...args: Parameters<net.Socket["write"]>
  ): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as net.Socket["write"];
}

/**
 * Where a channel's connection stands, as gRPC names the states: none (`idle`: not opened
 * yet, or lost, so the next call dials at once), an attempt under way (`connecting`: TCP,
 * TLS, then the server's SETTINGS frame, within the connect timeout), a connection calls can
 * use (`ready`), or a pause after a failed attempt (`backoff`, until `retryAt`).
 */
type Connection =
  | { state: "idle" }
  | {
    state: "connecting";
    session: http2.ClientHttp2Session;
    socket: net.Socket;
    /** Ends the attempt once the connect timeout has passed. */
    timer: ReturnType<typeof setTimeout>;
  }
  | { state: "ready"; session: http2.ClientHttp2Session; socket: net.Socket }
  | {
    state: "backoff";
    /** When the next attempt is due, in epoch milliseconds. */
    retryAt: number;
    /** Dials when wait-for-ready calls are waiting; none otherwise. */
    timer: ReturnType<typeof setTimeout> | undefined;
  };

/** The phases of a connection attempt, for the words of a connect timeout. */
type AttemptPhase = "tcp" | "tls" | "settings";

function describeConnectTimeout(
  phase: AttemptPhase,
  timeoutMs: number,
): string {
  switch (phase) {
    case "tcp":
      return `No TCP connection within ${timeoutMs} ms (connect timeout)`;
    case "tls":
      return `Server did not complete the TLS handshake within ${timeoutMs} ms (connect timeout; TCP connected)`;
    case "settings":
      return `Server did not complete the HTTP/2 handshake within ${timeoutMs} ms (connect timeout; TCP connected, no SETTINGS frame from the server)`;
  }
}

/**
 * An HTTP/2 connection to one server, opened on the first call, reopened after it is lost,
 * and shared by every call.
 *
 * A connection attempt is ready once the server's SETTINGS frame has arrived, and must get
 * there within the connect timeout. After a failed attempt the next one waits its backoff;
 * calls meanwhile fail fast with `UNAVAILABLE`, as gRPC's do by default, unless they wait for
 * ready: then the channel dials again when its backoff is over, and at once when such a call
 * arrives and the last attempt began at least {@linkcode WAIT_FOR_READY_REDIAL_MS} before.
 */
export class Channel implements WaitingChannel {
  readonly authority: string;
  #url: string;
  #options: ChannelOptions;
  #connection: Connection = { state: "idle" };
  #activeCalls = 0;
  #closed = false;
  /** What the calls of this channel hold for transparent retries, in bytes. */
  #retryBytes = 0;
  /** The last-stream-id of the GOAWAY each connection received. */
  #goaways = new WeakMap<http2.Http2Session, number>();
  /** The streams each connection has opened and not yet closed, sent or not. */
  #openStreams = new WeakMap<http2.Http2Session, number>();
  /** Cancelled streams waiting to be reset, each with what resets it now. */
  #pendingResets = new Set<() => void>();
  /** Calls that wait for the channel to be ready. */
  #waiters = new Set<ReadyWaiter>();
  #keepalive: ReturnType<typeof setInterval> | undefined;
  #pingTimer: ReturnType<typeof setTimeout> | undefined;
  #backoffMs: number;
  /** When the last connection attempt began, in epoch milliseconds. */
  #lastAttemptAt = 0;
  /** The last connection-level error, to explain why a stream failed. */
  lastError: (Error & { code?: string }) | undefined;

  constructor(authority: string, options: ChannelOptions) {
    this.authority = authority;
    this.#url = `${
      options.tls === undefined ? "http" : "https"
    }://${authority}`;
    this.#options = options;
    this.#backoffMs = options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
  }

  /** Whether the channel has a connection calls can use. */
  get ready(): boolean {
    return this.#connection.state === "ready";
  }

  /** The connection calls go on, while an attempt is under way or once it is ready. */
  get #session(): http2.ClientHttp2Session | undefined {
    const connection = this.#connection;
    return connection.state === "connecting" || connection.state === "ready"
      ? connection.session
      : undefined;
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
    if (waitForReady === true && this.#connection.state !== "ready") {
      return new WaitingCall(this, { path, setup });
    }
    return this.#startNow(path, setup);
  }

  #startNow(path: string, setup: CallSetup): GrpcCall {
    const { headers = {}, deadline, listener } = setup;
    const session = this.#connect();
    const requestHeaders: http2.OutgoingHttpHeaders = {
      ...headers,
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      "te": "trailers",
      "user-agent": USER_AGENT,
    };
    // A grpc-js server meets a timeout longer than a timer can wait by expiring the call at
    // once; such a far deadline is left to this side's own timer.
    if (deadline !== undefined && deadline - Date.now() <= MAX_TIMER_MS) {
      requestHeaders["grpc-timeout"] = encodeTimeout(deadline - Date.now());
    }
    const telemetry = startClientCall(path, {
      authority: this.authority,
      headers: requestHeaders,
    });
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.#request(session, { headers: requestHeaders, telemetry });
    } catch (error) {
      telemetry?.end(Status.UNAVAILABLE, String((error as GrpcError).cause));
      throw error;
    }
    this.#activeCalls += 1;
    if (this.#activeCalls === 1) this.#startKeepalive();
    return new GrpcCall(stream, {
      channel: this,
      listener,
      deadline,
      maxReceiveBytes: this.#options.maxReceiveMessageBytes,
      maxSendBytes: this.#options.maxSendMessageBytes ?? Infinity,
      telemetry,
      requestHeaders,
      waitForReady: setup.waitForReady ?? this.#options.waitForReady ?? false,
    });
  }

  /**
   * Has `waiter` told once the channel is ready, dialling now if it is idle, or if it backs
   * off and the last attempt began at least {@linkcode WAIT_FOR_READY_REDIAL_MS} ago;
   * otherwise when the backoff is over.
   *
   * @param waiter What to tell.
   * @returns A function that forgets the waiter (its call ended while it waited).
   */
  whenReady(waiter: ReadyWaiter): () => void {
    if (this.#closed) {
      waiter.closed();
      return () => {};
    }
    this.#waiters.add(waiter);
    this.#serveWaiters(true);
    return () => {
      this.#waiters.delete(waiter);
      const connection = this.#connection;
      if (
        this.#waiters.size === 0 && connection.state === "backoff" &&
        connection.timer !== undefined
      ) {
        clearTimeout(connection.timer);
        connection.timer = undefined;
      }
    };
  }

  /**
   * Moves the calls waiting for ready along: starts them on a ready channel, or dials (see
   * {@linkcode Channel.whenReady}). `arrival` says a call has just come to wait.
   */
  #serveWaiters(arrival: boolean): void {
    if (this.#waiters.size === 0 || this.#closed) return;
    const connection = this.#connection;
    switch (connection.state) {
      case "ready": {
        const waiters = [...this.#waiters];
        this.#waiters.clear();
        for (const waiter of waiters) waiter.ready();
        return;
      }
      case "connecting":
        return;
      case "idle":
        this.#dial();
        return;
      case "backoff": {
        const now = Date.now();
        if (
          now >= connection.retryAt ||
          (arrival && now - this.#lastAttemptAt >= WAIT_FOR_READY_REDIAL_MS)
        ) {
          clearTimeout(connection.timer);
          this.#dial();
          return;
        }
        connection.timer ??= setTimeout(() => {
          connection.timer = undefined;
          if (this.#connection === connection) this.#serveWaiters(false);
        }, connection.retryAt - now);
        return;
      }
    }
  }

  /** Why the channel has no connection, for a call that gave up waiting for one. */
  describeLastError(): string | undefined {
    return this.lastError === undefined
      ? undefined
      : describeConnectionError(this.lastError);
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
  ): http2.ClientHttp2Stream {
    if (this.#closed) {
      throw new GrpcError(Status.UNAVAILABLE, "Client is closed");
    }
    return this.#request(this.#connect(), { headers, telemetry });
  }

  #request(
    session: http2.ClientHttp2Session,
    { headers, telemetry }: {
      headers: http2.OutgoingHttpHeaders;
      telemetry: CallRecorder | undefined;
    },
  ): http2.ClientHttp2Stream {
    let stream: http2.ClientHttp2Stream;
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
  behindStreamLimit(stream: http2.ClientHttp2Stream): boolean {
    const session = stream.session;
    if (session === undefined || session === null) return false;
    const limit = session.remoteSettings?.maxConcurrentStreams;
    const open = this.#openStreams.get(session) ?? 0;
    return typeof limit === "number" && open - 1 >= limit;
  }

  /**
   * Takes `bytes` more (or gives back `-bytes`) of the channel's transparent-retry buffer.
   *
   * @param bytes How many bytes a call holds for a retry, negative for bytes it lets go.
   * @returns Whether they fit within {@linkcode RETRY_BUFFER_CHANNEL_BYTES}; if not, nothing
   * is taken.
   */
  holdForRetry(bytes: number): boolean {
    if (bytes > 0 && this.#retryBytes + bytes > RETRY_BUFFER_CHANNEL_BYTES) {
      return false;
    }
    this.#retryBytes += bytes;
    return true;
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
    stream: http2.ClientHttp2Stream,
    session: http2.Http2Session | undefined,
  ): boolean {
    if (stream.rstCode === NGHTTP2_REFUSED_STREAM) return true;
    const lastStreamId = session && this.#goaways.get(session);
    return lastStreamId !== undefined && stream.id !== undefined &&
      stream.id > lastStreamId;
  }

  /** Called by each call when it ends, so an idle connection does not keep Deno alive. */
  callEnded(): void {
    this.#activeCalls -= 1;
    if (this.#activeCalls > 0) return;
    this.#stopKeepalive();
    if (this.#closed) this.#disconnect();
    else this.#session?.unref();
  }

  /**
   * Closes the connection once the calls in flight have ended. Calls still waiting for a
   * connection end with `UNAVAILABLE`.
   */
  close(): void {
    this.#closed = true;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) waiter.closed();
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
  resetStream(stream: http2.ClientHttp2Stream, answered = true): void {
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

  /** Pings the server every `keepaliveMs` while calls are in flight. */
  #startKeepalive(): void {
    const interval = this.#options.keepaliveMs;
    if (interval === undefined || this.#keepalive !== undefined) return;
    this.#keepalive = setInterval(() => this.#ping(), interval);
  }

  #stopKeepalive(): void {
    clearInterval(this.#keepalive);
    this.#keepalive = undefined;
    clearTimeout(this.#pingTimer);
    this.#pingTimer = undefined;
  }

  /**
   * Sends one PING; a connection that does not answer within `keepaliveTimeoutMs` is half
   * open (a peer that vanished without closing it), so it is dropped and its calls end with
   * `UNAVAILABLE` instead of waiting forever.
   */
  #ping(): void {
    const session = this.#session;
    if (
      session === undefined || session.destroyed ||
      this.#pingTimer !== undefined
    ) {
      return;
    }
    const timeout = this.#options.keepaliveTimeoutMs ??
      DEFAULT_KEEPALIVE_TIMEOUT_MS;
    this.#pingTimer = setTimeout(() => {
      this.#pingTimer = undefined;
      if (this.#session !== session) return;
      this.lastError = Object.assign(
        new Error(`No answer to a keepalive ping within ${timeout} ms`),
        { code: "ERR_GRPC_KEEPALIVE_TIMEOUT" },
      );
      this.#disconnect();
    }, timeout);
    try {
      session.ping(() => {
        clearTimeout(this.#pingTimer);
        this.#pingTimer = undefined;
      });
    } catch {
      // The session is closing; its calls end on their own.
      clearTimeout(this.#pingTimer);
      this.#pingTimer = undefined;
    }
  }

  /**
   * Drops the connection by closing its socket, without the GOAWAY frame a session close
   * sends: under Deno 2.9, a GOAWAY that reaches a grpc-js server after a stream of a few
   * thousand messages can abort the server's process inside nghttp2 (denoland/deno#36788).
   * Nothing is lost, since no call is in flight.
   */
  #disconnect(): void {
    // Streams still waiting for their reset go with the connection.
    for (const reset of [...this.#pendingResets]) reset();
    const connection = this.#connection;
    this.#connection = { state: "idle" };
    switch (connection.state) {
      case "connecting":
        clearTimeout(connection.timer);
        // falls through
      case "ready":
        connection.socket.destroy();
        connection.session.destroy();
        break;
      case "backoff":
        clearTimeout(connection.timer);
        break;
    }
  }

  #connect(): http2.ClientHttp2Session {
    const session = this.#session;
    if (session !== undefined && !session.closed && !session.destroyed) {
      return session;
    }
    // After a failed attempt the next one waits its backoff; calls meanwhile fail fast, as
    // gRPC's do by default (no wait-for-ready), rather than each dialling again.
    const connection = this.#connection;
    const wait = connection.state === "backoff"
      ? connection.retryAt - Date.now()
      : 0;
    if (wait > 0) {
      throw new GrpcError(
        Status.UNAVAILABLE,
        `Cannot reach ${this.authority}: ${
          this.describeLastError() ?? "Connection failed"
        } (next attempt in ${Math.ceil(wait)} ms)`,
        { cause: this.lastError },
      );
    }
    return this.#dial();
  }

  /** Makes a connection attempt, which is `connecting` until the server's SETTINGS arrive. */
  #dial(): http2.ClientHttp2Session {
    const previous = this.#connection;
    if (previous.state === "connecting" || previous.state === "backoff") {
      clearTimeout(previous.timer);
    }
    this.#lastAttemptAt = Date.now();
    const { hostname, port } = new URL(this.#url);
    const host = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
    const tlsSettings = this.#options.tls;
    const socket = tlsSettings === undefined
      ? net.connect({ host, port: Number(port || 80) })
      : this.#connectTls({ host, port: Number(port || 443) }, tlsSettings);
    socket.setNoDelay(true);
    coalesceWrites(socket);
    this.lastError = undefined;
    let phase: AttemptPhase = "tcp";
    socket.once("connect", () => {
      phase = tlsSettings === undefined ? "settings" : "tls";
    });
    socket.once("secureConnect", () => {
      phase = "settings";
    });
    // Node's http2 reports a failed connection to the streams waiting on it before the
    // session's own error: the socket's error comes first.
    socket.once("error", (error: Error & { code?: string }) => {
      if (this.#session === session) this.lastError ??= error;
    });
    // A server that drops the connection (one refusing a client certificate, or one that
    // speaks TLS to a plaintext client) may close it without an error: the calls on it must
    // then end UNAVAILABLE rather than CANCELLED.
    socket.once("end", () => {
      if (this.#session === session) {
        this.lastError ??= Object.assign(
          new Error("Connection closed by the server"),
          { code: "ECONNRESET" },
        );
      }
    });
    const session = http2.connect(this.#url, {
      createConnection: () => socket,
    });
    const timeoutMs = this.#options.connectTimeoutMs ??
      DEFAULT_CONNECT_TIMEOUT_MS;
    // An infinite timeout never fires (`setTimeout` would fire at once).
    const timer = setTimeout(() => {
      if (this.#session !== session || !Number.isFinite(timeoutMs)) return;
      this.lastError = Object.assign(
        new Error(describeConnectTimeout(phase, timeoutMs)),
        { code: "ERR_GRPC_CONNECT_TIMEOUT" },
      );
      socket.destroy();
      session.destroy();
    }, Number.isFinite(timeoutMs) ? timeoutMs : MAX_TIMER_MS);
    // gRPC counts a connection as up once the server's SETTINGS frame has arrived: a peer
    // that accepts TCP and says nothing is not a server.
    session.once("remoteSettings", () => {
      const connection = this.#connection;
      if (connection.state !== "connecting" || connection.session !== session) {
        return;
      }
      clearTimeout(connection.timer);
      this.#connection = { state: "ready", session, socket };
      this.#backoffMs = this.#options.initialBackoffMs ??
        DEFAULT_INITIAL_BACKOFF_MS;
      this.#serveWaiters(false);
    });
    session.once("close", () => {
      const connection = this.#connection;
      if (
        (connection.state !== "connecting" && connection.state !== "ready") ||
        connection.session !== session
      ) {
        return;
      }
      if (connection.state === "ready" || this.#closed) {
        // A connection that was up is redialled at once, by the next call.
        this.#connection = { state: "idle" };
        this.#serveWaiters(false);
        return;
      }
      clearTimeout(connection.timer);
      this.#backOff();
    });
    // A server that shuts down gracefully sends a GOAWAY; see workarounds/deno_goaway_close.ts.
    deferCloseAfterGoaway(session);
    session.on("error", (error: Error & { code?: string }) => {
      this.lastError = error;
    });
    session.on("goaway", (_code: number, lastStreamId: number) => {
      this.#goaways.set(session, lastStreamId);
      // Its calls finish on it; new ones go on a new connection.
      if (this.#session === session) {
        this.#connection = { state: "idle" };
        this.#serveWaiters(false);
      }
    });
    this.#connection = { state: "connecting", session, socket, timer };
    return session;
  }

  /** A connection attempt failed: the next one waits, longer after each failure. */
  #backOff(): void {
    const jitter = 1 + BACKOFF_JITTER * (2 * Math.random() - 1);
    const retryAt = Date.now() + this.#backoffMs * jitter;
    this.#backoffMs = Math.min(
      this.#backoffMs *
        (this.#options.backoffMultiplier ?? DEFAULT_BACKOFF_MULTIPLIER),
      this.#options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS,
    );
    this.#connection = { state: "backoff", retryAt, timer: undefined };
    this.#serveWaiters(false);
  }

  /**
   * Opens a TLS connection that offers only HTTP/2 (ALPN `h2`), as gRPC requires. A handshake
   * that fails (an untrusted or mismatched certificate, a refused client certificate) ends
   * the calls on it with `UNAVAILABLE`.
   */
  #connectTls(
    { host, port }: { host: string; port: number },
    settings: ChannelTls,
  ): tls.TLSSocket {
    const serverName = settings.serverName ?? host;
    const socket = tls.connect({
      host,
      port,
      ALPNProtocols: ["h2"],
      // SNI carries host names only; an IP address is checked against the certificate's
      // IP addresses without it (Deno refuses an IP address as `servername`).
      ...(net.isIP(serverName) === 0 ? { servername: serverName } : {}),
      ...(settings.serverName === undefined ? {} : {
        checkServerIdentity: (_: string, certificate: tls.PeerCertificate) =>
          tls.checkServerIdentity(serverName, certificate),
      }),
      ...(settings.ca === undefined ? {} : { ca: settings.ca }),
      ...(settings.cert === undefined ? {} : { cert: settings.cert }),
      ...(settings.key === undefined ? {} : { key: settings.key }),
    } as tls.ConnectionOptions);
    return socket;
  }
}
