/**
 * The server side of one cleartext HTTP/2 connection (prior knowledge), framed by hand for
 * the raw HTTP/2 floor server (`tests/bench/raw_h2_floor_server.ts`): bytes from the socket go
 * in, bytes for the socket come out, and each finished request stream is answered with a
 * gRPC reply, whole, in the same output.
 *
 * It handles the preface, SETTINGS (ours, and the ACK of the peer's), PING, HEADERS and
 * CONTINUATION (PADDED and PRIORITY flags too) through one HPACK decoder, DATA (PADDED too),
 * RST_STREAM and GOAWAY, and keeps the client's send windows open: our SETTINGS give each
 * stream a 1 GiB window, the connection's is raised to 1 GiB at once, and both are topped up
 * with WINDOW_UPDATE once half is used. It ignores the peer's windows for what it sends: the
 * short calls' replies are far below a client's first 64 KiB, and a reply past the window
 * (a 200,000-power `Pow`) breaks the connection. It checks none of what RFC 9113 asks a server to
 * refuse: a measuring device for well-behaved clients, not a server.
 *
 * @module
 */
import {
  type HeaderField,
  HpackDecoder,
} from "../../../proto/http2/hpack_decoder.ts";

/**
 * Answers one call: its `:path` and its request body (gRPC envelopes, joined) in, its reply
 * messages (without envelopes) out.
 */
export type Answer = (path: string, body: Uint8Array) => Uint8Array[];

const PREFACE_LENGTH = 24;
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const PROTOCOL_ERROR = 0x1;
const COMPRESSION_ERROR = 0x9;
/** What every peer accepts as a frame's payload, whatever its SETTINGS_MAX_FRAME_SIZE. */
const MAX_FRAME_SIZE = 16384;
const WINDOW = 2 ** 30;

// SETTINGS: MAX_CONCURRENT_STREAMS 1000, INITIAL_WINDOW_SIZE 2^30; then the connection's
// window raised from 65,535 to 2^30.
const OPENING = Uint8Array.of(
  ...[0, 0, 12, SETTINGS, 0, 0, 0, 0, 0],
  ...[0, 3, 0, 0, 0x03, 0xe8],
  ...[0, 4, 0x40, 0, 0, 0],
  ...[0, 0, 4, WINDOW_UPDATE, 0, 0, 0, 0, 0],
  ...[0x3f, 0xff, 0, 0x01],
);

const ASCII = new TextEncoder();
// :status 200 (static index 8), then content-type (static name 31) as a literal without
// indexing: nothing enters the peer's dynamic table, so the block is the same for every call.
const RESPONSE_BLOCK = Uint8Array.of(
  0x88,
  0x0f,
  0x10,
  16,
  ...ASCII.encode("application/grpc"),
);
// grpc-status: 0 as a literal without indexing, with a new name.
const TRAILERS_BLOCK = Uint8Array.of(
  0x00,
  11,
  ...ASCII.encode("grpc-status"),
  1,
  ...ASCII.encode("0"),
);

/** A request stream between its HEADERS and its END_STREAM. */
interface Stream {
  path: string;
  /** The DATA payloads so far, padding removed. */
  pieces: Uint8Array[];
  /** Octets of DATA since the stream's window was last topped up. */
  unacknowledged: number;
}

/** A header block whose CONTINUATIONs are still to come. */
interface OpenBlock {
  stream: number;
  endStream: boolean;
  pieces: Uint8Array[];
}

/**
 * Where the connection is: before the client's preface, between frames (with a header
 * block open, perhaps), or done after a GOAWAY either way.
 */
type State =
  | { kind: "preface" }
  | { kind: "frames"; block: OpenBlock | null }
  | { kind: "closed" };

function concat(pieces: readonly Uint8Array[]): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  let length = 0;
  for (const piece of pieces) length += piece.length;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const piece of pieces) {
    joined.set(piece, offset);
    offset += piece.length;
  }
  return joined;
}

/**
 * One connection's HTTP/2 framing, fed what the socket reads.
 *
 * @example
 * ```ts
 * import { H2Connection } from "./connection.ts";
 *
 * const connection = new H2Connection(() => []);
 * const opening = connection.opening();
 * const reply = connection.feed(new Uint8Array(0));
 * ```
 */
export class H2Connection {
  #answer: Answer;
  #state: State = { kind: "preface" };
  #decoder = new HpackDecoder();
  #streams = new Map<number, Stream>();
  #lastStream = 0;
  /** Bytes not yet consumed: a partial frame, or a partial preface. */
  #rest: Uint8Array | null = null;
  #unacknowledged = 0;
  #out = new Uint8Array(16384);
  #outLength = 0;
  /** The header fields of the frame being handled. */
  #type = 0;
  #flags = 0;
  #stream = 0;

  /**
   * A connection that answers each call with `answer`.
   *
   * @param answer Gives a call's reply messages.
   */
  constructor(answer: Answer) {
    this.#answer = answer;
  }

