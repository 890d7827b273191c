/**
 * Cuts what a connection's socket reads into HTTP/2 frames, for the server's own connections
 * and the client's: on a server the client's preface first, then on both frames of at most
 * 16 KiB (our SETTINGS_MAX_FRAME_SIZE), each checked for what
 * RFC 9113 §6 asks of its shape alone (its stream, its length, its padding) and handed to a
 * {@linkcode FrameHandler} with its padding removed. What depends on the connection's state
 * (streams, windows, header blocks) is the handler's to check.
 *
 * @module
 */
import {
  DEFAULT_MAX_FRAME_SIZE,
  ErrorCode,
  Flag,
  FRAME_HEADER_BYTES,
  FrameType,
  PREFACE,
  readUint31,
  readUint32,
} from "./frames.ts";

const NO_BYTES = new Uint8Array(0);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A DATA frame, its padding removed; the object itself is valid during the call only. */
export interface DataFrame {
  readonly stream: number;
  readonly endStream: boolean;
  /**
   * The data: a view of bytes the reader never writes again (a socket's chunk, or a join of
   * a frame split across reads), so it may be kept.
   */
  readonly data: Uint8Array;
  /** The whole payload's length, padding included: what flow control counts. */
  readonly flowLength: number;
}

/** A frame's header: its type, its flags and its stream. */
interface FrameHead {
  type: number;
  flags: number;
  stream: number;
}

/** A whole header block: a HEADERS frame's, with its CONTINUATIONs' joined. */
export interface HeaderBlock {
  readonly stream: number;
  readonly endStream: boolean;
  /** The encoded block, valid during the call only. */
  readonly block: Uint8Array;
}

/** A header block whose CONTINUATIONs are still to come. */
interface OpenBlock {
  stream: number;
  endStream: boolean;
  pieces: Uint8Array[];
  length: number;
}

/** What the reader hands over, frame by frame. */
export interface FrameHandler {
  /** The preface and a frame header have arrived: the peer speaks HTTP/2. */
  data(frame: DataFrame): void;
  headers(frame: HeaderBlock): void;
  rstStream(frame: { stream: number; code: number }): void;
  settings(frame: { ack: boolean; entries: [number, number][] }): void;
  ping(frame: { ack: boolean; payload: Uint8Array }): void;
  goAway(frame: { lastStream: number; code: number }): void;
  windowUpdate(frame: { stream: number; increment: number }): void;
  /** A PRIORITY frame on `stream` (only checked: priorities are not used). */
  priority(stream: number): void;
  /** The peer broke the protocol: the connection must end with `code`. */
  failed(failure: { code: number; reason: string }): void;
  /** A frame with a wrong length on a stream: a stream error. */
  streamFailed(failure: { stream: number; code: number }): void;
}

/** Where reading is: before the preface, or between frames. */
type ReadState = "preface" | "frames" | "failed";

/**
 * One connection's reader.
 *
 * @example
 * ```ts ignore
 * const reader = new FrameReader(handler);
 * socket.on("data", (chunk) => reader.receive(chunk));
 * ```
 */
