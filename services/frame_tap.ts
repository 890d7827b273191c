/**
 * Reads the DATA frames of request streams from a server connection's socket bytes, before
 * nghttp2 sees them, for the streams whose readers ask for it.
 *
 * Deno's `node:http2` hands every inbound DATA frame to JavaScript on its own
 * (`on_data_chunk_recv_callback` in ext/node/ops/http2/session.rs): a V8 scope, an `"onread"`
 * property looked up by name, a zeroed `ArrayBuffer` with a copy of the frame, and a call into
 * JavaScript. grpc-go sends one frame per message, so a `Sum` of a million numbers paid that a
 * million times, and even a server that did nothing but add ran at about 0.8× grpc-go. The
 * connection's bytes already pass through JavaScript once per socket read (Deno feeds nghttp2
 * from the socket's `'data'` event), so a listener placed before Deno's can cut the same bytes
 * into frames and hand a tapped stream's DATA payloads to its reader straight from the read's
 * buffer; the reader then takes the stream handle's `onread` away, and Deno skips the
 * per-frame work (`onread` is not a function: no buffer, no call).
 *
 * nghttp2 still reads every byte: it keeps the flow-control windows, the stream states and the
 * protocol checks, and a peer that breaks them loses its stream or connection as before. The
 * tap only ever moves data that nghttp2 is about to take (or to refuse, when the stream or
 * connection dies in the same read). A stream is tapped from the start of a socket read, never
 * in the middle of one, so no frame is taken twice or lost: the frames before that read went
 * to `onread`. The tap lets a stream go before the read that carries its END_STREAM (or a
 * RST_STREAM) reaches nghttp2, so Deno's own end-of-stream path, which also goes through
 * `onread`, runs as usual.
 *
 * The same parser lets a {@linkcode ResetFilter} take a peer's RST_STREAM away from nghttp2:
 * the frame is rewritten in the read's buffer, before nghttp2 sees it, into a WINDOW_UPDATE of 1
 * on a stream that nghttp2 has already closed (which it ignores), and the filter ends the reset
 * stream itself (`honest_resets.ts` says which resets and why). Only a frame whose type byte is in the current read can be rewritten (the
 * bytes before it have gone to nghttp2); any other reaches nghttp2 as sent.
 *
 * Relies on Deno's `node:http2` feeding nghttp2 from `socket.on("data")` with the same
 * buffer the listeners before it see (the session's listener is the one this goes before) and
 * skipping a handle whose `onread` is not a function. `session_guard.ts` taps every session as it opens. Without a tap (another runtime,
 * a grpc-js server that hides its HTTP/2 servers) the reader takes frames from `onread` as
 * before.
 *
 * @module
 */
import type http2 from "node:http2";
import {
  fastPathsOn,
  missedFastPath,
  usedFastPath,
} from "../internals/fast_paths.ts";
import type { ServerProbe } from "./_testing.ts";

/** A stream's reader, as the tap sees it. */
export interface TappedStream {
  /**
   * Called at the start of a socket read, before nghttp2 sees it, while the stream is waiting
   * to be tapped.
   *
   * @returns Whether the tap takes the stream's DATA frames from this read on.
   */
  ready(): boolean;
  /** Part or all of a DATA frame's payload, padding removed; valid during the call only. */
  data(bytes: Uint8Array): void;
  /** The read about to reach nghttp2 ends the stream (END_STREAM or RST_STREAM): untapped. */
  released(): void;
}

/** Takes a peer's RST_STREAM frames away from nghttp2 when it chooses to. */
export interface ResetFilter {
  /**
   * Called when the header of a RST_STREAM frame has been read and can still be rewritten.
   *
   * @param streamId The stream the peer resets.
   * @returns 0 to leave the frame to nghttp2; to take it, a stream that nghttp2 has already
   * closed: nghttp2 then reads a WINDOW_UPDATE of 1 on that stream instead, which it ignores,
   * and {@linkcode ResetFilter.taken} ends the reset stream.
   */
  take(streamId: number): number;
  /**
   * A taken frame has been read whole; the read that carries its end reaches nghttp2 next.
   *
   * @param streamId The stream.
   * @param code The peer's error code.
   */
  taken(streamId: number, code: number): void;
}

