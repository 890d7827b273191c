/**
 * The socket writes of one own HTTP/2 connection, on either side: frames are laid out in one
 * {@linkcode FrameWriter} and written to the socket once a turn of the event loop, so that
 * what a connection sends in one turn leaves in one write; and whether the socket's queue is
 * full, which is the peer not reading.
 *
 * @module
 */
import type net from "node:net";
import { setImmediate } from "node:timers";
import { FrameWriter } from "./frames.ts";

/**
 * One connection's writes; each side's output extends it with what it does around a write.
 *
 * @example
 * ```ts ignore
 * const writes = new TurnWrites(socket);
 * writes.writer.windowUpdate(0, 1 << 20);
 * writes.schedule();
 * ```
 */
export class TurnWrites {
  /** Where frames are laid out until the next write. */
  readonly writer: FrameWriter = new FrameWriter();
  readonly #socket: net.Socket;
  #scheduled = false;
  #socketBlocked = false;

  /** @param socket The connection's socket. */
  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("drain", () => {
      this.#socketBlocked = false;
      this.drained();
    });
  }

  /** Whether the socket's queue is full: the peer is not reading. */
  get socketBlocked(): boolean {
    return this.#socketBlocked;
  }

  /** Writes what is framed at the end of this turn of the event loop. */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Writes what is framed now. */
  flush(): void {
    this.#scheduled = false;
    const socket = this.#socket;
    if (socket.destroyed) return;
    this.beforeWrite();
    if (this.writer.length > 0 && !socket.write(this.writer.take())) {
      this.#socketBlocked = true;
    }
    this.afterWrite();
  }

  /** Before each write: frames what may go now. */
  protected beforeWrite(): void {}

  /** After each write: the connection may end the socket, or frame what waited. */
  protected afterWrite(): void {}

  /** The socket's queue has drained: what waited for it may go. */
  protected drained(): void {}
}