export class FrameReader {
  readonly #handler: FrameHandler;
  #state: ReadState = "preface";
  /** Bytes of a frame (or the preface) not yet complete. */
  #rest: Uint8Array | null = null;
  /** Whether the peer's first frame, which must be SETTINGS, is still to come. */
  #first = true;
  /** The header block whose CONTINUATIONs are awaited: no other frame may come between. */
  #block: OpenBlock | null = null;
  readonly #maxBlockBytes: number;
  /** The header of the frame being read, refilled for each. */
  readonly #head: FrameHead = { type: 0, flags: 0, stream: 0 };
  /** The DATA frame handed over, refilled for each. */
  readonly #dataFrame: Mutable<DataFrame> = {
    stream: 0,
    endStream: false,
    data: NO_BYTES,
    flowLength: 0,
  };

  /**
   * @param handler Where the frames go.
   * @param limits The longest header block, with its CONTINUATIONs, and whether the peer
   * is a client, whose bytes begin with the preface.
   */
  constructor(
    handler: FrameHandler,
    limits: { maxBlockBytes: number; peer: "client" | "server" },
  ) {
    this.#handler = handler;
    this.#maxBlockBytes = limits.maxBlockBytes;
    if (limits.peer === "server") this.#state = "frames";
  }

  /** Stops reading: what arrives from now on is ignored. */
  stop(): void {
    this.#state = "failed";
  }

  /**
   * Reads what the socket read.
   *
   * @param chunk The bytes.
   */
  receive(chunk: Uint8Array): void {
    if (this.#state === "failed") return;
    // A plain view of a socket's `Buffer`: each frame's payload is then a plain subarray,
    // which V8 makes without calling `Buffer`'s constructor (a DATA frame can carry 7 bytes).
    let bytes = chunk.constructor === Uint8Array
      ? chunk
      : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#rest !== null) {
      const joined = new Uint8Array(this.#rest.length + bytes.length);
      joined.set(this.#rest);
      joined.set(bytes, this.#rest.length);
      bytes = joined;
      this.#rest = null;
    }
    let offset = 0;
    if (this.#state === "preface") {
      const length = Math.min(bytes.length, PREFACE.length);
      for (let i = 0; i < length; i++) {
        if (bytes[i] !== PREFACE[i]) {
          return this.#fail(ErrorCode.PROTOCOL_ERROR, "Invalid preface");
        }
      }
      if (bytes.length < PREFACE.length) {
        this.#rest = bytes.slice();
        return;
      }
      offset = PREFACE.length;
      this.#state = "frames";
    }
    while (bytes.length - offset >= FRAME_HEADER_BYTES) {
      const length = (bytes[offset]! << 16) | (bytes[offset + 1]! << 8) |
        bytes[offset + 2]!;
      if (length > DEFAULT_MAX_FRAME_SIZE) {
        return this.#fail(ErrorCode.FRAME_SIZE_ERROR, "Frame too large");
      }
      if (bytes.length - offset - FRAME_HEADER_BYTES < length) break;
      const head = this.#head;
      const type = head.type = bytes[offset + 3]!;
      head.flags = bytes[offset + 4]!;
      head.stream = readUint31(bytes, offset + 5);
      const start = offset + FRAME_HEADER_BYTES;
      offset = start + length;
      if (this.#first && type !== FrameType.SETTINGS) {
        return this.#fail(ErrorCode.PROTOCOL_ERROR, "First frame not SETTINGS");
      }
      this.#first = false;
      const payload = bytes.subarray(start, offset);
      if (this.#block !== null) {
        this.#continuation(head, payload);
      } else {
        this.#frame(head, payload);
      }
      if (this.#state !== "frames") return;
    }
    if (offset < bytes.length) this.#rest = bytes.slice(offset);
  }

  #continuation(
    { type, flags, stream }: FrameHead,
    payload: Uint8Array,
  ): void {
    const block = this.#block!;
    if (type !== FrameType.CONTINUATION || stream !== block.stream) {
      return this.#fail(ErrorCode.PROTOCOL_ERROR, "Header block interrupted");
    }
    block.pieces.push(payload.slice());
    block.length += payload.length;
    if (block.length > this.#maxBlockBytes) {
      return this.#fail(ErrorCode.ENHANCE_YOUR_CALM, "Header block too large");
    }
    if ((flags & Flag.END_HEADERS) === 0) return;
    this.#block = null;
    const joined = new Uint8Array(block.length);
    let at = 0;
    for (const piece of block.pieces) {
      joined.set(piece, at);
      at += piece.length;
    }
    this.#handler.headers({
      stream,
      endStream: block.endStream,
      block: joined,
    });
  }

  #fail(code: number, reason: string): void {
    this.#state = "failed";
    this.#handler.failed({ code, reason });
  }

  #frame({ type, flags, stream }: FrameHead, payload: Uint8Array): void {
    const handler = this.#handler;
    const onStream = stream !== 0;
    switch (type) {
      case FrameType.DATA: {
        if (!onStream) return this.#fail(ErrorCode.PROTOCOL_ERROR, "DATA");
        const data = this.#unpadded(flags, payload);
        if (data === undefined) return;
        // One object for every DATA frame: a stream of small messages is mostly DATA frames.
        const frame = this.#dataFrame;
        frame.stream = stream;
        frame.endStream = (flags & Flag.END_STREAM) !== 0;
        frame.data = data;
        frame.flowLength = payload.length;
        handler.data(frame);
        frame.data = NO_BYTES;
        return;
      }
      case FrameType.HEADERS: {
        if (!onStream) return this.#fail(ErrorCode.PROTOCOL_ERROR, "HEADERS");
        let fragment = this.#unpadded(flags, payload);
        if (fragment === undefined) return;
        if ((flags & Flag.PRIORITY) !== 0) {
          if (fragment.length < 5) {
            return this.#fail(ErrorCode.FRAME_SIZE_ERROR, "HEADERS");
          }
          fragment = fragment.subarray(5);
        }
        const endStream = (flags & Flag.END_STREAM) !== 0;
        if ((flags & Flag.END_HEADERS) !== 0) {
          return handler.headers({ stream, endStream, block: fragment });
        }
        this.#block = {
          stream,
          endStream,
          pieces: [fragment.slice()],
          length: fragment.length,
        };
        return;
      }
      case FrameType.CONTINUATION:
        return this.#fail(ErrorCode.PROTOCOL_ERROR, "CONTINUATION");
      case FrameType.PRIORITY:
        if (!onStream) return this.#fail(ErrorCode.PROTOCOL_ERROR, "PRIORITY");
        if (payload.length !== 5) {
          return handler.streamFailed({
            stream,
            code: ErrorCode.FRAME_SIZE_ERROR,
          });
        }
        return handler.priority(stream);
      case FrameType.RST_STREAM:
        if (!onStream) {
          return this.#fail(ErrorCode.PROTOCOL_ERROR, "RST_STREAM");
        }
        if (payload.length !== 4) {
          return this.#fail(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM");
        }
        return handler.rstStream({ stream, code: readUint32(payload, 0) });
      case FrameType.SETTINGS:
        return this.#settings(flags, { stream, payload });
      case FrameType.PUSH_PROMISE:
        return this.#fail(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE");
      case FrameType.PING:
        if (onStream) return this.#fail(ErrorCode.PROTOCOL_ERROR, "PING");
        if (payload.length !== 8) {
          return this.#fail(ErrorCode.FRAME_SIZE_ERROR, "PING");
        }
        return handler.ping({ ack: (flags & Flag.ACK) !== 0, payload });
      case FrameType.GOAWAY:
        if (onStream) return this.#fail(ErrorCode.PROTOCOL_ERROR, "GOAWAY");
        if (payload.length < 8) {
          return this.#fail(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY");
        }
        return handler.goAway({
          lastStream: readUint31(payload, 0),
          code: readUint32(payload, 4),
        });
      case FrameType.WINDOW_UPDATE:
        if (payload.length !== 4) {
          return this.#fail(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE");
        }
        return handler.windowUpdate({
          stream,
          increment: readUint31(payload, 0),
        });
      default:
        // Unknown frame types are ignored (RFC 9113 §4.1).
        return;
    }
  }

  #settings(
    flags: number,
    { stream, payload }: { stream: number; payload: Uint8Array },
  ): void {
    if (stream !== 0) return this.#fail(ErrorCode.PROTOCOL_ERROR, "SETTINGS");
    const ack = (flags & Flag.ACK) !== 0;
    if ((ack && payload.length !== 0) || payload.length % 6 !== 0) {
      return this.#fail(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS");
    }
    const entries: [number, number][] = [];
    for (let at = 0; at < payload.length; at += 6) {
      entries.push([
        (payload[at]! << 8) | payload[at + 1]!,
        readUint32(payload, at + 2),
      ]);
    }
    this.#handler.settings({ ack, entries });
  }

  /** The payload without its padding, or `undefined` (the connection failed) when it lies. */
  #unpadded(flags: number, payload: Uint8Array): Uint8Array | undefined {
    if ((flags & Flag.PADDED) === 0) return payload;
    if (payload.length === 0 || payload[0]! >= payload.length) {
      this.#fail(ErrorCode.PROTOCOL_ERROR, "Padding exceeds the frame");
      return undefined;
    }
    return payload.subarray(1, payload.length - payload[0]!);
  }
}
