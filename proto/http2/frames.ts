/**
 * HTTP/2 frames (RFC 9113 §4 and §6) as the own connections of both sides write them: the frame
 * types, flags, error codes and settings it uses, and a {@linkcode FrameWriter} that lays
 * frames out one after another in one growing buffer, so that what a connection answers to
 * one socket read leaves in one socket write.
 *
 * @module
 */

/** The frame types of RFC 9113 §6. */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** The frame flags the connection reads or writes. */
export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** The error codes of RFC 9113 §7. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** The settings of RFC 9113 §6.5.2. */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** The client's connection preface (RFC 9113 §3.4). */
export const PREFACE: Uint8Array = new TextEncoder().encode(
  "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
);

/** A frame header's length. */
export const FRAME_HEADER_BYTES = 9;

/** The largest frame payload every peer accepts, whatever its SETTINGS_MAX_FRAME_SIZE. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;

/** The flow-control window every stream and connection starts with. */
export const DEFAULT_WINDOW = 65_535;

/** The largest flow-control window (RFC 9113 §6.9.1). */
export const MAX_WINDOW = 2 ** 31 - 1;

/**
 * Frames laid out one after another in one buffer, which grows as needed and is handed over
 * whole by {@linkcode FrameWriter.take}.
 *
 * @example
 * ```ts
 * import { FrameType, FrameWriter } from "./frames.ts";
 *
 * const writer = new FrameWriter();
 * writer.frame(FrameType.PING, { payload: new Uint8Array(8) });
 * const bytes = writer.take();
 * ```
 */
export class FrameWriter {
  #out = new Uint8Array(16_384);
  #length = 0;

  /** How many bytes are waiting to be taken. */
  get length(): number {
    return this.#length;
  }

  /**
   * Appends one frame.
   *
   * @param type The frame's type.
   * @param options Its flags, stream and payload.
   */
  frame(
    type: number,
    { flags = 0, stream = 0, payload }: {
      flags?: number;
      stream?: number;
      payload?: Uint8Array;
    },
  ): void {
    this.header(type, { length: payload?.length ?? 0, flags, stream });
    if (payload !== undefined) this.bytes(payload);
  }

  /**
   * Appends a frame header; the caller appends its `length` bytes of payload after it.
   *
   * @param type The frame's type.
   * @param options The payload's length, the flags, and the stream (0 for the connection).
   */
  header(
    type: number,
    { length, flags = 0, stream = 0 }: {
      length: number;
      flags?: number;
      stream?: number;
    },
  ): void {
    this.#reserve(FRAME_HEADER_BYTES + length);
    const out = this.#out;
    const at = this.#length;
    out[at] = length >>> 16;
    out[at + 1] = (length >>> 8) & 0xff;
    out[at + 2] = length & 0xff;
    out[at + 3] = type;
    out[at + 4] = flags;
    out[at + 5] = (stream >>> 24) & 0x7f;
    out[at + 6] = (stream >>> 16) & 0xff;
    out[at + 7] = (stream >>> 8) & 0xff;
    out[at + 8] = stream & 0xff;
    this.#length = at + FRAME_HEADER_BYTES;
  }