/** How a session is tapped. */
export interface TapOptions {
  /**
   * Takes the peer's RST_STREAM frames that it chooses away from nghttp2.
   *
   * @default {undefined}
   */
  resets?: ResetFilter;
  /**
   * Counts the bytes the tap hands to readers, for tests.
   *
   * @default {undefined}
   */
  probe?: ServerProbe | undefined;
}

/** A session's tap. */
export interface FrameTap {
  /**
   * Asks for `streamId`'s DATA frames from the next socket read on.
   *
   * @param streamId The stream.
   * @param stream Its reader.
   * @returns A function that lets the stream go (it is let go by itself at its end).
   */
  add(streamId: number, stream: TappedStream): () => void;
}

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const FRAME_HEADER_BYTES = 9;
const DATA = 0;
const HEADERS = 1;
const RST_STREAM = 3;
const WINDOW_UPDATE = 8;
/** What a taken RST_STREAM's payload becomes: a window increment of 1. */
const TAKEN_PAYLOAD = [0, 0, 0, 1];
/** Where a frame's type byte is in its header. */
const TYPE_BYTE = 3;
/** Where a frame's stream id starts in its header. */
const STREAM_ID_BYTE = 5;
const FLAG_END_STREAM = 0x1;
const FLAG_PADDED = 0x8;

const taps = new WeakMap<object, FrameTap>();

/**
 * The tap of `session`, if {@linkcode tapSession} set one up.
 *
 * @param session A server session.
 * @returns Its tap, or `undefined`.
 */
export function tapOf(session: unknown): FrameTap | undefined {
  return typeof session === "object" && session !== null
    ? taps.get(session)
    : undefined;
}

// Where the parser is in the connection's byte stream.
const PREFACE_PART = 0;
const HEADER_PART = 1;
const PAD_LENGTH_PART = 2;
const PAYLOAD_PART = 3;
const PADDING_PART = 4;
/** The bytes made no sense: the tap stands aside (nghttp2 ends the connection). */
const BROKEN = 5;

/**
 * Sets up the tap of a server session, as soon as the session exists (before any of its
 * bytes reach nghttp2).
 *
 * @param session A new server session of Deno's `node:http2`.
 * @param options A filter for the peer's resets.
 * @returns Whether the session has a tap (its socket takes listeners).
 */
