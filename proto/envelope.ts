/**
 * The gRPC message envelope, read and written the same way by the client and the server: a
 * 1-byte flag (0 plain, 1 compressed), the message's length as a 4-byte big-endian integer,
 * then the message. One decoder cuts a byte stream into messages for both sides, with one
 * text per fault, so a peer that breaks the framing reads the same words from either side.
 *
 * The decoder hands each message over as a span of the chunk that carried it, read in place;
 * only a message cut across chunks is copied, once, into a buffer of its own. The server's
 * request reader hands over hundreds of thousands of messages a second this way, so nothing
 * here allocates per message.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { Status } from "./status.ts";

/** The bytes before each message: the compressed flag and the 4-byte length. */
export const PREFIX_BYTES = 5;

/**
 * The largest message received unless told otherwise: grpc-js's default for
 * `grpc.max_receive_message_length`, as in other gRPC stacks.
 */
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES: number = 4 * 1024 * 1024;

/** Why a byte stream cannot be read on as gRPC messages: the call ends with this status. */
export interface EnvelopeFault {
  /** The gRPC status code. */
  readonly code: Status;
  /** What went wrong, for `grpc-message`. */
  readonly details: string;
}

/**
 * Where one message lies: `bytes[start..end)`, the bytes after its prefix. A decoder hands the
 * same object over for every message (no allocation per message), so it and its bytes are
 * only valid during the call that receives them: the chunk they lie in may be reused once the
 * decoder's `write` returns.
 */
export interface MessageSpan {
  /** The chunk that holds the message. */
  bytes: Uint8Array;
  /** Where the message starts in `bytes`. */
  start: number;
  /** Where the message ends in `bytes` (exclusive). */
  end: number;
}

/** Where an {@linkcode EnvelopeDecoder} hands its messages and its fault. */
export interface EnvelopeReceiver {
  /** One whole message, flagged `compressed` or not; `span` is only valid during the call. */
  message(span: Readonly<MessageSpan>, compressed: boolean): void;
  /** The stream broke the framing or the size limit; nothing more is handed over. */
  fail(fault: EnvelopeFault): void;
}

/** How an {@linkcode EnvelopeDecoder} reads. */
export interface EnvelopeDecoderOptions {
  /**
   * The largest message accepted, in bytes; `Infinity` for no limit.
   *
   * @default {DEFAULT_MAX_RECEIVE_MESSAGE_BYTES}
   */
  maxBytes?: number;
  /**
   * Whether messages may be flagged compressed: the stream's `grpc-encoding` names a
   * compression. Their bytes are handed over as they came; the receiver decompresses them.
   *
   * @default {false}
   */
  compression?: boolean;
}

const NO_BYTES = new Uint8Array(0);

/** The fault of a message over the receive limit, in grpc-js's and C-core's words. */
function tooLargeToReceive(
  size: number,
  maxBytes: number,
): EnvelopeFault {
  return {
    code: Status.RESOURCE_EXHAUSTED,
    details: `Received message larger than max (${size} vs. ${maxBytes})`,
  };
}

/**
 * The fault of a message over the send limit, in grpc-js's and C-core's words (the same on
 * both sides).
 *
 * @param size The message's length, as the sender counts it.
 * @param maxBytes The limit.
 * @returns The fault: `RESOURCE_EXHAUSTED`.
 */
export function tooLargeToSend(size: number, maxBytes: number): EnvelopeFault {
  return {
    code: Status.RESOURCE_EXHAUSTED,
    details: `Sent message larger than max (${size} vs. ${maxBytes})`,
  };
}

/**
 * The fault of a message compressed with an encoding the receiver cannot decompress, in
 * grpc-js's words.
 *
 * @param encoding The stream's `grpc-encoding`.
 * @returns The fault: `UNIMPLEMENTED`.
 */
export function unsupportedEncoding(encoding: string): EnvelopeFault {
  return {
    code: Status.UNIMPLEMENTED,
    details:
      `Received message compressed with unsupported encoding "${encoding}"`,
  };
}

/**
 * The fault of a compressed message larger than the receive limit once decompressed, in
 * grpc-js's words.
 *
 * @param maxBytes The limit.
 * @returns The fault: `RESOURCE_EXHAUSTED`.
 */
export function decompressesTooLarge(maxBytes: number): EnvelopeFault {
  return {
    code: Status.RESOURCE_EXHAUSTED,
    details:
      `Received message that decompresses to a size larger than ${maxBytes}`,
  };
}

/**
 * The fault of a compressed message whose bytes do not decompress, in grpc-js's words.
 *
 * @returns The fault: `INTERNAL`.
 */
export function notDecompressed(): EnvelopeFault {
  return { code: Status.INTERNAL, details: "Failed to decompress message" };
}

/**
 * Writes a plain (uncompressed) message's prefix into `target` at `offset`.
 *
 * @param target Where the prefix goes; the message itself follows it.
 * @param length The message's length.
 * @param offset Where in `target`.
 */
export function writePrefix(
  target: Uint8Array,
  length: number,
  offset = 0,
): void {
  target[offset] = 0;
  target[offset + 1] = length >>> 24;
  target[offset + 2] = (length >>> 16) & 0xff;
  target[offset + 3] = (length >>> 8) & 0xff;
  target[offset + 4] = length & 0xff;
}

/**
 * Cuts a byte stream into gRPC messages, chunk by chunk as they arrive. A span's bytes are
 * the chunk written, or a `Buffer` of the decoder's own for a message cut across chunks.
 */
