/**
 * One request stream of the client's own HTTP/2 connection, as the call code sees it: the
 * surface of `node:http2`'s `ClientHttp2Stream` that `grpc_call.ts`, `write_batching.ts` and
 * `stream_reset.ts` use, `CallStream` in `../http2_surface.ts` (`write`, `end`,
 * `writableNeedDrain` and `'drain'`, `pause`, `resume`, `read`, `'response'`, `'data'`,
 * `'trailers'`, `'end'`, `'error'`, `'close'`, `'frameError'`, `close`, `rstCode`, `id`,
 * `session`), without a `Readable` or `Writable` behind it.
 *
 * Reading follows a `Readable`'s flowing mode: nothing is emitted before a `'data'` listener
 * is added or `resume()` is called, `pause()` holds the data (and the stream's window, so
 * flow control holds the server), `'end'` comes once the data before it has gone, then
 * `'close'`. Writing queues the bytes in the connection, which frames them as the server's
 * windows allow. A reset drops whatever is queued and not yet framed, so a cancelled request
 * never reaches the server as a finished one.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import type http2 from "node:http2";
import process from "node:process";
import { ChunkQueue } from "../../proto/http2/chunk_queue.ts";
import { ErrorCode } from "../../proto/http2/frames.ts";
import type { CallStream, StreamSession } from "../http2_surface.ts";

/** Bytes queued past which `write` asks the writer to wait for `'drain'`. */
const HIGH_WATER_BYTES = 64 * 1024;

/** What a stream needs of its connection. */
export interface StreamHost {
  /** The connection, as the stream's `session`. */
  readonly session: StreamSession;
  /** `stream` has bytes (or its end) queued to frame. */
  queued(stream: ClientStream): void;
  /** `stream` handed `bytes` of DATA to its reader: its window may grow. */
  consumed(stream: ClientStream, bytes: number): void;
  /** Resets `stream` with `code`, dropping what it has queued, and forgets it. */
  reset(stream: ClientStream, code: number): void;
  /** The server ended `stream` and its reader has had everything: forget it. */
  finished(stream: ClientStream): void;
}

/**
 * Where the stream is: its HEADERS wait for a free slot under the server's stream limit
 * (`waiting`), they went (`open`), or it is over (`closed`).
 */
type StreamPhase =
  | { kind: "waiting" }
  | { kind: "open" }
  | { kind: "closed" };

/** What the stream has received and not yet handed up. */
interface Inbox {
  readonly chunks: ChunkQueue<Buffer>;
  /** The server ended the stream (END_STREAM): `'end'` follows the chunks. */
  ended: boolean;
}

/** A client stream of the own HTTP/2 connection. */
export class ClientStream extends EventEmitter {
  /** The stream's identifier, once its HEADERS went. */
  id: number | undefined = undefined;
  /** The reset code that closed the stream, if it was reset; 0 once it ended. */
  rstCode: number | undefined = undefined;
  /** The request's header block, until its HEADERS go. */
  headerBlock: Uint8Array | undefined;
  /** Whether the HEADERS end the request (a request with no body). */
  readonly endOnHeaders: boolean;
  /** What the server lets this stream send. */
  sendWindow = 0;
  /** What this side lets the server send on this stream before a WINDOW_UPDATE. */
  receiveWindow = 0;
  /** Request bytes queued and not yet framed. */
  readonly outbox: Uint8Array[] = [];
  /** How many bytes `outbox` holds. */
  outboxBytes = 0;
  /** Whether END_STREAM is to follow what `outbox` holds. */
  endQueued: boolean;
  /** Whether END_STREAM went. */
  endSent = false;
  readonly #host: StreamHost;
  #phase: StreamPhase = { kind: "waiting" };
  #flowing: boolean | undefined = undefined;
  readonly #inbox: Inbox = { chunks: new ChunkQueue<Buffer>(), ended: false };
  #responded = false;
  #needDrain = false;

