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
import { deferCloseAfterGoaway } from "../proto/http2_session.ts";
import { GrpcError, Status, type Trailers } from "./grpc_error.ts";
import {
  type CallRecorder,
  inCallContext,
  startClientCall,
} from "./telemetry.ts";

/** How a call ended. */
export interface CallStatus {
  /** The gRPC status code. */
  code: number;
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
  /** One message arrived (without its 5-byte prefix). */
  onMessage(message: Buffer): void;
  /** The call is over; every message before the status has been reported. */
  onStatus(status: CallStatus): void;
}

/** The largest message a client accepts unless told otherwise, as in other gRPC clients. */
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024;

const {
  HTTP2_HEADER_STATUS,
  HTTP2_HEADER_CONTENT_TYPE,
  NGHTTP2_CANCEL,
  NGHTTP2_REFUSED_STREAM,
  NGHTTP2_ENHANCE_YOUR_CALM,
  NGHTTP2_INADEQUATE_SECURITY,
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
]);

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

/** The longest a timer can wait; longer delays fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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

function toTrailers(headers: http2.IncomingHttpHeaders): Trailers {
  const trailers: Trailers = {};
  for (const [key, value] of Object.entries(headers)) {
    if (key.startsWith(":") || value === undefined) continue;
    const values = Array.isArray(value) ? value : String(value).split(/,\s*/);
    trailers[key] = key.endsWith("-bin")
      ? values.map((item) => new Uint8Array(Buffer.from(item, "base64")))
      : values;
  }
  return trailers;
}

function statusFromHeaders(
  headers: http2.IncomingHttpHeaders,
): CallStatus | undefined {
  const code = headers["grpc-status"];
  if (code === undefined) return undefined;
  const parsed = Number(code);
  return {
    code: Number.isInteger(parsed) && parsed >= 0 ? parsed : Status.UNKNOWN,
    details: decodeDetails(headers["grpc-message"]),
    trailers: toTrailers(headers),
  };
}

/** Splits the response body into gRPC messages (1-byte flag, 4-byte length, message). */
class MessageDecoder {
  #pending: Buffer | undefined;
  #maxBytes: number;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Returns the complete messages, or a status if the body is malformed. */
  push(
    chunk: Buffer,
    deliver: (message: Buffer) => void,
  ): CallStatus | undefined {
    let buffer = this.#pending === undefined
      ? chunk
      : Buffer.concat([this.#pending, chunk]);
    this.#pending = undefined;
    while (buffer.length >= 5) {
      if (buffer[0] !== 0) {
        return {
          code: Status.INTERNAL,
          details:
            "Received a compressed message, but no compression was negotiated",
          trailers: {},
        };
      }
      const length = buffer.readUInt32BE(1);
      if (length > this.#maxBytes) {
        return {
          code: Status.RESOURCE_EXHAUSTED,
          details:
            `Received message larger than max: ${length} > ${this.#maxBytes} bytes`,
          trailers: {},
        };
      }
      if (buffer.length < 5 + length) break;
      deliver(buffer.subarray(5, 5 + length));
      buffer = buffer.subarray(5 + length);
    }
    if (buffer.length > 0) this.#pending = Buffer.from(buffer);
    return undefined;
  }

  get empty(): boolean {
    return this.#pending === undefined;
  }
}

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
  /** The call's span and metrics, when OpenTelemetry is on. */
  telemetry?: CallRecorder | undefined;
}

/** How to start a call with {@linkcode Channel.startCall}. */
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
}

/** One call on a channel: request headers sent, messages written and read, one status. */
export class GrpcCall {
  #stream: http2.ClientHttp2Stream;
  #listener: CallListener;
  #decoder: MessageDecoder;
  #status: CallStatus | undefined;
  #readEnded = false;
  #finished = false;
  #error: (Error & { code?: string }) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #channel: Channel;
  #telemetry: CallRecorder | undefined;

