/**
 * One request stream of the server's own HTTP/2 connection, as the call code sees it: the
 * surface of `node:http2`'s `ServerHttp2Stream` that grpc-js's server calls and the lean path
 * use (`respond`, `write`, `end`, `'wantTrailers'` and `sendTrailers`, `close`, `pause` and
 * `resume`, `'data'`, `'end'`, `'aborted'`, `'close'`, `rstCode`, `session.socket`), without
 * a `Readable` or `Writable` behind it.
 *
 * Reading follows a `Readable`'s flowing mode: nothing is emitted before a `'data'` listener
 * is added or `resume()` is called, `pause()` holds the data (and the stream's window, so
 * flow control holds the client), `'end'` comes once the data before it has gone. Writing
 * queues the bytes in the connection, which frames them as the peer's windows allow and calls
 * each write's callback once its bytes are framed.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import type http2 from "node:http2";
import type net from "node:net";
import process from "node:process";
import { ChunkQueue } from "../../proto/http2/chunk_queue.ts";
import { ErrorCode } from "../../proto/http2/frames.ts";
import type { Field } from "./header_fields.ts";
import { fieldsOf } from "../../proto/http2/header_objects.ts";
import { onNextTick } from "../shared_tick.ts";
import { DONE, IDLE, OPEN, type SendState, TRAILERS } from "./send_state.ts";

export type { SendState };

/** A write waiting for the peer's windows. */
export interface QueuedWrite {
  bytes: Uint8Array;
  done: ((error?: Error | null) => void) | undefined;
}

/** What the connection does for a stream; it is also the stream's `session`. */
export interface StreamHost {
  /** Whether the connection has closed. */
  readonly destroyed: boolean;
  /** The connection's socket, for the peer's address. */
  readonly socket: net.Socket;
  /** Sends a header block (response headers or trailers). */
  sendHeaders(
    stream: ServerStream,
    block: { fields: readonly Field[]; endStream: boolean },
  ): void;
  /** Sends an empty DATA frame with `END_STREAM`. */
  sendEnd(stream: ServerStream): void;
  /** Our side has sent `END_STREAM`: the stream closes, at once or when the peer's ends. */
  localEnded(stream: ServerStream): void;
  /** Frames what the stream has queued, as far as the windows allow. */
  pump(stream: ServerStream): void;
  /** Resets the stream with `code`. */
  reset(stream: ServerStream, code: number): void;
  /** Gives the peer back `bytes` of the stream's window: the reader has taken them. */
  consumed(stream: ServerStream, bytes: number): void;
}

/** How much a stream queues before `write` asks its caller to wait, as a `Writable`'s. */
const HIGH_WATER_MARK = 16_384;

/** Whether a stream reads on: not yet (no reader), flowing, or paused. */
type Flow = "unread" | "flowing" | "paused";

/**
 * One request stream.
 *
 * @example
 * ```ts ignore
 * stream.respond({ ":status": 200, "content-type": "application/grpc" });
 * ```
 */
export class ServerStream extends EventEmitter {
  /** The stream's identifier. */
  readonly id: number;
  /** The reset code once the stream is closed (`NO_ERROR` for a clean end). */
  rstCode: number | undefined = undefined;
  /** The connection: grpc-js reads its socket, faults cut it. */
  readonly session: StreamHost;
  /** The response headers sent, as `node:http2` keeps them. */
  sentHeaders: http2.OutgoingHttpHeaders | undefined = undefined;
  /** The trailers sent. */
  sentTrailers: http2.OutgoingHttpHeaders | undefined = undefined;
  /** Sending, as the connection sees it. */
  send: SendState = IDLE;
  /** Whether the peer has sent `END_STREAM` (or reset the stream). */
  remoteEnded = false;
  /** What the peer may still send on the stream before a WINDOW_UPDATE. */
  receiveWindow: number;
  /** Bytes the reader has taken that the peer has not been given back yet. */
  unacknowledged = 0;
  /** The window the stream grants the peer, which grows while the reader keeps up. */
  windowSize: number;
  /** Bytes the reader has taken since the window last grew (or was last held). */
  takenSinceGrowth = 0;
  /** Whether the reader paused since then: it does not keep up, and the window holds. */
  pausedSinceGrowth = false;
  /** What the stream may still send before the peer's next WINDOW_UPDATE. */
  sendWindow: number;
  /** Writes waiting for the windows, in order. */
  readonly queue: QueuedWrite[] = [];
  /** The bytes in `queue`. */
  queued = 0;
  readonly #host: StreamHost;
  #flow: Flow = "unread";
  /** What arrived while the stream did not flow. */
  readonly #inbox = new ChunkQueue<Uint8Array>();
  #reader: ((bytes: Uint8Array) => void) | undefined = undefined;
  #endEmitted = false;
  #closed = false;
  #needDrain = false;