  /** Whether the connection is over: the socket should be ended once the last output is sent. */
  get closed(): boolean {
    return this.#state.kind === "closed";
  }

  /**
   * What to send as soon as the connection opens: our SETTINGS and the connection's window.
   *
   * @returns The bytes.
   */
  opening(): Uint8Array {
    return OPENING;
  }

  /**
   * Consumes what the socket read.
   *
   * @param chunk The bytes read.
   * @returns What to write in reply, in one buffer, or null when nothing is due.
   */
  feed(chunk: Uint8Array): Uint8Array | null {
    let bytes = chunk;
    if (this.#rest !== null) {
      bytes = concat([this.#rest, chunk]);
      this.#rest = null;
    }
    this.#outLength = 0;
    let offset = 0;
    if (this.#state.kind === "preface") {
      if (bytes.length < PREFACE_LENGTH) {
        this.#rest = bytes.slice();
        return null;
      }
      offset = PREFACE_LENGTH;
      this.#state = { kind: "frames", block: null };
    }
    while (bytes.length - offset >= 9 && this.#state.kind === "frames") {
      const length = (bytes[offset]! << 16) | (bytes[offset + 1]! << 8) |
        bytes[offset + 2]!;
      if (bytes.length - offset - 9 < length) break;
      this.#type = bytes[offset + 3]!;
      this.#flags = bytes[offset + 4]!;
      this.#stream = ((bytes[offset + 5]! & 0x7f) << 24) |
        (bytes[offset + 6]! << 16) | (bytes[offset + 7]! << 8) |
        bytes[offset + 8]!;
      this.#frame(bytes.subarray(offset + 9, offset + 9 + length));
      offset += 9 + length;
    }
    if (offset < bytes.length && this.#state.kind === "frames") {
      // Stream pieces may point into `bytes`, so the rest is copied, never the whole.
      this.#rest = bytes.slice(offset);
    }
    if (this.#unacknowledged >= WINDOW / 2) {
      this.#windowUpdate(0, this.#unacknowledged);
      this.#unacknowledged = 0;
    }
    return this.#outLength === 0 ? null : this.#out.slice(0, this.#outLength);
  }

  /** Handles one frame, whose header fields are in `#type`, `#flags` and `#stream`. */
  #frame(payload: Uint8Array): void {
    const type = this.#type;
    const flags = this.#flags;
    const stream = this.#stream;
    const state = this.#state;
    if (state.kind !== "frames") return;
    if (state.block !== null) {
      if (type !== CONTINUATION || stream !== state.block.stream) {
        this.#goAway(PROTOCOL_ERROR);
        return;
      }
      state.block.pieces.push(payload);
      if (flags & END_HEADERS) {
        const block = state.block;
        state.block = null;
        this.#headerBlock(block);
      }
      return;
    }
    switch (type) {
      case DATA:
        this.#data(payload);
        break;
      case HEADERS: {
        let start = 0;
        let end = payload.length;
        if (flags & PADDED) {
          end -= payload[0]!;
          start = 1;
        }
        if (flags & PRIORITY) start += 5;
        const block: OpenBlock = {
          stream,
          endStream: (flags & END_STREAM) !== 0,
          pieces: [payload.subarray(start, end)],
        };
        if (flags & END_HEADERS) this.#headerBlock(block);
        else state.block = block;
        break;
      }
      case RST_STREAM:
        this.#streams.delete(stream);
        break;
      case SETTINGS:
        if (!(flags & ACK)) this.#frameHeader(0, SETTINGS, ACK);
        break;
      case PING:
        if (!(flags & ACK)) {
          this.#frameHeader(8, PING, ACK);
          this.#out.set(payload, this.#outLength);
          this.#outLength += 8;
        }
        break;
      case GOAWAY:
        this.#state = { kind: "closed" };
        break;
      default:
        // PRIORITY, WINDOW_UPDATE (our sends ignore the peer's windows), unknown types.
        break;
    }
  }

  #data(payload: Uint8Array): void {
    const stream = this.#stream;
    const flags = this.#flags;
    // Flow control counts the whole payload, padding included.
    this.#unacknowledged += payload.length;
    const open = this.#streams.get(stream);
    if (open === undefined) return;
    let start = 0;
    let end = payload.length;
    if (flags & PADDED) {
      end -= payload[0]!;
      start = 1;
    }
    if (end > start) open.pieces.push(payload.subarray(start, end));
    if (flags & END_STREAM) {
      this.#finish(stream, open);
      return;
    }
    open.unacknowledged += payload.length;
    if (open.unacknowledged >= WINDOW / 2) {
      this.#windowUpdate(stream, open.unacknowledged);
      open.unacknowledged = 0;
    }
  }