  /**
   * @param host The connection.
   * @param request The encoded header block, and whether it ends the request.
   */
  constructor(
    host: StreamHost,
    request: { block: Uint8Array; endStream: boolean },
  ) {
    super();
    this.#host = host;
    this.headerBlock = request.block;
    this.endOnHeaders = request.endStream;
    this.endQueued = request.endStream;
    this.on("newListener", (event: string) => {
      if (event === "data" && this.#flowing === undefined) {
        this.#flowing = true;
        process.nextTick(() => this.#deliver());
      }
    });
  }

  /** The connection. */
  get session(): StreamSession {
    return this.#host.session;
  }

  /** Whether the HEADERS still wait for a slot. */
  get pending(): boolean {
    return this.#phase.kind === "waiting";
  }

  /** Whether the stream is over. */
  get closed(): boolean {
    return this.#phase.kind === "closed";
  }

  /** Whether the stream is over (as `node:http2` says of a destroyed stream). */
  get destroyed(): boolean {
    return this.#phase.kind === "closed";
  }

  /** Whether this side has ended its request. */
  get writableEnded(): boolean {
    return this.endQueued;
  }

  /** Whether the writer should wait for `'drain'`. */
  get writableNeedDrain(): boolean {
    return this.#needDrain;
  }

  /** How many received bytes wait for the reader. */
  get readableLength(): number {
    return this.#inbox.chunks.bytes;
  }

  /**
   * Queues request bytes.
   *
   * @param chunk The bytes.
   * @returns `false` when the writer should wait for `'drain'`.
   */
  write(chunk: Uint8Array): boolean {
    if (this.endQueued || this.closed) return false;
    this.#queue(chunk);
    return !this.#needDrain;
  }

  /**
   * Ends the request, after `chunk` if given.
   *
   * @param chunk The last bytes.
   */
  end(chunk?: Uint8Array): void {
    if (this.endQueued || this.closed) return;
    if (chunk !== undefined && chunk.length > 0) this.#queue(chunk);
    this.endQueued = true;
    this.#host.queued(this);
  }

  #queue(chunk: Uint8Array): void {
    this.outbox.push(chunk);
    this.outboxBytes += chunk.length;
    if (this.outboxBytes >= HIGH_WATER_BYTES) this.#needDrain = true;
    this.#host.queued(this);
  }

  /** The connection framed some of the outbox: a writer waiting may go on. */
  framed(): void {
    if (this.#needDrain && this.outboxBytes < HIGH_WATER_BYTES) {
      this.#needDrain = false;
      this.emit("drain");
    }
  }

  /** Stops handing up data: the stream's window no longer grows. */
  pause(): this {
    this.#flowing = false;
    return this;
  }