  /**
   * @param id The stream's identifier.
   * @param options The connection, and the windows the stream starts with.
   */
  constructor(
    id: number,
    { host, sendWindow, receiveWindow }: {
      host: StreamHost;
      sendWindow: number;
      receiveWindow: number;
    },
  ) {
    super();
    this.id = id;
    this.#host = host;
    this.session = host;
    this.sendWindow = sendWindow;
    this.receiveWindow = receiveWindow;
    this.windowSize = receiveWindow;
  }

  /** Whether the stream is closed: reset, or ended both ways. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The same as `closed`: nothing is destroyed apart from closing. */
  get destroyed(): boolean {
    return this.#closed;
  }

  /** Whether the response headers went. */
  get headersSent(): boolean {
    return this.send.kind !== "idle";
  }

  /** Whether the stream holds its data. */
  isPaused(): boolean {
    return this.#flow === "paused";
  }

  override on(
    event: string | symbol,
    listener: Parameters<EventEmitter["on"]>[1],
  ): this {
    // A stream never emits `'error'` (its failures close it, with `rstCode`), and the call
    // code listens for it on every stream, as `node:http2`'s streams need: no list is kept.
    if (event === "error") return this;
    super.on(event, listener);
    if (event === "data" && this.#flow === "unread") this.resume();
    return this;
  }

  override addListener(
    event: string | symbol,
    listener: Parameters<EventEmitter["on"]>[1],
  ): this {
    return this.on(event, listener);
  }

  /**
   * Stops emitting `'data'`: what arrives is held, and so is the peer's window.
   *
   * @returns The stream.
   */
  pause(): this {
    this.#flow = "paused";
    this.pausedSinceGrowth = true;
    return this;
  }

  /**
   * Emits `'data'` again, starting with what was held, on the next tick.
   *
   * @returns The stream.
   */
  resume(): this {
    if (this.#flow === "flowing") return this;
    this.#flow = "flowing";
    onNextTick(ServerStream.#flushOf, this);
    return this;
  }

  /**
   * Takes the peer's DATA (the connection calls it), or its end with `null`.
   *
   * @param chunk A DATA frame's payload, or `null` at `END_STREAM`.
   */
  push(chunk: Uint8Array | null): void {
    if (chunk === null) {
      this.remoteEnded = true;
      if (this.#flow === "flowing" && this.#inbox.empty) {
        onNextTick(ServerStream.#emitEndOf, this);
      }
      return;
    }
    if (this.#flow === "flowing" && this.#inbox.empty) {
      this.#host.consumed(this, chunk.length);
      this.#hand(chunk);
      return;
    }
    this.#inbox.push(chunk);
  }

  /**
   * Hands the stream's DATA to `reader` instead of `'data'` listeners: as the bytes arrived,
   * with no `Buffer` made for each frame (the lean calls' deframer takes plain bytes).
   *
   * @param reader Takes each DATA frame's payload, in order, while the stream flows.
   */
  readDirect(reader: (bytes: Uint8Array) => void): void {
    this.#reader = reader;
  }

  #hand(chunk: Uint8Array): void {
    const reader = this.#reader;
    if (reader !== undefined) reader(chunk);
    else {
      this.emit(
        "data",
        Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength),
      );
    }
  }

  static #flushOf(stream: ServerStream): void {
    stream.#flush();
  }

  static #emitEndOf(stream: ServerStream): void {
    stream.#emitEnd();
  }

