/**
 * Reads the request messages of one client-streaming or bidirectional call straight from its
 * HTTP/2 stream.
 *
 * grpc-js hands each request message to a handler through a promise (its decompression step
 * is `async` even for uncompressed messages), a `stream.pause()`, a queue entry, a
 * `startRead()` and an object-mode `Readable` push: one turn of that machinery per message,
 * which caps a `Sum` near 200,000 messages/s under Deno while grpc-go takes 500,000. Here the
 * frames of each HTTP/2 DATA chunk are cut into messages in one loop and handed to the
 * handler synchronously. It also holds the line that grpc-js 1.14.7 does not (under Node
 * too): a request that ends inside a message, and a message flagged compressed on a call
 * without `grpc-encoding`, end the call with `INTERNAL` (the gRPC HTTP/2 protocol) instead of
 * being dropped or read as plain.
 *
 * The call stays a grpc-js call: grpc-js parsed its headers and still sends the response
 * headers, messages and status, tracks the deadline and reports cancellation. The reader
 * replaces only the per-call `handleDataFrame` of grpc-js's `BaseServerInterceptingCall`,
 * which its `'data'` listener on the HTTP/2 stream calls. When a call does not have that
 * shape (an interceptor wraps it, or another grpc-js version keeps it elsewhere),
 * {@linkcode openRequestReader} returns `undefined` and the handler reads the call's
 * messages through grpc-js as before.
 *
 * Below that, Deno 2.9's `node:http2` hands each inbound DATA frame to the stream's native
 * handle as `handle.onread(bytes, length)`, whose default (`onStreamRead`) wraps the bytes in
 * a `Buffer`, pushes it through the stream's `Readable` and emits `'data'`: one turn of the
 * `Readable` machinery, a `nextTick` and a `sendPending` op per frame, and grpc-go sends one
 * frame per message. Once the `Readable` holds nothing, the reader takes the frames straight
 * from `handle.onread`. Deno's native side still counts their bytes off the stream's window
 * as they arrive, and stops doing so while the reader is paused, as for a paused `Readable`
 * (frames that arrive then wait in the reader). The end of the stream, errors and frames that
 * came before the handler opened the reader take Deno's own path. Without that handle shape
 * (another Deno, Node) only this part is skipped.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { Buffer } from "node:buffer";
import process from "node:process";
import { gunzipSync, inflateSync } from "node:zlib";
import { observedRequestSink } from "./telemetry.ts";
import {
  fastPathsOn,
  missedFastPath,
  usedFastPath,
} from "../internals/fast_paths.ts";
import { tapOf } from "./frame_tap.ts";
import {
  DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  EnvelopeDecoder,
  type EnvelopeFault,
  type EnvelopeReceiver,
  type MessageSpan,
} from "../proto/envelope.ts";

/**
 * The most request bytes a paused reader holds from the frame tap: far above the 64 KiB stream
 * window the server grants, so only a peer that ignores flow control reaches it.
 */
const TAPPED_HOLD_LIMIT = 4 * 1024 * 1024;

/** The part of an HTTP/2 stream the reader uses. */
interface RequestStream {
  readonly destroyed: boolean;
  readonly closed: boolean;
  pause(): unknown;
  resume(): unknown;
  on(event: "end" | "close", listener: () => void): unknown;
}

/**
 * The native handle under a Deno 2.9 `node:http2` stream (`stream[kHandle]`), as far as the
 * reader uses it. `onread` is called once per inbound DATA frame with a fresh `Uint8Array`
 * and its length, and with no bytes and a negative length at the end of the stream.
 */
interface StreamHandle {
  onread: (
    this: StreamHandle,
    bytes: Uint8Array | undefined,
    length?: number,
  ) => unknown;
  readStart(): unknown;
}

/** The native handle under a Deno 2.9 `node:http2` session, as far as the reader uses it. */
interface SessionHandle {
  sendPending(): unknown;
}