export function tapSession(
  session: http2.ServerHttp2Session,
  options: TapOptions = {},
): boolean {
  const { resets, probe } = options;
  // Deno's `node:http2` feeds nghttp2 from the socket's 'data' event: a listener put before
  // its own sees each read first.
  const socket = fastPathsOn()
    ? session.socket as
      & Partial<Pick<typeof session.socket, "prependListener">>
      & {
        readonly readableLength?: unknown;
      }
    : undefined;
  if (typeof socket?.prependListener !== "function") {
    missedFastPath("frame tap", "the session socket's prependListener");
    return false;
  }
  // Bytes already buffered would reach nghttp2 without the tap seeing them.
  if (socket.readableLength !== 0) return false;
  usedFastPath("frame tap");
  const waiting = new Map<number, TappedStream>();
  const tapped = new Map<number, TappedStream>();
  let part = PREFACE_PART;
  let prefaceSeen = 0;
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  let headerSeen = 0;
  let type = 0;
  let flags = 0;
  let streamId = 0;
  /** Payload bytes left in the frame, padding included. */
  let left = 0;
  let padding = 0;
  /** The stream the current DATA frame's payload goes to, if tapped. */
  let target: TappedStream | undefined;
  /** Whether the current frame is a RST_STREAM taken by the filter, being rewritten. */
  let taking = false;
  /** The taken frame's error code, as its payload is read. */
  let code = 0;

  function frameEnded(): void {
    if (
      streamId !== 0 &&
      ((flags & FLAG_END_STREAM && (type === DATA || type === HEADERS)) ||
        type === RST_STREAM)
    ) {
      waiting.delete(streamId);
      const stream = tapped.get(streamId);
      if (stream !== undefined) {
        tapped.delete(streamId);
        stream.released();
      }
    }
    target = undefined;
    part = HEADER_PART;
    headerSeen = 0;
    if (taking) {
      taking = false;
      resets!.taken(streamId, code >>> 0);
    }
  }

  function read(bytes: Uint8Array): void {
    for (const [id, stream] of waiting) {
      if (stream.ready()) {
        waiting.delete(id);
        tapped.set(id, stream);
      }
    }
    let offset = 0;
    const end = bytes.length;
    while (offset < end) {
      switch (part) {
        case PREFACE_PART: {
          while (offset < end && prefaceSeen < PREFACE.length) {
            if (bytes[offset++] !== PREFACE[prefaceSeen++]) {
              standAside();
              return;
            }
          }
          if (prefaceSeen === PREFACE.length) part = HEADER_PART;
          break;
        }
        case HEADER_PART: {
          const seenBefore = headerSeen;
          while (offset < end && headerSeen < FRAME_HEADER_BYTES) {
            header[headerSeen++] = bytes[offset++]!;
          }
          if (headerSeen < FRAME_HEADER_BYTES) break;
          left = (header[0]! << 16) | (header[1]! << 8) | header[2]!;
          type = header[3]!;
          flags = header[4]!;
          streamId = ((header[5]! & 0x7f) << 24) | (header[6]! << 16) |
            (header[7]! << 8) | header[8]!;
          target = type === DATA ? tapped.get(streamId) : undefined;
          padding = 0;
          if (
            type === RST_STREAM && left === TAKEN_PAYLOAD.length &&
            streamId !== 0 && resets !== undefined && seenBefore <= TYPE_BYTE
          ) {
            const into = resets.take(streamId);
            if (into !== 0) {
              // The header's last byte is at offset - 1, so its type byte and stream id are in
              // this read. The update names a closed stream: on the reset one, still open in
              // nghttp2 until the server's own reset goes out, it could overflow a window the
              // peer keeps at its largest, a connection error.
              const start = offset - FRAME_HEADER_BYTES;
              bytes[start + TYPE_BYTE] = WINDOW_UPDATE;
              bytes[start + STREAM_ID_BYTE] = (into >>> 24) & 0x7f;
              bytes[start + STREAM_ID_BYTE + 1] = (into >>> 16) & 0xff;
              bytes[start + STREAM_ID_BYTE + 2] = (into >>> 8) & 0xff;
              bytes[start + STREAM_ID_BYTE + 3] = into & 0xff;
              taking = true;
              code = 0;
            }
          }
          if (type === DATA && flags & FLAG_PADDED) {
            if (left === 0) {
              standAside();
              return;
            }
            part = PAD_LENGTH_PART;
          } else if (left === 0) frameEnded();
          else part = PAYLOAD_PART;
          break;
        }
        case PAD_LENGTH_PART: {
          padding = bytes[offset++]!;
          left -= 1;
          if (padding > left) {
            standAside();
            return;
          }
          if (left === 0) frameEnded();
          else part = left === padding ? PADDING_PART : PAYLOAD_PART;
          break;
        }
        case PAYLOAD_PART: {
          const take = Math.min(left - padding, end - offset);
          if (target !== undefined) {
            probe?.tapped(take);
            target.data(bytes.subarray(offset, offset + take));
          } else if (taking) {
            for (let i = offset; i < offset + take; i++) {
              code = code * 256 + bytes[i]!;
              bytes[i] =
                TAKEN_PAYLOAD[TAKEN_PAYLOAD.length - left + i - offset]!;
            }
          }
          offset += take;
          left -= take;
          if (left === 0) frameEnded();
          else if (left === padding) part = PADDING_PART;
          break;
        }
        case PADDING_PART: {
          const take = Math.min(left, end - offset);
          offset += take;
          left -= take;
          if (left === 0) frameEnded();
          break;
        }
        case BROKEN:
          return;
      }
    }
  }

  /** Lets every stream go: nghttp2 ends a connection whose bytes break HTTP/2. */
  function standAside(): void {
    part = BROKEN;
    waiting.clear();
    for (const stream of tapped.values()) stream.released();
    tapped.clear();
  }

  socket.prependListener("data", read);
  taps.set(session, {
    add(id: number, stream: TappedStream): () => void {
      if (part === BROKEN) return () => {};
      waiting.set(id, stream);
      return () => {
        waiting.delete(id);
        tapped.delete(id);
      };
    },
  });
  return true;
}
