/**
 * What a client connection lets the server send (RFC 9113 §6.9): each stream 1 MiB, the
 * connection 16 MiB. The connection's window is granted back as DATA arrives, since each
 * stream's window already bounds what a stream holds; a stream's is granted back as its
 * reader takes the data, in WINDOW_UPDATEs of half a window, so a reader that stops holds the
 * server.
 *
 * @module
 */
import type { FrameWriter } from "../../proto/http2/frames.ts";
import type { ClientStream } from "./client_stream.ts";

/** What each stream lets the server send before a WINDOW_UPDATE: our INITIAL_WINDOW_SIZE. */
export const STREAM_WINDOW = 1 << 20;
/** What the whole connection lets the server send before a WINDOW_UPDATE. */
export const CONNECTION_WINDOW = 16 << 20;

/**
 * One connection's receive windows.
 *
 * @example
 * ```ts ignore
 * const windows = new ReceiveWindows(output.writer);
 * if (windows.received(frame.flowLength) === "exceeded") fail();
 * ```
 */
export class ReceiveWindows {
  readonly #writer: FrameWriter;
  #connection = CONNECTION_WINDOW;
  #receivedSinceUpdate = 0;
  /** What the reader took of each stream since its last WINDOW_UPDATE. */
  readonly #unacknowledged = new WeakMap<ClientStream, number>();

  /** @param writer Where the WINDOW_UPDATEs go; the caller schedules the write. */
  constructor(writer: FrameWriter) {
    this.#writer = writer;
  }

  /**
   * Counts DATA against the connection's window, granting it back once half is used.
   *
   * @param flowLength The frame's payload, padding included.
   * @returns `"exceeded"` when the server sent past the window, `"granted"` when a
   * WINDOW_UPDATE was framed.
   */
  received(flowLength: number): "exceeded" | "granted" | undefined {
    this.#connection -= flowLength;
    if (this.#connection < 0) return "exceeded";
    this.#receivedSinceUpdate += flowLength;
    if (this.#receivedSinceUpdate < CONNECTION_WINDOW / 2) return undefined;
    this.#writer.windowUpdate(0, this.#receivedSinceUpdate);
    this.#connection += this.#receivedSinceUpdate;
    this.#receivedSinceUpdate = 0;
    return "granted";
  }

  /**
   * Grows `stream`'s window once its reader has taken half of it.
   *
   * @param stream An open stream.
   * @param bytes What the reader took.
   * @returns Whether a WINDOW_UPDATE was framed.
   */
  consumed(stream: ClientStream & { id: number }, bytes: number): boolean {
    const taken = (this.#unacknowledged.get(stream) ?? 0) + bytes;
    if (taken < STREAM_WINDOW / 2) {
      this.#unacknowledged.set(stream, taken);
      return false;
    }
    this.#unacknowledged.set(stream, 0);
    stream.receiveWindow += taken;
    this.#writer.windowUpdate(stream.id, taken);
    return true;
  }
}