export class EnvelopeDecoder {
  #receiver: EnvelopeReceiver;
  /** The one span every message is handed over in. */
  #span: MessageSpan = { bytes: NO_BYTES, start: 0, end: 0 };
  #maxBytes: number;
  #compression: boolean;
  /** The prefix of a message cut across chunks. */
  #prefix: Uint8Array | undefined = undefined;
  #prefixUsed = 0;
  /** The body of a message cut across chunks, and how much of it has arrived. */
  #body: Uint8Array | undefined;
  #bodyUsed = 0;
  #compressed = false;
  #stopped = false;

  /**
   * @param receiver Where the messages and any fault go.
   * @param options The limit and whether compression was negotiated.
   */
  constructor(
    receiver: EnvelopeReceiver,
    options: EnvelopeDecoderOptions = {},
  ) {
    this.#receiver = receiver;
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES;
    this.#compression = options.compression ?? false;
  }

  /**
   * Reads the next chunk of the stream, handing over each message it completes.
   *
   * @param chunk The bytes, kept only for the call.
   */
  write(chunk: Uint8Array): void {
    if (this.#stopped) return;
    let offset = 0;
    const length = chunk.length;
    if (this.#prefixUsed > 0 || this.#body !== undefined) {
      offset = this.#continuePartial(chunk);
      if (offset < 0) return;
    }
    const receiver = this.#receiver;
    const span = this.#span;
    span.bytes = chunk;
    while (offset < length && !this.#stopped) {
      if (length - offset < PREFIX_BYTES) {
        // Made only for a prefix cut across chunks: most calls never need it.
        this.#prefix ??= new Uint8Array(PREFIX_BYTES);
        this.#prefix.set(chunk.subarray(offset), 0);
        this.#prefixUsed = length - offset;
        break;
      }
      const flag = chunk[offset]!;
      const size = ((chunk[offset + 1]! << 24) >>> 0) +
        (chunk[offset + 2]! << 16) + (chunk[offset + 3]! << 8) +
        chunk[offset + 4]!;
      if ((flag !== 0 || size > this.#maxBytes) && !this.#accept(flag, size)) {
        break;
      }
      const start = offset + PREFIX_BYTES;
      const end = start + size;
      if (end > length) {
        // The one copy of a message cut across chunks: the chunk is only lent.
        const body = Buffer.allocUnsafe(size);
        body.set(chunk.subarray(start), 0);
        this.#body = body;
        this.#bodyUsed = length - start;
        this.#compressed = flag === 1;
        break;
      }
      // The receiver may not keep the span: it is the same object, and the chunk lent.
      span.start = start;
      span.end = end;
      receiver.message(span, flag === 1);
      offset = end;
    }
    // The chunk is not kept alive past its last message.
    span.bytes = NO_BYTES;
  }

  /**
   * The end of the stream: says whether it came between two messages.
   *
   * @returns The fault (`INTERNAL`) when the stream ended inside a message, else `undefined`.
   */
  end(): EnvelopeFault | undefined {
    if (this.#stopped) return undefined;
    let fault: EnvelopeFault | undefined;
    if (this.#body !== undefined) {
      fault = {
        code: Status.INTERNAL,
        details:
          `Stream ended inside a message: ${this.#bodyUsed} of its ${this.#body.length} bytes arrived`,
      };
    } else if (this.#prefixUsed > 0) {
      fault = {
        code: Status.INTERNAL,
        details:
          `Stream ended inside a message prefix: ${this.#prefixUsed} of its ${PREFIX_BYTES} bytes arrived`,
      };
    }
    this.stop();
    return fault;
  }

  /** Stops reading: later bytes are ignored and nothing more is handed over. */
  stop(): void {
    this.#stopped = true;
    this.#body = undefined;
    this.#prefixUsed = 0;
  }

  /** Feeds the start of `chunk` to the message cut short; returns where the rest begins. */
  #continuePartial(chunk: Uint8Array): number {
    let offset = 0;
    if (this.#body === undefined) {
      const taken = Math.min(PREFIX_BYTES - this.#prefixUsed, chunk.length);
      this.#prefix!.set(chunk.subarray(0, taken), this.#prefixUsed);
      this.#prefixUsed += taken;
      offset = taken;
      if (this.#prefixUsed < PREFIX_BYTES) return -1;
      const prefix = this.#prefix!;
      const flag = prefix[0]!;
      const size = ((prefix[1]! << 24) >>> 0) + (prefix[2]! << 16) +
        (prefix[3]! << 8) + prefix[4]!;
      this.#prefixUsed = 0;
      if (!this.#accept(flag, size)) return -1;
      this.#body = Buffer.allocUnsafe(size);
      this.#bodyUsed = 0;
      this.#compressed = flag === 1;
    }
    const body = this.#body;
    const taken = Math.min(body.length - this.#bodyUsed, chunk.length - offset);
    body.set(chunk.subarray(offset, offset + taken), this.#bodyUsed);
    this.#bodyUsed += taken;
    offset += taken;
    if (this.#bodyUsed < body.length) return -1;
    this.#body = undefined;
    const span = this.#span;
    span.bytes = body;
    span.start = 0;
    span.end = body.length;
    this.#receiver.message(span, this.#compressed);
    span.bytes = NO_BYTES;
    return this.#stopped ? -1 : offset;
  }

  /** Checks a message's prefix; fails the stream when the message may not be read. */
  #accept(flag: number, size: number): boolean {
    let fault: EnvelopeFault | undefined;
    if (flag > 1) {
      fault = {
        code: Status.INTERNAL,
        details: `Message prefix has an unknown flag: ${flag}`,
      };
    } else if (flag === 1 && !this.#compression) {
      fault = {
        code: Status.INTERNAL,
        details:
          "Received a compressed message, but no compression was negotiated",
      };
    } else if (size > this.#maxBytes) {
      fault = tooLargeToReceive(size, this.#maxBytes);
    }
    if (fault === undefined) return true;
    this.stop();
    this.#receiver.fail(fault);
    return false;
  }
}