  /** Hands up data again. */
  resume(): this {
    if (this.#flowing !== true) {
      this.#flowing = true;
      process.nextTick(() => this.#deliver());
    }
    return this;
  }

  /** Whether the stream is paused. */
  isPaused(): boolean {
    return this.#flowing === false;
  }

  /**
   * Takes what is received and not handed up, and hands it to the `'data'` listeners, as a
   * paused `Readable`'s `read()` does.
   *
   * @returns The bytes, or `null` when none wait.
   */
  read(): Buffer | null {
    const inbox = this.#inbox;
    if (inbox.chunks.bytes === 0) return null;
    const waiting = inbox.chunks.takeAll();
    const chunk = waiting.length === 1 ? waiting[0]! : Buffer.concat(waiting);
    this.#host.consumed(this, chunk.length);
    this.emit("data", chunk);
    if (inbox.ended) process.nextTick(() => this.#deliver());
    return chunk;
  }

  /**
   * Resets the stream (`RST_STREAM(code)`) at once, dropping what is queued.
   *
   * @param code The HTTP/2 error code.
   */
  close(code: number = ErrorCode.NO_ERROR): void {
    if (this.closed) return;
    this.#host.reset(this, code);
    this.closeWith({ code });
  }

  /**
   * Resets the stream with `CANCEL`, or `INTERNAL_ERROR` for an error other than an abort,
   * as `node:http2`'s `destroy` does.
   *
   * @param error Why, if anything went wrong.
   * @returns The stream.
   */
  destroy(error?: Error): this {
    const code = error === undefined || error.name === "AbortError"
      ? ErrorCode.CANCEL
      : ErrorCode.INTERNAL_ERROR;
    this.close(code);
    return this;
  }

  /** The HEADERS went, as stream `id`. */
  opened(id: number): void {
    this.id = id;
    this.headerBlock = undefined;
    if (this.#phase.kind === "waiting") this.#phase = { kind: "open" };
  }

  /**
   * A header block arrived: the response's headers, or its trailers.
   *
   * @param headers The block as a header object.
   * @param endStream Whether it ends the stream.
   */
  receivedHeaders(
    headers: http2.IncomingHttpHeaders,
    endStream: boolean,
  ): void {
    if (this.closed) return;
    if (!this.#responded) {
      const status = Number(headers[":status"]);
      // An informational response (1xx) precedes the real one.
      if (status >= 100 && status < 200 && !endStream) return;
      this.#responded = true;
      this.emit("response", headers, 0);
    } else {
      this.emit("trailers", headers, 0);
    }
    if (endStream) this.receivedData(undefined, true);
  }

  /**
   * DATA arrived.
   *
   * @param data The bytes (valid during the call only), or `undefined` for none.
   * @param endStream Whether it ends the stream.
   */
  receivedData(data: Uint8Array | undefined, endStream: boolean): void {
    if (this.closed) return;
    const inbox = this.#inbox;
    if (data !== undefined && data.length > 0) {
      inbox.chunks.push(Buffer.from(data));
    }
    if (endStream) inbox.ended = true;
    if (this.#flowing === true) this.#deliver();
  }

  /** Hands up what waits, while flowing; then the end, once everything before it went. */
  #deliver(): void {
    const inbox = this.#inbox;
    while (this.#flowing === true && !inbox.chunks.empty && !this.closed) {
      const chunk = inbox.chunks.shift()!;
      this.#host.consumed(this, chunk.length);
      this.emit("data", chunk);
    }
    if (inbox.ended && inbox.chunks.empty && !this.closed) {
      if (this.#flowing === undefined) this.#flowing = true;
      if (this.#flowing !== true) return;
      this.#phase = { kind: "closed" };
      this.#host.finished(this);
      this.rstCode = ErrorCode.NO_ERROR;
      process.nextTick(() => {
        this.emit("end");
        this.emit("close");
      });
    }
  }

  /**
   * The stream is over without its end: reset by either side, refused, or its connection
   * lost.
   *
   * @param how The reset code, and the error to emit first, if any.
   */
  closeWith(
    how: { code: number; error?: Error; unsentHeaders?: boolean },
  ): void {
    if (this.closed) return;
    this.#phase = { kind: "closed" };
    this.rstCode = how.code;
    this.outbox.length = 0;
    this.outboxBytes = 0;
    const wasWaiting = this.#needDrain;
    this.#needDrain = false;
    process.nextTick(() => {
      if (how.unsentHeaders === true) this.emit("frameError", 1, how.code, 0);
      // An error with no listener would throw from the event loop: the call reads `rstCode`.
      if (how.error !== undefined && this.listenerCount("error") > 0) {
        this.emit("error", how.error);
      }
      if (wasWaiting) this.emit("drain");
      this.emit("close");
    });
  }
}

/**
 * Whether `stream` is `node:http2`'s: a call's stream is either that or a
 * {@linkcode ClientStream}, and the two differ in how a reset reaches the server and in
 * whether HEADERS can wait behind the server's stream limit.
 *
 * @param stream A call's stream.
 * @returns `true` for a `node:http2` stream.
 */
export function onNodeHttp2(
  stream: CallStream,
): stream is http2.ClientHttp2Stream {
  return !(stream instanceof ClientStream);
}
