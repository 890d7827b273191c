/**
 * Cuts one call's request stream into messages with the envelope decoder both sides share
 * (`proto/envelope.ts`), and decompresses the messages flagged compressed when the call
 * negotiated `gzip` or `deflate`, in the envelope's words for every fault.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import type { Buffer } from "node:buffer";
import { gunzipSync, inflateSync } from "node:zlib";
import {
  decompressesTooLarge,
  EnvelopeDecoder,
  type EnvelopeFault,
  type EnvelopeReceiver,
  type MessageSpan,
  notDecompressed,
  unsupportedEncoding,
} from "../proto/envelope.ts";

/** What a reader tells its handler. */
export interface RequestSink {
  /** One whole message; `span` is only valid during the call. */
  message(span: Readonly<MessageSpan>): void;
  /** The client half-closed the call after whole messages. */
  end(): void;
  /** The request broke the gRPC framing or a limit; the call must end with `failure`. */
  fail(failure: grpc.StatusObject): void;
}

function failure(code: number, details: string): grpc.StatusObject {
  return { code, details, metadata: new grpc.Metadata() };
}

/** How a {@linkcode Deframer} reads its call's messages. */
export interface DeframerOptions {
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
export class Deframer implements EnvelopeReceiver {
  #sink: RequestSink;
  /** The one span every decompressed message is handed over in. */
  #span: MessageSpan = { bytes: NO_BYTES, start: 0, end: 0 };
  #maxBytes: number;
  #encoding: string;
  #decoder: EnvelopeDecoder;
  #failed = false;

  /**
   * @param sink Where the messages, the end and any failure go.
   * @param options The limit and the call's encoding.
   */
  constructor(sink: RequestSink, options: DeframerOptions) {
    this.#sink = sink;
    this.#maxBytes = options.maxBytes;
    this.#encoding = options.encoding;
    this.#decoder = new EnvelopeDecoder(this, {
      maxBytes: options.maxBytes,
      compression: options.encoding !== "identity",
    });
  }

  /** Reads the next chunk of the request stream. */
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
    this.#failWith(fault);
  }

  #failWith(fault: EnvelopeFault): void {
    this.#fail(fault.code, fault.details);
  }

  #decompress(bytes: Uint8Array): Uint8Array | undefined {
    const encoding = this.#encoding;
    if (encoding !== "gzip" && encoding !== "deflate") {
      this.#failWith(unsupportedEncoding(encoding));
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
      this.#failWith(
        tooLarge ? decompressesTooLarge(this.#maxBytes) : notDecompressed(),
      );
      return undefined;
    }
    if (plain.length > this.#maxBytes) {
      this.#failWith(decompressesTooLarge(this.#maxBytes));
      return undefined;
    }
    return plain;
  }

  /** The request stream ended: whole, or inside a message (the call then fails). */
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
  abort(code: number, details: string): void {
    if (!this.#failed) this.#fail(code, details);
  }

  #fail(code: number, details: string): void {
    this.#failed = true;
    this.#decoder.stop();
    this.#sink.fail(failure(code, details));
  }
}