/** The private shape of grpc-js 1.14's `BaseServerInterceptingCall` that the reader relies on. */
interface GrpcJsCallInternals {
  stream: RequestStream;
  handleDataFrame(data: Buffer): void;
  readQueue: unknown[];
  maxReceiveMessageSize: unknown;
  incomingEncoding: unknown;
}

/** A server call that receives a stream of messages. */
export type ReadableCall =
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/**
 * Where one request message lies (see {@linkcode MessageSpan} in `proto/envelope.ts`): the
 * same object for every message, valid only during the call that receives it.
 */
export type { MessageSpan };

/** What a reader tells its handler. */
export interface RequestSink {
  /** One whole message; `span` is only valid during the call. */
  message(span: Readonly<MessageSpan>): void;
  /** The client half-closed the call after whole messages. */
  end(): void;
  /** The request broke the gRPC framing or a limit; the call must end with `failure`. */
  fail(failure: grpc.StatusObject): void;
}

/** Pauses and resumes the reading of one call's requests. */
export interface RequestReader {
  /** Stops reading until {@linkcode RequestReader.resume}, so HTTP/2 flow control holds the client. */
  pause(): void;
  /** Reads on. */
  resume(): void;
  /**
   * How many DATA frames so far were taken straight from the stream's native handle rather
   * than through its `Readable`; stays 0 when the stream lacks the Deno 2.9 handle shape.
   */
  readonly framesFromHandle: number;
}

function failure(code: grpc.status, details: string): grpc.StatusObject {
  return { code, details, metadata: new grpc.Metadata() };
}

/** Finds grpc-js's call under a handler's call, when it has the shape the reader relies on. */
function internalsOf(call: ReadableCall): GrpcJsCallInternals | undefined {
  const inner = fastPathsOn()
    ? (call as unknown as { call?: Partial<GrpcJsCallInternals> }).call
    : undefined;
  const stream = inner?.stream as Partial<RequestStream> | undefined;
  if (
    inner === undefined || typeof inner.handleDataFrame !== "function" ||
    !Array.isArray(inner.readQueue) ||
    typeof stream?.pause !== "function" ||
    typeof stream.resume !== "function" || typeof stream.on !== "function"
  ) {
    missedFastPath(
      "request reader",
      "grpc-js call.handleDataFrame, call.readQueue or call.stream",
    );
    return undefined;
  }
  // Messages grpc-js has already read must reach the handler through grpc-js.
  if (inner.readQueue.length !== 0) return undefined;
  usedFastPath("request reader");
  return inner as GrpcJsCallInternals;
}

/**
 * Starts reading a call's request messages from its HTTP/2 stream, when grpc-js exposes it.
 * Call it from the handler, before anything reads the call through grpc-js.
 *
 * @param call The call whose requests to read.
 * @param sink Where the messages, the end and any framing failure go.
 * @returns A handle to pause and resume reading, or `undefined` when the call does not have
 * the shape this reader needs; then nothing was changed and the call reads as grpc-js does.
 */
export function openRequestReader(
  call: ReadableCall,
  sink: RequestSink,
): RequestReader | undefined {
  const inner = internalsOf(call);
  if (inner === undefined) return undefined;
  const configured = inner.maxReceiveMessageSize;
  const maxBytes = typeof configured === "number" && configured >= 0
    ? configured
    : configured === -1
    ? Infinity
    : DEFAULT_MAX_RECEIVE_MESSAGE_BYTES;
  const encoding = typeof inner.incomingEncoding === "string"
    ? inner.incomingEncoding
    : "identity";
  const deframer = new Deframer(observedRequestSink(call, sink), {
    maxBytes,
    encoding,
  });
  const stream = inner.stream;
  // grpc-js's 'data' listener calls this per-call method; its own queue stays empty and its
  // 'end' listener only queues a half-close that nothing reads.
  inner.handleDataFrame = (data: Buffer): void => {
    if (stream.destroyed) return;
    deframer.write(data);
  };
  let paused = false;
  const direct = readFromHandle(stream, {
    deframer,
    paused: () => paused,
  });
  stream.on("end", () => {
    if (direct?.holdsEnd() !== true) deframer.end();
  });
  stream.resume();
  return {
    pause(): void {
      paused = true;
      // The stream's 'pause' listener stops the native read: the stream's window stays shut.
      stream.pause();
    },
    resume(): void {
      paused = false;
      stream.resume();
      direct?.resume();
    },
    get framesFromHandle(): number {
      return direct?.frames ?? 0;
    },
  };
}

