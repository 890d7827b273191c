/**
 * A call answered on the lean path (`lean_calls.ts`): the part of grpc-js's server call API
 * that the handlers use, straight on the call's HTTP/2 stream, with no intercepting call,
 * object-mode stream or request `Metadata` under it.
 *
 * It does per call what grpc-js's `BaseServerInterceptingCall` and its `Server*StreamImpl`
 * do, in the same words on the wire: the response headers (`sendMetadata`, sent before the
 * first message), the status in trailers once the messages have gone or, before any headers,
 * as a trailers-only response, `grpc-message` percent-encoded with `encodeURI`, the deadline of
 * `grpc-timeout` (`DEADLINE_EXCEEDED`), the send limit (`RESOURCE_EXHAUSTED`), and a
 * `'cancelled'` event once the stream closes or the status has gone, as grpc-js emits it. The
 * handler's `emit("error", status)` and `end()` end the call as on grpc-js's writable calls.
 * The request metadata is built only if something reads it (the telemetry's `traceparent`).
 *
 * The views of `internals/grpc_js_server_call.ts` find its stream and limits under
 * `LEAN_CALL`, so the reply writer, the request reader, the call starts and the call
 * telemetry work on it as they do on a grpc-js call.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import type http2 from "node:http2";
import {
  LEAN_CALL,
  type LeanCallParts,
  NO_LEAN_METADATA,
  type SendObserver,
} from "../internals/grpc_js_server_call.ts";
import { PREFIX_BYTES, writePrefix } from "../proto/envelope.ts";
import { atDeadline } from "./deadline_slots.ts";
import { onNextTick } from "./shared_tick.ts";
import { ServerStream } from "./http2/server_stream.ts";

/** What one lean call needs of its method and server. */
export interface LeanCallSettings {
  /** Serializes one reply message. */
  serialize(reply: unknown): Uint8Array;
  /** `grpc.max_send_message_length`; -1 for none. */
  maxSendBytes: number;
  /** `grpc.max_receive_message_length`; -1 for none. */
  maxReceiveBytes: number;
}

/** What one lean call is made with. */
export interface LeanCallOptions {
  /** The call's request headers. */
  headers: http2.IncomingHttpHeaders;
  /** Its method's serializer and the server's limits, shared by the method's calls. */
  settings: LeanCallSettings;
}

/** A status as the handlers and grpc-js pass it. */
type StatusLike = {
  code?: number | undefined;
  details?: string | undefined;
  metadata?: grpc.Metadata | null | undefined;
  message?: string;
};

/** The response headers grpc-js sends (`defaultResponseHeaders`, `defaultCompressionHeaders`). */
const RESPONSE_HEADERS: Readonly<http2.OutgoingHttpHeaders> = Object.freeze({
  ":status": 200,
  "content-type": "application/grpc+proto",
  "grpc-accept-encoding": "identity,deflate,gzip",
  "grpc-encoding": "identity",
});

/** The trailers of a call that ends `OK` with no trailers of its own. */
const OK_TRAILERS: Readonly<http2.OutgoingHttpHeaders> = Object.freeze({
  "grpc-status": grpc.status.OK,
  "grpc-message": "OK",
});

/** The status of a call that ends well, with no trailers of its own. */
export const OK_STATUS: Readonly<
  { code: grpc.status; details: string; metadata: null }
> = Object.freeze({ code: grpc.status.OK, details: "OK", metadata: null });

/** The request headers grpc-js keeps out of the metadata it hands a handler. */
const NOT_METADATA = [
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding",
  "accept-encoding",
  "te",
  "content-type",
];

const WAIT_FOR_TRAILERS = { waitForTrailers: true } as const;
const END_STREAM = { endStream: true } as const;

/** `serverErrorToStatus` of grpc-js: how an error a handler gives becomes a status. */
export function errorToStatus(
  error: StatusLike,
  trailers?: grpc.Metadata | null,
): grpc.StatusObject {
  const status = {
    code: grpc.status.UNKNOWN,
    details: "message" in error ? String(error.message) : "Unknown Error",
    metadata: trailers ?? error.metadata ?? null,
  };
  if (typeof error.code === "number" && Number.isInteger(error.code)) {
    status.code = error.code;
    if (typeof error.details === "string") status.details = error.details;
  }
  return status as grpc.StatusObject;
}

function metadataHeaders(
  metadata: grpc.Metadata | null | undefined,
): http2.OutgoingHttpHeaders | undefined {
  return metadata == null || metadata === NO_LEAN_METADATA
    ? undefined
    : metadata.toHttp2Headers();
}

