/**
 * What a client connection sends, and when: frames laid out in one buffer
 * (`proto/http2/frames.ts`) and written to the socket once a turn of the event loop; each
 * stream's queued request bytes framed as DATA as the server's windows (the stream's and the
 * connection's) allow, END_STREAM on the last of them; nothing more framed while the socket's
 * queue is full, so a server that reads nothing holds a bounded amount.
 *
 * @module
 */
import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  Flag,
  FrameType,
  MAX_WINDOW,
  PREFACE,
  Setting,
} from "../../proto/http2/frames.ts";
import { TurnWrites } from "../../proto/http2/turn_writes.ts";
import type { ClientStream } from "./client_stream.ts";

/**
 * The sending half of a client connection.
 *
 * @example
 * ```ts ignore
 * const output = new ClientOutput(socket);
 * output.writer.windowUpdate(0, 1 << 20);
 * output.schedule();
 * ```
 */
export class ClientOutput extends TurnWrites {
  /** The server's SETTINGS_MAX_FRAME_SIZE. */
  peerMaxFrame: number = DEFAULT_MAX_FRAME_SIZE;
  #sendWindow = DEFAULT_WINDOW;
  /**
   * Streams with request bytes (or their end) queued and not yet framed. A new `Set` replaces
   * it each time it empties, so that its table does not live long enough to reach V8's old
   * generation, where each rehash would leave a table that keeps every stream it held alive
   * past the young collections (see `proto/http2/stream_map.ts`).
   */
  #sending = new Set<ClientStream>();

  /** Frames each stream's queued bytes first, unless the server is not reading. */
  protected override beforeWrite(): void {
    if (!this.socketBlocked) this.#frameQueued();
  }

  /** Frames what waited for the socket. */
  protected override drained(): void {
    this.schedule();
  }

  /**
   * Frames what opens the connection: the preface, our SETTINGS, and the connection window's
   * first WINDOW_UPDATE.
   *
   * @param settings The windows the server may fill, and the largest header list taken.
   */
  greet(
    settings: {
      streamWindow: number;
      connectionWindow: number;
      maxHeaderList: number;
    },
  ): void {
    this.writer.bytes(PREFACE);
    this.writer.settings([
      [Setting.ENABLE_PUSH, 0],
      [Setting.INITIAL_WINDOW_SIZE, settings.streamWindow],
      [Setting.MAX_HEADER_LIST_SIZE, settings.maxHeaderList],
    ]);
    this.writer.windowUpdate(0, settings.connectionWindow - DEFAULT_WINDOW);
    this.schedule();
  }

  /**
   * Grows the connection's send window (a WINDOW_UPDATE on stream 0).
   *
   * @param increment What it grows by.
   * @returns `false` when the window would pass 2^31-1.
   */
  growWindow(increment: number): boolean {
    this.#sendWindow += increment;
    if (this.#sendWindow > MAX_WINDOW) return false;
    if (this.#sending.size > 0) this.schedule();
    return true;
  }

  /**
   * Frames what `stream` has queued at the end of this turn, as far as the windows allow.
   *
   * @param stream An open stream.
   */
  send(stream: ClientStream): void {
    if (stream.outbox.length === 0 && (!stream.endQueued || stream.endSent)) {
      return;
    }
    this.#sending.add(stream);
    this.schedule();
  }

  /** Forgets a stream that closed: what it queued is never framed. */
  forget(stream: ClientStream): void {
    this.#sending.delete(stream);
  }

  /** Forgets every stream: the connection is over. */
  clear(): void {
    this.#sending.clear();
  }

  /** Frames each sending stream's queued bytes, in order, as the windows allow. */
  #frameQueued(): void {
    const writer = this.writer;
    for (const stream of this.#sending) {
      const id = stream.id!;
      const outbox = stream.outbox;
      while (
        outbox.length > 0 && this.#sendWindow > 0 && stream.sendWindow > 0
      ) {
        const chunk = outbox[0]!;
        const length = Math.min(
          chunk.length,
          this.#sendWindow,
          stream.sendWindow,
          this.peerMaxFrame,
        );
        const whole = length === chunk.length;
        const last = whole && outbox.length === 1 && stream.endQueued;
        writer.header(FrameType.DATA, {
          length,
          flags: last ? Flag.END_STREAM : 0,
          stream: id,
        });
        writer.bytes(whole ? chunk : chunk.subarray(0, length));
        if (whole) outbox.shift();
        else outbox[0] = chunk.subarray(length);
        stream.outboxBytes -= length;
        stream.sendWindow -= length;
        this.#sendWindow -= length;
        if (last) stream.endSent = true;
      }
      if (outbox.length === 0) {
        if (stream.endQueued && !stream.endSent) {
          writer.header(FrameType.DATA, {
            length: 0,
            flags: Flag.END_STREAM,
            stream: id,
          });
          stream.endSent = true;
        }
        this.#sending.delete(stream);
      }
      // A writer waiting for room may queue more now, which this loop then frames too.
      stream.framed();
    }
    if (this.#sending.size === 0) this.#sending = new Set();
  }
}
