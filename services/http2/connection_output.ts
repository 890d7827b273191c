/**
 * What a server connection sends, and when: frames laid out in one buffer and written to the
 * socket once a turn of the event loop (`proto/http2/turn_writes.ts`); each stream's queued
 * DATA framed as the peer's windows (the stream's and the connection's) allow, in order of
 * arrival among the streams waiting; and no more framed while the socket's queue is full or
 * 256 KiB wait unwritten, so a peer that reads nothing holds a bounded amount. A write's
 * callback runs once its bytes are framed, which is what makes a writer wait for a slow peer.
 *
 * @module
 */
import process from "node:process";
import type net from "node:net";
import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FrameType,
  MAX_WINDOW,
  Setting,
} from "../../proto/http2/frames.ts";
import type { Field } from "./header_fields.ts";
import {
  encodeFrozenHeaderBlock,
  encodeHeaderBlockInto,
} from "../../proto/http2/hpack_encoder.ts";
import type { ServerStream } from "./server_stream.ts";
import { TurnWrites } from "../../proto/http2/turn_writes.ts";

/** Bytes framed and not yet written past which streams wait for the next write. */
const MAX_UNWRITTEN = 256 * 1024;

/**
 * The sending half of a connection.
 *
 * @example
 * ```ts ignore
 * const output = new ConnectionOutput(socket, { written() {} });
 * output.writer.windowUpdate(0, 1 << 20);
 * output.schedule();
 * ```
 */
export class ConnectionOutput extends TurnWrites {
  /** What the peer's SETTINGS_INITIAL_WINDOW_SIZE gives each new stream. */
  peerInitialWindow: number = DEFAULT_WINDOW;
  /** The peer's SETTINGS_MAX_FRAME_SIZE. */
  peerMaxFrame: number = DEFAULT_MAX_FRAME_SIZE;
  readonly #written: () => void;
  #sendWindow = DEFAULT_WINDOW;
  /** Streams with bytes queued and no connection window (or socket) to send them. */
  #waiting = new Set<ServerStream>();
  /** Where header blocks are encoded, grown when one does not fit. */
  #blockBuffer = new Uint8Array(4_096);
  #doneCallbacks: ((error?: Error | null) => void)[] = [];

  /**
   * @param socket The connection's socket.
   * @param events `written` runs after each write: the connection may end the socket then.
   */
  constructor(socket: net.Socket, events: { written(): void }) {
    super(socket);
    this.#written = events.written;
  }