/** What the views of `internals/grpc_js_server_call.ts` see of a lean call. */
class LeanParts implements LeanCallParts {
  readonly stream: LeanCallParts["stream"];
  readonly maxSendBytes: number;
  readonly maxReceiveBytes: number;
  readonly encoding: string;
  /** Who hears of the messages and the status the call sends. */
  observer: SendObserver | undefined = undefined;
  readonly #stream: http2.ServerHttp2Stream;

  constructor(
    { stream, headers, settings }: {
      stream: http2.ServerHttp2Stream;
      headers: http2.IncomingHttpHeaders;
      settings: LeanCallSettings;
    },
  ) {
    this.#stream = stream;
    this.stream = stream as unknown as LeanCallParts["stream"];
    this.maxSendBytes = settings.maxSendBytes;
    this.maxReceiveBytes = settings.maxReceiveBytes;
    const encoding = headers["grpc-encoding"];
    this.encoding = typeof encoding === "string" ? encoding : "identity";
  }

  takeData(handler: (data: Uint8Array) => void): void {
    const stream = this.#stream;
    if (stream instanceof ServerStream) stream.readDirect(handler);
    else stream.on("data", handler);
  }

  observe(observer: SendObserver): void {
    this.observer = observer;
  }
}

/** One call on the lean path, presented as a grpc-js server call to its handler. */
export class LeanCall extends EventEmitter {
  /** The request of a server-streaming call, once read. */
  request: unknown = undefined;
  /** Whether the call is over for the handler: cancelled, timed out or answered. */
  cancelled = false;
  readonly [LEAN_CALL]: LeanParts;
  readonly #stream: http2.ServerHttp2Stream;
  readonly #headers: http2.IncomingHttpHeaders;
  readonly #settings: LeanCallSettings;
  #metadata: grpc.Metadata | undefined;
  #deadline = Infinity;
  /** Cancels the deadline, if one is set. */
  #cancelDeadline: (() => void) | undefined;
  #headersSent = false;
  /** Set once the status is on its way, or the stream closed: nothing more is sent. */
  #over = false;
  #wantTrailers = false;
  #cancelNotified = false;
  #ending = false;
  #pendingStatus: StatusLike = OK_STATUS;

  /**
   * @param stream The call's HTTP/2 stream.
   * @param options Its request headers, its method's serializer and the server's limits.
   */
  constructor(
    stream: http2.ServerHttp2Stream,
    { headers, settings }: LeanCallOptions,
  ) {
    super();
    this.#stream = stream;
    this.#headers = headers;
    this.#settings = settings;
    this[LEAN_CALL] = new LeanParts({ stream, headers, settings });
    // The stream closes once: a listener that stays costs less than `once`'s wrapper.
    stream.on("close", () => this.#notifyCancelled());
  }

  /**
   * Emits `event`. As on grpc-js's writable calls, an `'error'` the handler emits is the
   * call's status: it ends the call, then goes to any listener of its own.
   *
   * @param event The event.
   * @param args Its arguments.
   * @returns Whether it had listeners.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event !== "error") return super.emit(event, ...args);
    this.#pendingStatus = errorToStatus(args[0] as StatusLike);
    this.end();
    return this.listenerCount("error") > 0 ? super.emit(event, ...args) : true;
  }

  /** The request metadata, as grpc-js hands it to a handler; built when first read. */
  get metadata(): grpc.Metadata {
    if (this.#metadata === undefined) {
      const metadata = grpc.Metadata.fromHttp2Headers(this.#headers);
      for (const name of NOT_METADATA) metadata.remove(name);
      this.#metadata = metadata;
    }
    return this.#metadata;
  }

  /**
   * Sets the deadline of `grpc-timeout`: the call then ends with `DEADLINE_EXCEEDED`.
   *
   * @param timeoutMs The timeout, in ms.
   */
  setDeadline(timeoutMs: number): void {
    this.#deadline = Date.now() + timeoutMs;
    this.#cancelDeadline = atDeadline(timeoutMs, () => {
      this.sendStatus({
        code: grpc.status.DEADLINE_EXCEEDED,
        details: "Deadline exceeded",
        metadata: null,
      });
    });
  }

  /** The client's `address:port`, as grpc-js gives it. */
  getPeer(): string {
    const socket = this.#stream.session?.socket;
    if (socket?.remoteAddress) {
      return socket.remotePort
        ? `${socket.remoteAddress}:${socket.remotePort}`
        : socket.remoteAddress;
    }
    return "unknown";
  }

  /** The call's deadline in ms since the epoch; `Infinity` for none. */
  getDeadline(): number {
    return this.#deadline;
  }

  /** The `:authority` the client called. */
  getHost(): string {
    return this.#headers[":authority"] ?? this.#headers.host ?? "";
  }

  /** The method's path. */
  getPath(): string {
    return this.#headers[":path"] ?? "";
  }