  #headerBlock(block: OpenBlock): void {
    let headers: readonly HeaderField[];
    try {
      const decoded = this.#decoder.decode(concat(block.pieces));
      // The load clients' lists are far below the decoder's limit; a list past it is
      // answered as one without a path.
      headers = decoded.oversized ? [] : decoded.fields;
    } catch {
      this.#goAway(COMPRESSION_ERROR);
      return;
    }
    let open = this.#streams.get(block.stream);
    if (open === undefined) {
      // A new stream; a block on a known one is the request's trailers.
      let path = "";
      for (const [name, value] of headers) {
        if (name === ":path") path = value;
      }
      open = { path, pieces: [], unacknowledged: 0 };
      this.#streams.set(block.stream, open);
      this.#lastStream = block.stream;
    }
    if (block.endStream) this.#finish(block.stream, open);
  }

  /** Answers a request stream the client has half-closed, and forgets it. */
  #finish(id: number, stream: Stream): void {
    this.#streams.delete(id);
    const body = stream.pieces.length === 0
      ? new Uint8Array(0)
      : concat(stream.pieces);
    const replies = this.#answer(stream.path, body);
    let size = 0;
    for (const reply of replies) size += 5 + reply.length;
    const frames = Math.ceil(size / MAX_FRAME_SIZE);
    this.#reserve(
      2 * 9 + RESPONSE_BLOCK.length + TRAILERS_BLOCK.length + 9 * frames + size,
    );
    this.#frameHeader(RESPONSE_BLOCK.length, HEADERS, END_HEADERS, id);
    this.#out.set(RESPONSE_BLOCK, this.#outLength);
    this.#outLength += RESPONSE_BLOCK.length;
    if (size > 0) this.#dataFrames(id, replies);
    this.#frameHeader(
      TRAILERS_BLOCK.length,
      HEADERS,
      END_HEADERS | END_STREAM,
      id,
    );
    this.#out.set(TRAILERS_BLOCK, this.#outLength);
    this.#outLength += TRAILERS_BLOCK.length;
  }

  /** The replies in gRPC envelopes, in DATA frames of at most 16 KiB; room is reserved. */
  #dataFrames(id: number, replies: readonly Uint8Array[]): void {
    let size = 0;
    for (const reply of replies) size += 5 + reply.length;
    // Envelopes go in place after one frame header; a longer body is split up after.
    const single = size <= MAX_FRAME_SIZE;
    let envelopes = new Uint8Array(size);
    let offset = 0;
    if (single) {
      this.#frameHeader(size, DATA, 0, id);
      envelopes = this.#out;
      offset = this.#outLength;
    }
    for (const reply of replies) {
      envelopes[offset] = 0;
      envelopes[offset + 1] = reply.length >>> 24;
      envelopes[offset + 2] = (reply.length >>> 16) & 0xff;
      envelopes[offset + 3] = (reply.length >>> 8) & 0xff;
      envelopes[offset + 4] = reply.length & 0xff;
      envelopes.set(reply, offset + 5);
      offset += 5 + reply.length;
    }
    if (single) {
      this.#outLength = offset;
      return;
    }
    for (let start = 0; start < size; start += MAX_FRAME_SIZE) {
      const piece = envelopes.subarray(start, start + MAX_FRAME_SIZE);
      this.#frameHeader(piece.length, DATA, 0, id);
      this.#out.set(piece, this.#outLength);
      this.#outLength += piece.length;
    }
  }

  #windowUpdate(stream: number, increment: number): void {
    this.#frameHeader(4, WINDOW_UPDATE, 0, stream);
    this.#writeUint32(increment);
  }

  /** Says goodbye with `code` after the last stream we saw, and closes. */
  #goAway(code: number): void {
    this.#frameHeader(8, GOAWAY);
    this.#writeUint32(this.#lastStream);
    this.#writeUint32(code);
    this.#state = { kind: "closed" };
  }

  #writeUint32(value: number): void {
    const out = this.#out;
    const at = this.#outLength;
    out[at] = value >>> 24;
    out[at + 1] = (value >>> 16) & 0xff;
    out[at + 2] = (value >>> 8) & 0xff;
    out[at + 3] = value & 0xff;
    this.#outLength = at + 4;
  }

  /** Writes a frame header, making room for it and for at least 16 more bytes. */
  #frameHeader(length: number, type: number, flags = 0, id = 0): void {
    this.#reserve(9 + 16);
    const out = this.#out;
    const at = this.#outLength;
    out[at] = length >>> 16;
    out[at + 1] = (length >>> 8) & 0xff;
    out[at + 2] = length & 0xff;
    out[at + 3] = type;
    out[at + 4] = flags;
    out[at + 5] = (id >>> 24) & 0x7f;
    out[at + 6] = (id >>> 16) & 0xff;
    out[at + 7] = (id >>> 8) & 0xff;
    out[at + 8] = id & 0xff;
    this.#outLength = at + 9;
  }

  /** Grows the output buffer so `more` bytes fit after what it holds. */
  #reserve(more: number): void {
    if (this.#outLength + more <= this.#out.length) return;
    let size = this.#out.length * 2;
    while (size < this.#outLength + more) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.#out.subarray(0, this.#outLength));
    this.#out = bigger;
  }
}
