/**
 * Reads the request messages of one client-streaming or bidirectional call straight from its
 * HTTP/2 stream.
 *
 * grpc-js hands each request message to a handler through a promise (its decompression step
 * is `async` even for uncompressed messages), a `stream.pause()`, a queue entry, a
 * `startRead()` and an object-mode `Readable` push: one turn of that machinery per message,
 * which caps a `Sum` near 200,000 messages/s under Deno while grpc-go takes 500,000. Here the
 * frames of each HTTP/2 DATA chunk are cut into messages in one loop (`request_deframer.ts`)
 * and handed to the handler synchronously. It also holds the line that the pinned grpc-js
 * does not (under Node too): a request that ends inside a message, and a message flagged
 * compressed on a call without `grpc-encoding`, end the call with `INTERNAL` (the gRPC HTTP/2
 * protocol) instead of being dropped or read as plain.
 *
 * The call stays a grpc-js call: grpc-js parsed its headers and still sends the response
 * headers, messages and status, tracks the deadline and reports cancellation. The reader
 * replaces only the per-call data handler of grpc-js's intercepting call
 * (`internals/grpc_js_server_call.ts`). When a call does not have that shape (an interceptor
 * wraps it, or another grpc-js version keeps it elsewhere), {@linkcode openRequestReader}
 * returns `undefined` and the handler reads the call's messages through grpc-js as before.
 * Below that, the frames come from Deno's stream handle or the session's frame tap where they
 * can (`request_frames.ts`).
 *
 * @module
 */
import type * as grpc from "../internals/npm/grpc_js.ts";
import { observedRequestSink } from "./telemetry.ts";
import {
  callRequestsOf,
  type RequestStream,
} from "../internals/grpc_js_server_call.ts";
import {
  DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  type MessageSpan,
} from "../proto/envelope.ts";
import { Deframer, type RequestSink } from "./request_deframer.ts";
import { type DirectRead, readFromHandle } from "./request_frames.ts";
import { ServerStream } from "./http2/server_stream.ts";

/** A server call that receives a stream of messages. */
export type ReadableCall =
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/**
 * Where one request message lies (see {@linkcode MessageSpan} in `proto/envelope.ts`): the
 * same object for every message, valid only during the call that receives it.
 */
export type { MessageSpan };

export type { RequestSink };

/** Pauses and resumes the reading of one call's requests. */
export interface RequestReader {
  /** Stops reading until {@linkcode RequestReader.resume}, so HTTP/2 flow control holds the client. */
  pause(): void;
  /** Reads on. */
  resume(): void;
  /**
   * How many DATA frames so far were taken straight from the stream's native handle rather
   * than through its `Readable`; stays 0 when the stream lacks Deno's handle shape.
   */
  readonly framesFromHandle: number;
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
  const requests = callRequestsOf(call);
  if (requests === undefined) return undefined;
  const configured = requests.maxReceiveBytes;
  const maxBytes = configured === -1
    ? Infinity
    : configured !== undefined && configured >= 0
    ? configured
    : DEFAULT_MAX_RECEIVE_MESSAGE_BYTES;
  const deframer = new Deframer(observedRequestSink(call, sink), {
    maxBytes,
    encoding: requests.encoding ?? "identity",
  });
  const reader = new StreamReader(requests.stream, deframer);
  // grpc-js's 'data' listener calls this per-call handler; its own queue stays empty and its
  // 'end' listener only queues a half-close that nothing reads.
  requests.takeData(reader.data);
  reader.start();
  return reader;
}

/** One call's reading, as {@linkcode openRequestReader} starts it. */
class StreamReader implements RequestReader {
  readonly #stream: RequestStream;
  readonly #deframer: Deframer;
  #direct: DirectRead | undefined = undefined;
  #paused = false;

  constructor(stream: RequestStream, deframer: Deframer) {
    this.#stream = stream;
    this.#deframer = deframer;
  }

  /** Takes one chunk of the stream's DATA. */
  readonly data = (data: Uint8Array): void => {
    if (this.#stream.destroyed) return;
    this.#deframer.write(data);
  };

  /** Reads on from the stream's handle where it can, and from the stream. */
  start(): void {
    // The own HTTP/2 hands DATA over straight from the socket's read: no handle to read.
    this.#direct = this.#stream instanceof ServerStream
      ? undefined
      : readFromHandle(this.#stream, {
        deframer: this.#deframer,
        paused: () => this.#paused,
      });
    this.#stream.on("end", () => {
      if (this.#direct?.holdsEnd() !== true) this.#deframer.end();
    });
    this.#stream.resume();
  }

  pause(): void {
    this.#paused = true;
    // The stream's 'pause' listener stops the native read: the stream's window stays shut.
    this.#stream.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#stream.resume();
    this.#direct?.resume();
  }

  get framesFromHandle(): number {
    return this.#direct?.frames ?? 0;
  }
}