  /**
   * Appends payload bytes.
   *
   * @param bytes The bytes.
   */
  bytes(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#out.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /**
   * Appends a 32-bit unsigned integer, network order.
   *
   * @param value The integer.
   */
  uint32(value: number): void {
    this.#reserve(4);
    const out = this.#out;
    const at = this.#length;
    out[at] = value >>> 24;
    out[at + 1] = (value >>> 16) & 0xff;
    out[at + 2] = (value >>> 8) & 0xff;
    out[at + 3] = value & 0xff;
    this.#length = at + 4;
  }

  /**
   * Appends a 16-bit unsigned integer, network order.
   *
   * @param value The integer.
   */
  uint16(value: number): void {
    this.#reserve(2);
    this.#out[this.#length] = value >>> 8;
    this.#out[this.#length + 1] = value & 0xff;
    this.#length += 2;
  }

  /**
   * Appends a RST_STREAM frame.
   *
   * @param stream The stream.
   * @param code Its error code.
   */
  rstStream(stream: number, code: number): void {
    this.header(FrameType.RST_STREAM, { length: 4, stream });
    this.uint32(code);
  }

  /**
   * Appends a WINDOW_UPDATE frame.
   *
   * @param stream The stream, or 0 for the connection.
   * @param increment What the window grows by.
   */
  windowUpdate(stream: number, increment: number): void {
    this.header(FrameType.WINDOW_UPDATE, { length: 4, stream });
    this.uint32(increment);
  }

  /**
   * Appends a GOAWAY frame.
   *
   * @param lastStream The last stream the connection serves.
   * @param options Its error code, and a reason for the peer's logs.
   */
  goAway(
    lastStream: number,
    { code, reason }: { code: number; reason?: string | undefined },
  ): void {
    const debug = reason === undefined
      ? undefined
      : new TextEncoder().encode(reason);
    this.header(FrameType.GOAWAY, { length: 8 + (debug?.length ?? 0) });
    this.uint32(lastStream);
    this.uint32(code);
    if (debug !== undefined) this.bytes(debug);
  }

  /**
   * Appends a SETTINGS frame.
   *
   * @param entries Each setting with its value.
   */
  settings(entries: readonly (readonly [number, number])[]): void {
    this.header(FrameType.SETTINGS, { length: entries.length * 6 });
    for (const [setting, value] of entries) {
      this.uint16(setting);
      this.uint32(value);
    }
  }

  /**
   * Appends a header block in a HEADERS frame, with CONTINUATION frames for what does not fit.
   *
   * @param stream The stream.
   * @param options The encoded block, whether it ends the stream, and the peer's largest frame.
   */
  headerBlock(
    stream: number,
    { block, endStream, maxFrame }: {
      block: Uint8Array;
      endStream: boolean;
      maxFrame: number;
    },
  ): void {
    const end = endStream ? Flag.END_STREAM : 0;
    let at = 0;
    do {
      // A view costs an object: most blocks fit one frame whole.
      const piece = at === 0 && block.length <= maxFrame
        ? block
        : block.subarray(at, at + maxFrame);
      const last = at + maxFrame >= block.length ? Flag.END_HEADERS : 0;
      this.header(at === 0 ? FrameType.HEADERS : FrameType.CONTINUATION, {
        length: piece.length,
        flags: (at === 0 ? end : 0) | last,
        stream,
      });
      this.bytes(piece);
      at += maxFrame;
    } while (at < block.length);
  }

  /**
   * Hands over every frame written so far and starts afresh.
   *
   * @returns The frames, in a buffer of their own.
   */
  take(): Uint8Array {
    const taken = this.#out.slice(0, this.#length);
    this.#length = 0;
    if (this.#out.length > 1 << 20) this.#out = new Uint8Array(16_384);
    return taken;
  }

  #reserve(more: number): void {
    if (this.#length + more <= this.#out.length) return;
    let size = this.#out.length * 2;
    while (size < this.#length + more) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.#out.subarray(0, this.#length));
    this.#out = bigger;
  }
}

/**
 * Reads a 31-bit stream identifier or window increment, network order, ignoring the reserved
 * bit.
 *
 * @param bytes The bytes.
 * @param at Where the integer starts.
 * @returns The integer.
 */
export function readUint31(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! & 0x7f) * 0x1000000) + (bytes[at + 1]! << 16) +
    (bytes[at + 2]! << 8) + bytes[at + 3]!;
}

/**
 * Reads a 32-bit unsigned integer, network order.
 *
 * @param bytes The bytes.
 * @param at Where the integer starts.
 * @returns The integer.
 */
export function readUint32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! * 0x1000000) + (bytes[at + 1]! << 16) +
    (bytes[at + 2]! << 8) + bytes[at + 3]!;
}