/** The Deno 2.9 private keys the handle path uses, found once. */
let denoKeys: { handle: symbol; updateTimer: symbol } | null | undefined;

function findSymbol(
  object: object | null,
  description: string,
): symbol | undefined {
  for (; object !== null; object = Object.getPrototypeOf(object)) {
    const found = Object.getOwnPropertySymbols(object).find((key) =>
      key.description === description
    );
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The handle path of one stream. */
interface DirectRead {
  /** Frames taken from the handle so far. */
  readonly frames: number;
  /**
   * Restarts the native read, acknowledges what it had held back and hands over the frames
   * that arrived while paused.
   */
  resume(): void;
  /** Whether frames are still held, so the end must wait for them (it then comes after). */
  holdsEnd(): boolean;
}

/**
 * Takes a Deno 2.9 `node:http2` stream's DATA frames from its native handle while the
 * `Readable` is idle, or does nothing and returns `undefined` when the stream lacks that
 * shape. Relies on Deno's private `kHandle` and `kUpdateTimer` symbols, the handle's
 * `onread`/`readStart` and the session handle's `sendPending` (ext/node/polyfills/http2.ts
 * and internal/stream_base_commons.ts, Deno 2.9.6).
 */
function readFromHandle(
  stream: RequestStream,
  { deframer, paused }: { deframer: Deframer; paused: () => boolean },
): DirectRead | undefined {
  if (denoKeys === undefined) {
    const handle = findSymbol(stream, "kHandle");
    const updateTimer = findSymbol(stream, "kUpdateTimer");
    denoKeys = handle !== undefined && updateTimer !== undefined
      ? { handle, updateTimer }
      : null;
  }
  if (denoKeys === null) {
    missedFastPath(
      "request frames from Deno's handle",
      "the stream's kHandle or kUpdateTimer symbol",
    );
    return undefined;
  }
  const keys = denoKeys;
  const fields = stream as unknown as Record<symbol, unknown> & {
    readonly readableLength?: unknown;
    readonly session?: unknown;
  };
  const handle = fields[keys.handle] as Partial<StreamHandle> | undefined;
  const updateTimer = fields[keys.updateTimer];
  const session = fields.session as Record<symbol, unknown> | undefined;
  const sessionHandle = session?.[keys.handle] as
    | Partial<SessionHandle>
    | undefined;
  const original = handle?.onread;
  if (
    handle === undefined || typeof original !== "function" ||
    typeof handle.readStart !== "function" ||
    typeof updateTimer !== "function" ||
    typeof sessionHandle?.sendPending !== "function" ||
    typeof fields.readableLength !== "number"
  ) {
    // A stream or session already destroyed has no handle: that is not a missing field.
    if (handle !== undefined && sessionHandle !== undefined) {
      missedFastPath(
        "request frames from Deno's handle",
        "the handle's onread or readStart, or the session handle's sendPending",
      );
    }
    return undefined;
  }
  usedFastPath("request frames from Deno's handle");
  const sendPending = sessionHandle.sendPending.bind(sessionHandle);
  const readStart = handle.readStart.bind(handle);
  const state = { frames: 0, acknowledging: false };
  // Deno consumes each frame's bytes from the stream's window as it arrives (while the native
  // read is on), and the session sends the WINDOW_UPDATE that may queue right after the
  // socket read that carried the frames. Only a restart outside a socket read sends its own.
  function acknowledge(): void {
    state.acknowledging = false;
    if (!stream.destroyed) sendPending();
  }
  // Frames that arrive while the reader is paused wait here, as the Readable would hold them;
  // the native read is stopped meanwhile, so the stream's window bounds them.
  const held: (Uint8Array | undefined)[] = [];
  let next = 0;
  let heldBytes = 0;
  let endHeld = false;
  function handOver(): void {
    while (next < held.length && !paused() && !stream.destroyed) {
      const frame = held[next]!;
      held[next++] = undefined;
      heldBytes -= frame.length;
      deframer.write(frame);
    }
    if (next < held.length && !stream.destroyed) return;
    held.length = 0;
    next = 0;
    if (endHeld) {
      endHeld = false;
      if (!stream.destroyed) deframer.end();
    }
  }
  function take(frame: Uint8Array, borrowed: boolean): void {
    (updateTimer as () => void).call(stream);
    state.frames += 1;
    if (paused() || next < held.length) {
      // A borrowed frame lies in the socket read's buffer, which is only lent for the call.
      held.push(borrowed ? frame.slice() : frame);
      heldBytes += frame.length;
    } else deframer.write(frame);
  }
  /** Whether the session's frame tap has taken this stream's frames (see `frame_tap.ts`). */
  let tapped = false;
  function onread(
    this: StreamHandle,
    bytes: Uint8Array | undefined,
    length?: number,
  ): unknown {
    if (typeof length === "number" && length > 0 && tapped) {
      // The tap has handed this frame over already, before nghttp2 read it.
      return undefined;
    }
    if (
      typeof length === "number" && length > 0 && bytes !== undefined &&
      bytes.length >= length && !stream.destroyed &&
      fields.readableLength === 0
    ) {
      take(bytes.length === length ? bytes : bytes.subarray(0, length), false);
      return undefined;
    }
    return original!.call(this, bytes, length);
  }
  handle.onread = onread;
  const tap = tapOf(fields.session);
  const streamId = (stream as { id?: unknown }).id;
  if (tap !== undefined && typeof streamId === "number") {
    const untap = tap.add(streamId, {
      ready(): boolean {
        if (stream.destroyed || fields.readableLength !== 0) return false;
        tapped = true;
        // Not a function: Deno then skips the frame's buffer and call (see `frame_tap.ts`).
        (handle as { onread: unknown }).onread = null;
        return true;
      },
      data(bytes: Uint8Array): void {
        if (stream.destroyed) return;
        if ((handle as { onread: unknown }).onread !== null) {
          // Something else took the handle's onread back: the frames go its way, once.
          untap();
          return;
        }
        if (heldBytes + bytes.length > TAPPED_HOLD_LIMIT) {
          // More than any window this server grants while the reader waits: the peer ignores
          // flow control (nghttp2 resets the stream too). The call ends rather than lose data.
          untap();
          handle.onread = onread;
          deframer.abort(
            grpc.status.RESOURCE_EXHAUSTED,
            `Client sent more than ${TAPPED_HOLD_LIMIT} bytes past flow control`,
          );
          return;
        }
        try {
          take(bytes, true);
        } catch (cause) {
          // The socket's listener must not throw: Deno's own, after it, feeds nghttp2.
          untap();
          handle.onread = onread;
          deframer.abort(
            grpc.status.INTERNAL,
            `Failed to read the request: ${
              cause instanceof Error ? cause.message : cause
            }`,
          );
        }
      },
      released(): void {
        handle.onread = onread;
      },
    });
    stream.on("close", untap);
  }
  return {
    get frames(): number {
      return state.frames;
    },
    resume(): void {
      if (stream.destroyed) return;
      // Frames read from the handle never went through the Readable, so it may still think a
      // read is under way and not restart the native read: restart it here.
      readStart();
      if (!state.acknowledging) {
        state.acknowledging = true;
        process.nextTick(acknowledge);
      }
      handOver();
    },
    holdsEnd(): boolean {
      if (next >= held.length) return false;
      endHeld = true;
      return true;
    },
  };
}

/** How a {@linkcode Deframer} reads its call's messages. */
interface DeframerOptions {
  /** The largest message accepted, after decompression; `Infinity` for no limit. */
  maxBytes: number;
  /** The call's `grpc-encoding`. */
  encoding: string;
}

const NO_BYTES = new Uint8Array(0);

/**
 * Cuts a call's request stream into messages (the shared envelope decoder) and decompresses
 * the compressed ones, handing each over in one reused span.
 */
class Deframer implements EnvelopeReceiver {
  #sink: RequestSink;
  /** The one span every decompressed message is handed over in. */
  #span: MessageSpan = { bytes: NO_BYTES, start: 0, end: 0 };
  #maxBytes: number;
  #encoding: string;
  #decoder: EnvelopeDecoder;
  #failed = false;

  constructor(sink: RequestSink, options: DeframerOptions) {
    this.#sink = sink;
    this.#maxBytes = options.maxBytes;
    this.#encoding = options.encoding;
    this.#decoder = new EnvelopeDecoder(this, {
      maxBytes: options.maxBytes,
      compression: options.encoding !== "identity",
    });
  }

  write(chunk: Uint8Array): void {
    this.#decoder.write(chunk);
  }

  /** Hands over one message, decompressed first if `compressed` (see {@linkcode EnvelopeReceiver}). */
  message(span: Readonly<MessageSpan>, compressed: boolean): void {
    if (!compressed) {
      this.#sink.message(span);
      return;
    }
    const plain = this.#decompress(span.bytes.subarray(span.start, span.end));
    if (plain === undefined) return;
    const own = this.#span;
    own.bytes = plain;
    own.start = 0;
    own.end = plain.length;
    this.#sink.message(own);
    own.bytes = NO_BYTES;
  }

  /** The request broke the framing or the limit (see {@linkcode EnvelopeReceiver}). */
  fail(fault: EnvelopeFault): void {
    this.#fail(fault.code, fault.details);
  }

  #decompress(bytes: Uint8Array): Uint8Array | undefined {
    const encoding = this.#encoding;
    if (encoding !== "gzip" && encoding !== "deflate") {
      this.#fail(
        grpc.status.UNIMPLEMENTED,
        `Received message compressed with unsupported encoding "${encoding}"`,
      );
      return undefined;
    }
    // One byte past the limit tells a message at the limit from one over it.
    const options = Number.isFinite(this.#maxBytes)
      ? { maxOutputLength: this.#maxBytes + 1 }
      : {};
    let plain: Buffer;
    try {
      plain = encoding === "gzip"
        ? gunzipSync(bytes, options)
        : inflateSync(bytes, options);
    } catch (cause) {
      const tooLarge = (cause as { code?: unknown }).code ===
        "ERR_BUFFER_TOO_LARGE";
      if (tooLarge) {
        this.#fail(
          grpc.status.RESOURCE_EXHAUSTED,
          `Received message that decompresses to a size larger than ${this.#maxBytes}`,
        );
      } else {
        this.#fail(grpc.status.INTERNAL, "Failed to decompress message");
      }
      return undefined;
    }
    if (plain.length > this.#maxBytes) {
      this.#fail(
        grpc.status.RESOURCE_EXHAUSTED,
        `Received message that decompresses to a size larger than ${this.#maxBytes}`,
      );
      return undefined;
    }
    return plain;
  }

  end(): void {
    if (this.#failed) return;
    const fault = this.#decoder.end();
    if (fault === undefined) this.#sink.end();
    else this.#fail(fault.code, fault.details);
  }

  /**
   * Ends the call with `code`: the request cannot be read on.
   *
   * @param code The status.
   * @param details What went wrong.
   */
  abort(code: grpc.status, details: string): void {
    if (!this.#failed) this.#fail(code, details);
  }

  #fail(code: grpc.status, details: string): void {
    this.#failed = true;
    this.#decoder.stop();
    this.#sink.fail(failure(code, details));
  }
}