  /**
   * @param stream The HTTP/2 stream the call runs on, its request headers sent.
   * @param setup The channel it belongs to, who hears about it, and its limits.
   */
  constructor(stream: http2.ClientHttp2Stream, setup: GrpcCallSetup) {
    const { channel, listener, deadline, maxReceiveBytes } = setup;
    this.#channel = channel;
    this.#telemetry = setup.telemetry;
    this.#stream = stream;
    this.#listener = listener;
    this.#decoder = new MessageDecoder(maxReceiveBytes);
    stream.on("response", (headers) => this.#onResponse(headers));
    stream.on("data", (chunk: Buffer) => this.#onData(chunk));
    stream.on("trailers", (headers) => {
      this.#status ??= statusFromHeaders(headers) ?? {
        code: Status.INTERNAL,
        details: "Server ended the call without a gRPC status",
        trailers: toTrailers(headers),
      };
    });
    stream.on("end", () => {
      this.#readEnded = true;
      this.#maybeFinish();
    });
    stream.on("error", (error: Error & { code?: string }) => {
      this.#error ??= error;
    });
    stream.on("close", () => this.#onClose());
    if (deadline !== undefined) this.#armDeadline(deadline);
  }

  /**
   * Ends the call with `DEADLINE_EXCEEDED` at `deadline`. A timer cannot wait longer than
   * 2^31 - 1 ms (it would fire at once), so a far deadline waits in steps.
   */
  #armDeadline(deadline: number): void {
    const remaining = Math.max(0, deadline - Date.now());
    this.#timer = setTimeout(() => {
      if (Date.now() < deadline) this.#armDeadline(deadline);
      else this.cancel(Status.DEADLINE_EXCEEDED, "Deadline exceeded");
    }, Math.min(remaining, MAX_TIMER_MS));
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
    const frame = Buffer.allocUnsafe(5 + message.length);
    frame[0] = 0;
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    this.#telemetry?.sent();
    return this.#stream.write(frame);
  }

  /** Resolves when the call can take more writes, or when it has ended. */
  drained(): Promise<void> {
    if (this.#finished) return Promise.resolve();
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
    if (!this.#finished) this.#stream.end();
  }

  /** Stops reading from the network until {@linkcode GrpcCall.resume}. */
  pause(): void {
    this.#stream.pause();
  }

  /** Reads from the network again. */
  resume(): void {
    this.#stream.resume();
  }

  /** Ends the call from this side: the server sees it cancelled; the status is `code`. */
  cancel(
    code: number = Status.CANCELLED,
    details = "Cancelled on the client",
  ): void {
    if (this.#finished) return;
    this.#status = { code, details, trailers: {}, local: true };
    this.#finish();
    this.#stream.close(NGHTTP2_CANCEL);
  }

  #onResponse(headers: http2.IncomingHttpHeaders): void {
    const httpStatus = Number(headers[HTTP2_HEADER_STATUS]);
    const trailersOnly = statusFromHeaders(headers);
    if (trailersOnly !== undefined) {
      this.#status ??= trailersOnly;
      return;
    }
    if (httpStatus !== 200) {
      this.#status ??= {
        code: statusFromHttp(httpStatus),
        details: `Server answered with HTTP status ${httpStatus}`,
        trailers: toTrailers(headers),
      };
      return;
    }
    const contentType = String(headers[HTTP2_HEADER_CONTENT_TYPE] ?? "");
    if (!contentType.startsWith("application/grpc")) {
      this.#status ??= {
        code: Status.UNKNOWN,
        details: `Server answered with content type ${contentType || "(none)"}`,
        trailers: toTrailers(headers),
      };
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#finished) return;
    const failure = this.#decoder.push(chunk, (message) => {
      if (this.#finished) return;
      this.#telemetry?.received();
      this.#listener.onMessage(message);
    });
    if (failure !== undefined) this.cancel(failure.code, failure.details);
  }

  #onClose(): void {
    if (this.#finished) return;
    if (this.#status !== undefined) {
      // The stream can close before 'end' when it was reset after the trailers.
      this.#finish();
      return;
    }
    const error = this.#error ?? this.#channel.lastError;
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
      details = `Cannot reach ${this.#channel.authority}: ${error.message}`;
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
    clearTimeout(this.#timer);
    let status = this.#status!;
    if (status.code === Status.OK && !this.#decoder.empty) {
      status = {
        code: Status.INTERNAL,
        details: "Response ended inside a message",
        trailers: {},
      };
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
}

/** Request headers for a call: the caller's metadata, already checked and encoded. */
export type RequestHeaders = Record<string, string | string[]>;

/**
 * An HTTP/2 connection to one server, opened on the first call, reopened after it is lost,
 * and shared by every call.
 */
export class Channel {
  readonly authority: string;
  #url: string;
  #options: ChannelOptions;
  #session: http2.ClientHttp2Session | undefined;
  #socket: net.Socket | undefined;
  #activeCalls = 0;
  #closed = false;
  /** The last connection-level error, to explain why a stream failed. */
  lastError: (Error & { code?: string }) | undefined;

  constructor(authority: string, options: ChannelOptions) {
    this.authority = authority;
    this.#url = `${
      options.tls === undefined ? "http" : "https"
    }://${authority}`;
    this.#options = options;
  }

  /**
   * Starts a call on `path`.
   *
   * @param path The method path, e.g. `/stream.ServerStream/Pow`.
   * @param setup Who hears about the call, its metadata and its deadline.
   * @returns The call.
   */
  startCall(path: string, setup: CallSetup): GrpcCall {
    const { headers = {}, deadline, listener } = setup;
    if (this.#closed) throw new TypeError("Client is closed");
    const session = this.#connect();
    const requestHeaders: http2.OutgoingHttpHeaders = {
      ...headers,
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      "te": "trailers",
      "user-agent": "grpc-stream-deno/0.1.0",
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
      stream = inCallContext(
        telemetry,
        () => session.request(requestHeaders, { endStream: false }),
      );
    } catch (cause) {
      telemetry?.end(Status.UNAVAILABLE, String(cause));
      throw new GrpcError(
        Status.UNAVAILABLE,
        `Cannot start a call on ${this.authority}: ${
          cause instanceof Error ? cause.message : cause
        }`,
        { cause },
      );
    }
    this.#activeCalls += 1;
    session.ref();
    return new GrpcCall(stream, {
      channel: this,
      listener,
      deadline,
      maxReceiveBytes: this.#options.maxReceiveMessageBytes,
      telemetry,
    });
  }

  /** Called by each call when it ends, so an idle connection does not keep Deno alive. */
  callEnded(): void {
    this.#activeCalls -= 1;
    if (this.#activeCalls > 0) return;
    if (this.#closed) this.#disconnect();
    else this.#session?.unref();
  }

  /** Closes the connection once the calls in flight have ended. */
  close(): void {
    this.#closed = true;
    if (this.#activeCalls === 0) this.#disconnect();
  }

  /**
   * Drops the connection by closing its socket, without the GOAWAY frame a session close
   * sends: under Deno 2.9, a GOAWAY that reaches a grpc-js server after a stream of a few
   * thousand messages can abort the server's process inside nghttp2 (denoland/deno#36788).
   * Nothing is lost, since no call is in flight.
   */
  #disconnect(): void {
    const session = this.#session;
    this.#session = undefined;
    this.#socket?.destroy();
    this.#socket = undefined;
    session?.destroy();
  }

  #connect(): http2.ClientHttp2Session {
    const current = this.#session;
    if (current !== undefined && !current.closed && !current.destroyed) {
      return current;
    }
    const { hostname, port } = new URL(this.#url);
    const host = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
    const socket = this.#options.tls === undefined
      ? net.connect({ host, port: Number(port || 80) })
      : this.#connectTls(host, Number(port || 443), this.#options.tls);
    socket.setNoDelay(true);
    this.#socket = socket;
    this.lastError = undefined;
    // A server that drops the connection (one refusing a client certificate, or one that
    // speaks TLS to a plaintext client) may close it without an error: the calls on it must
    // then end UNAVAILABLE rather than CANCELLED.
    socket.once("end", () => {
      if (this.#socket === socket) {
        this.lastError ??= Object.assign(
          new Error("Connection closed by the server"),
          { code: "ECONNRESET" },
        );
      }
    });
    const session = http2.connect(this.#url, {
      createConnection: () => socket,
    });
    // A server that shuts down gracefully sends a GOAWAY; see proto/http2_session.ts.
    deferCloseAfterGoaway(session);
    session.on("error", (error: Error & { code?: string }) => {
      this.lastError = error;
    });
    const forget = (): void => {
      if (this.#session === session) this.#session = undefined;
    };
    session.on("close", forget);
    session.on("goaway", forget);
    this.#session = session;
    return session;
  }

  /**
   * Opens a TLS connection that offers only HTTP/2 (ALPN `h2`), as gRPC requires. A handshake
   * that fails (an untrusted or mismatched certificate, a refused client certificate) ends
   * the calls on it with `UNAVAILABLE`.
   */
  #connectTls(host: string, port: number, settings: ChannelTls): tls.TLSSocket {
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