  /** Tells the connection, which may end the socket now, then frames what waited. */
  protected override afterWrite(): void {
    this.#written();
    if (!this.socketBlocked && this.#waiting.size > 0) this.#pumpWaiting();
  }

  /** Frames what waited for the socket. */
  protected override drained(): void {
    this.#pumpWaiting();
  }

  /**
   * Grows the connection's send window (a WINDOW_UPDATE on stream 0), and sends what waited.
   *
   * @param increment What it grows by.
   * @returns `false` when the window would pass 2^31-1.
   */
  growWindow(increment: number): boolean {
    this.#sendWindow += increment;
    if (this.#sendWindow > MAX_WINDOW) return false;
    this.#pumpWaiting();
    return true;
  }

  /**
   * Takes one of the peer's settings, as far as sending goes.
   *
   * @param setting The setting.
   * @param options Its value, and the open streams (whose windows an initial window moves).
   * @returns Why the connection must end, if the value is not allowed.
   */
  takeSetting(
    setting: number,
    { value, streams }: { value: number; streams: Iterable<ServerStream> },
  ): { code: number; reason: string } | undefined {
    switch (setting) {
      case Setting.ENABLE_PUSH:
        return value > 1
          ? { code: ErrorCode.PROTOCOL_ERROR, reason: "ENABLE_PUSH" }
          : undefined;
      case Setting.INITIAL_WINDOW_SIZE: {
        if (value > MAX_WINDOW) {
          return { code: ErrorCode.FLOW_CONTROL_ERROR, reason: "Window" };
        }
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of streams) {
          stream.sendWindow += delta;
          if (stream.sendWindow > MAX_WINDOW) {
            return { code: ErrorCode.FLOW_CONTROL_ERROR, reason: "Window" };
          }
        }
        return undefined;
      }
      case Setting.MAX_FRAME_SIZE:
        if (value < DEFAULT_MAX_FRAME_SIZE || value > 16_777_215) {
          return { code: ErrorCode.PROTOCOL_ERROR, reason: "MAX_FRAME_SIZE" };
        }
        this.peerMaxFrame = value;
        return undefined;
      default:
        // HEADER_TABLE_SIZE: the encoder never indexes. The others bind clients only.
        return undefined;
    }
  }

  /** Forgets a stream that closed. */
  forget(stream: ServerStream): void {
    this.#waiting.delete(stream);
  }

  /** Forgets every stream: the connection is over. */
  clear(): void {
    this.#waiting.clear();
  }

  /**
   * Frames a header block (response headers or trailers).
   *
   * @param stream The stream.
   * @param options The fields, and whether they end the stream.
   */
  sendHeaders(
    stream: ServerStream,
    { fields, endStream }: { fields: readonly Field[]; endStream: boolean },
  ): void {
    this.writer.headerBlock(stream.id, {
      block: this.#encode(fields),
      endStream,
      maxFrame: this.peerMaxFrame,
    });
    this.schedule();
  }

  #encode(fields: readonly Field[]): Uint8Array {
    if (Object.isFrozen(fields)) return encodeFrozenHeaderBlock(fields);
    for (;;) {
      try {
        const length = encodeHeaderBlockInto(fields, this.#blockBuffer);
        return this.#blockBuffer.subarray(0, length);
      } catch (error) {
        if (!(error instanceof RangeError) || !/not fit/.test(error.message)) {
          throw error;
        }
        this.#blockBuffer = new Uint8Array(this.#blockBuffer.length * 4);
      }
    }
  }

  /**
   * Frames an empty DATA frame with END_STREAM.
   *
   * @param stream The stream.
   */
  sendEnd(stream: ServerStream): void {
    this.writer.header(FrameType.DATA, {
      length: 0,
      flags: Flag.END_STREAM,
      stream: stream.id,
    });
    this.schedule();
  }

  /**
   * Frames what `stream` has queued, as far as the windows and the socket allow; the rest
   * waits for a WINDOW_UPDATE or the socket.
   *
   * @param stream The stream.
   */
  pump(stream: ServerStream): void {
    const queue = stream.queue;
    if (this.socketBlocked || this.writer.length >= MAX_UNWRITTEN) {
      if (queue.length > 0) this.#waiting.add(stream);
      // Nothing waits for a window: an end that `end()` asked for goes now, or never would.
      else stream.drained();
      return;
    }
    let framed = false;
    while (queue.length > 0) {
      const allowed = Math.min(
        stream.sendWindow,
        this.#sendWindow,
        this.peerMaxFrame,
      );
      if (allowed <= 0 || this.writer.length >= MAX_UNWRITTEN) {
        // A stream's own window reopens with its WINDOW_UPDATE, which pumps it.
        if (this.#sendWindow <= 0 || allowed > 0) this.#waiting.add(stream);
        break;
      }
      const write = queue[0]!;
      const length = Math.min(allowed, write.bytes.length);
      this.writer.header(FrameType.DATA, { length, stream: stream.id });
      this.writer.bytes(
        length === write.bytes.length
          ? write.bytes
          : write.bytes.subarray(0, length),
      );
      framed = true;
      stream.sendWindow -= length;
      this.#sendWindow -= length;
      stream.queued -= length;
      if (length === write.bytes.length) {
        queue.shift();
        if (write.done !== undefined) this.#completed(write.done);
      } else {
        write.bytes = write.bytes.subarray(length);
      }
    }
    if (framed) this.schedule();
    if (queue.length === 0) stream.drained();
  }

  #pumpWaiting(): void {
    for (const stream of [...this.#waiting]) {
      if (
        this.#sendWindow <= 0 || this.socketBlocked ||
        this.writer.length >= MAX_UNWRITTEN
      ) {
        return;
      }
      this.#waiting.delete(stream);
      if (!stream.closed) this.pump(stream);
    }
    // A new `Set` each time it empties: its table never reaches V8's old generation, where
    // each rehash would leave a table that keeps every stream it held alive past the young
    // collections (see `proto/http2/stream_map.ts`).
    if (this.#waiting.size === 0) this.#waiting = new Set();
  }

  #completed(done: (error?: Error | null) => void): void {
    if (this.#doneCallbacks.length === 0) {
      process.nextTick(() => {
        const callbacks = this.#doneCallbacks;
        this.#doneCallbacks = [];
        for (const callback of callbacks) callback();
      });
    }
    this.#doneCallbacks.push(done);
  }
}