  /** Stops reading the request: HTTP/2 flow control holds the client. */
  pause(): this {
    this.#stream.pause();
    return this;
  }

  /** Reads on. */
  resume(): this {
    this.#stream.resume();
    return this;
  }

  /** Whether the call may still send: its stream open and no status sent. */
  #open(): boolean {
    if (!this.#over && (this.#stream.destroyed || this.#stream.closed)) {
      this.#notifyCancelled();
    }
    return !this.#over;
  }

  /**
   * Sends the response headers, with `metadata`, unless they have gone.
   *
   * @param metadata Headers of the call's own.
   */
  sendMetadata(metadata?: grpc.Metadata | null): void {
    if (!this.#open() || this.#headersSent) return;
    this.#headersSent = true;
    const custom = metadataHeaders(metadata);
    this.#stream.respond(
      custom === undefined
        ? RESPONSE_HEADERS
        : { ...RESPONSE_HEADERS, ...custom },
      WAIT_FOR_TRAILERS,
    );
  }

  /**
   * Sends one reply message: the path a call whose stream the reply writer cannot reach would
   * take, and the single reply of a client-streaming call.
   *
   * @param reply The message.
   * @param done Called once HTTP/2 has taken it.
   * @returns `true`.
   */
  write(reply: unknown, done?: () => void): boolean {
    if (!this.#open()) return true;
    this[LEAN_CALL].observer?.sent();
    let message: Uint8Array;
    try {
      message = this.#settings.serialize(reply);
    } catch {
      this.sendStatus({
        code: grpc.status.INTERNAL,
        details: "Error serializing response",
        metadata: null,
      });
      return true;
    }
    const limit = this.#settings.maxSendBytes;
    if (limit !== -1 && message.length > limit) {
      this.sendStatus({
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `Sent message larger than max (${
          message.length + PREFIX_BYTES
        } vs. ${limit})`,
        metadata: null,
      });
      return true;
    }
    const framed = Buffer.allocUnsafe(PREFIX_BYTES + message.length);
    writePrefix(framed, message.length, 0);
    framed.set(message, PREFIX_BYTES);
    this.sendMetadata();
    this.#stream.write(framed, done);
    return true;
  }

  /**
   * Ends the call with the status the handler set (`OK`, or the error it emitted).
   *
   * @param trailers Trailers of the call's own.
   */
  end(trailers?: grpc.Metadata): this {
    if (this.#ending) return this;
    this.#ending = true;
    const pending = this.#pendingStatus;
    this.sendStatus(
      pending === OK_STATUS && trailers === undefined ? OK_STATUS : {
        ...pending,
        metadata: pending.metadata ?? trailers ?? null,
      },
    );
    return this;
  }

  /**
   * Sends the call's status: in trailers once the queued messages have gone, or alone when no
   * headers have been sent. Nothing is sent once the call is over.
   *
   * @param status The status.
   */
  sendStatus(status: StatusLike): void {
    this[LEAN_CALL].observer?.status(status.code, status.details);
    if (!this.#open()) return;
    this.#over = true;
    const stream = this.#stream;
    // Frozen, the usual trailers are flattened into header fields once for every call.
    const trailers: http2.OutgoingHttpHeaders =
      status.code === grpc.status.OK &&
        status.details === "OK" && status.metadata == null
        ? OK_TRAILERS
        : {
          "grpc-status": status.code,
          "grpc-message": encodeURI(status.details as string),
          ...metadataHeaders(status.metadata),
        };
    if (this.#headersSent) {
      if (this.#wantTrailers) return;
      this.#wantTrailers = true;
      const sent = () => this.#notifyCancelled();
      if (
        stream instanceof ServerStream &&
        stream.endWithTrailers(trailers, sent)
      ) {
        return;
      }
      stream.once("wantTrailers", () => {
        stream.sendTrailers(trailers);
        sent();
      });
      stream.end();
    } else {
      stream.respond(
        {
          "grpc-status": status.code,
          "grpc-message": trailers["grpc-message"],
          ":status": 200,
          "content-type": "application/grpc+proto",
          ...metadataHeaders(status.metadata),
        },
        END_STREAM,
      );
      this.#notifyCancelled();
    }
  }

  /** What grpc-js's `notifyOnCancel` does: the handler hears `'cancelled'` once, a tick later. */
  #notifyCancelled(): void {
    this.#over = true;
    if (this.#cancelNotified) return;
    this.#cancelNotified = true;
    this.#cancelDeadline?.();
    onNextTick(emitCancelled, this);
    // Whatever the client still sends is read and dropped.
    this.#stream.resume();
  }
}

function emitCancelled(call: LeanCall): void {
  call.cancelled = true;
  call.emit("cancelled", "cancelled");
}