  #flush(): void {
    while (this.#flow === "flowing" && !this.#inbox.empty) {
      const chunk = this.#inbox.shift()!;
      if (!this.#closed) this.#host.consumed(this, chunk.length);
      this.#hand(chunk);
    }
    if (this.#flow === "flowing" && this.remoteEnded) this.#emitEnd();
  }

  #emitEnd(): void {
    if (this.#endEmitted || !this.#inbox.empty) return;
    this.#endEmitted = true;
    this.emit("end");
  }

  /**
   * Sends the response headers.
   *
   * @param headers The headers, `:status` among them.
   * @param options `endStream` to end the response with them, `waitForTrailers` to emit
   * `'wantTrailers'` once the data has gone.
   * @throws {Error} When the headers have gone already.
   */
  respond(
    headers: http2.OutgoingHttpHeaders = { ":status": 200 },
    options: { endStream?: boolean; waitForTrailers?: boolean } = {},
  ): void {
    if (this.#closed) return;
    if (this.send.kind !== "idle") {
      throw Object.assign(new Error("Response has already been initiated"), {
        code: "ERR_HTTP2_HEADERS_SENT",
      });
    }
    const sent = headers[":status"] === undefined
      ? { ":status": 200, ...headers }
      : headers;
    this.sentHeaders = sent;
    const fields = fieldsOf(sent);
    const endStream = options.endStream === true;
    this.send = endStream ? DONE : OPEN;
    if (!endStream && options.waitForTrailers === true) {
      this.#wantsTrailers = true;
    }
    this.#host.sendHeaders(this, { fields, endStream });
    if (endStream) this.#localEnded();
  }

  #wantsTrailers = false;

  /**
   * Queues bytes for the response body.
   *
   * @param chunk The bytes.
   * @param encodingOrDone Ignored encoding, or the callback.
   * @param done Called once the bytes are framed, or with an error if the stream closed first.
   * @returns Whether the caller may write on without waiting for `'drain'`.
   */
  write(
    chunk: Uint8Array | string,
    encodingOrDone?: string | ((error?: Error | null) => void),
    done?: (error?: Error | null) => void,
  ): boolean {
    const callback = typeof encodingOrDone === "function"
      ? encodingOrDone
      : done;
    if (
      this.#closed || this.send.kind === "done" ||
      this.send.kind === "resetting"
    ) {
      if (callback !== undefined) {
        process.nextTick(callback, streamClosedError());
      }
      return false;
    }
    if (this.send.kind === "idle") this.respond();
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    this.queue.push({ bytes, done: callback });
    this.queued += bytes.length;
    this.#host.pump(this);
    if (this.queued < HIGH_WATER_MARK) return true;
    this.#needDrain = true;
    return false;
  }

  /**
   * Ends the response body: once the queued bytes have gone, `END_STREAM`, or `'wantTrailers'`
   * when `respond` asked for it.
   *
   * @param chunkOrDone A last chunk, or the callback.
   * @param done Called once the end is framed.
   * @returns The stream.
   */
  end(
    chunkOrDone?: Uint8Array | string | (() => void),
    done?: () => void,
  ): this {
    const callback = typeof chunkOrDone === "function" ? chunkOrDone : done;
    if (chunkOrDone !== undefined && typeof chunkOrDone !== "function") {
      this.write(chunkOrDone);
    }
    if (this.#closed || this.send.kind === "done") return this;
    if (this.send.kind === "idle") this.respond();
    if (this.send.kind !== "open") return this;
    this.send = { kind: "ending", waitForTrailers: this.#wantsTrailers };
    if (callback !== undefined) this.once("finish", callback);
    this.#host.pump(this);
    return this;
  }

  /**
   * Ends the response body of a stream that `respond` opened with `waitForTrailers`, and sends
   * `trailers` once the queued bytes have gone: what `end()` and a `'wantTrailers'` listener
   * that sends them do, without the listener.
   *
   * @param trailers The trailers.
   * @param sent Called once they are framed.
   * @returns Whether the stream takes them: `false` when it is not open for writes with
   * trailers awaited (ending, ended or reset already), and nothing was done.
   */
  endWithTrailers(
    trailers: http2.OutgoingHttpHeaders,
    sent: () => void,
  ): boolean {
    if (this.#closed || this.send.kind !== "open" || !this.#wantsTrailers) {
      return false;
    }
    this.send = {
      kind: "ending",
      waitForTrailers: true,
      trailers: { headers: trailers, sent },
    };
    this.#host.pump(this);
    return true;
  }

  /**
   * Sends the trailers, ending the stream: only after `'wantTrailers'`.
   *
   * @param headers The trailers.
   * @throws {Error} When trailers are not awaited.
   */
  sendTrailers(headers: http2.OutgoingHttpHeaders): void {
    if (this.#closed) return;
    if (this.send.kind !== "trailers") {
      throw Object.assign(new Error("Trailers are not awaited"), {
        code: "ERR_HTTP2_TRAILERS_NOT_READY",
      });
    }
    this.send = DONE;
    this.sentTrailers = headers;
    this.#host.sendHeaders(this, {
      fields: fieldsOf(headers),
      endStream: true,
    });
    this.#localEnded();
  }

  /**
   * Resets the stream.
   *
   * @param code The RST_STREAM code.
   * @param done Called once the stream is closed.
   */
  close(code: number = ErrorCode.NO_ERROR, done?: () => void): void {
    if (done !== undefined) this.once("close", done);
    if (this.#closed || this.send.kind === "resetting") return;
    // As `node:http2` does: what was written before goes out before the reset.
    if (this.queue.length > 0 && this.send.kind !== "done") {
      this.send = { kind: "resetting", code };
      return;
    }
    this.#host.reset(this, code);
  }

  /**
   * Resets the stream unless it is closed: `CANCEL`, or `INTERNAL_ERROR` with an error.
   *
   * @param error Why.
   * @returns The stream.
   */
  destroy(error?: Error): this {
    if (!this.#closed) {
      this.#host.reset(
        this,
        error === undefined ? ErrorCode.CANCEL : ErrorCode.INTERNAL_ERROR,
      );
    }
    return this;
  }

  /**
   * Tells the stream its queue has drained (the connection calls it): ends it if asked, and
   * lets a waiting writer go on.
   */
  drained(): void {
    const send = this.send;
    if (send.kind === "resetting") {
      if (this.queue.length === 0) this.#host.reset(this, send.code);
      return;
    }
    if (send.kind === "ending" && this.queue.length === 0) {
      if (send.trailers !== undefined) {
        this.send = TRAILERS;
        this.sendTrailers(send.trailers.headers);
        send.trailers.sent();
      } else if (send.waitForTrailers) {
        this.send = TRAILERS;
        this.emit("wantTrailers");
      } else {
        this.send = DONE;
        this.#host.sendEnd(this);
        this.#localEnded();
      }
    }
    if (this.#needDrain && this.queued < HIGH_WATER_MARK) {
      this.#needDrain = false;
      this.emit("drain");
    }
  }

  /** Our side has sent `END_STREAM`. */
  #localEnded(): void {
    onNextTick(emitFinish, this);
    this.#host.localEnded(this);
  }

  /**
   * Closes the stream (the connection calls it once it is reset, ended both ways, or the
   * connection is gone): queued writes fail, `'aborted'` if the request was cut short, then
   * `'close'` on the next tick.
   *
   * @param code The reset code, `NO_ERROR` for a clean end.
   */
  closeWith(code: number): void {
    if (this.#closed) return;
    this.#closed = true;
    this.rstCode = code;
    const aborted = !this.remoteEnded && code !== ErrorCode.NO_ERROR;
    this.remoteEnded = true;
    const failed = this.queue.splice(0);
    this.queued = 0;
    if (this.send.kind !== "done") this.send = DONE;
    onNextTick(emitClose, { stream: this, failed, aborted });
  }
}

function emitFinish(stream: ServerStream): void {
  stream.emit("finish");
}

/** A closed stream's `'close'`, after its writes' failures and its `'aborted'`. */
function emitClose(
  { stream, failed, aborted }: {
    stream: ServerStream;
    failed: QueuedWrite[];
    aborted: boolean;
  },
): void {
  for (const write of failed) write.done?.(streamClosedError());
  if (aborted) stream.emit("aborted");
  stream.emit("close");
}

function streamClosedError(): Error {
  return Object.assign(new Error("The stream is closed"), {
    code: "ERR_HTTP2_INVALID_STREAM",
  });
}
