/**
 * Write batching for the default transport, at both ends of a call's requests: the frames a
 * call writes in one turn go to its stream as one write ({@linkcode FrameBatch}), and what
 * the HTTP/2 session writes to its socket in one turn goes out as one `writev`
 * ({@linkcode coalesceWrites}). The pinned Deno's `node:http2` turns each write into a frame and
 * each frame into a system call of its own, so an unbatched 10-number `Sum` was four packets.
 *
 * @module
 */
import type net from "node:net";
import { Buffer } from "node:buffer";
import process from "node:process";
import type { CallStream } from "./http2_surface.ts";

/**
 * How many bytes of messages a call holds within one turn before it writes them: a DATA
 * frame's default largest size.
 */
const FLUSH_BYTES = 16 * 1024;

/**
 * Where a call's request side stands: frames go to the stream at the end of each turn
 * (`open`); they wait because the stream's HEADERS have not gone yet, behind the server's
 * stream limit or until a retry has a connection (`held`, with whether the caller has
 * half-closed meanwhile and the writers waiting in `drained()`); the caller has half-closed
 * (`half-closed`); or the call has ended and nothing more goes out (`dropped`).
 */
type BatchState =
  | { phase: "open" }
  | { phase: "held"; endRequested: boolean; waiters: (() => void)[] }
  | { phase: "half-closed" }
  | { phase: "dropped" };

/**
 * The request frames of one call, held until the end of the current turn (or until the call
 * half-closes), so the messages written in one turn go to `node:http2` as one write. The pinned
 * Deno's `node:http2` frames the first write at once and the ones after it, buffered by the
 * stream, in a DATA frame of their own, then sends END_STREAM in a third, empty one; one
 * write followed by `end()` goes out as one DATA frame with END_STREAM.
 *
 * While the stream's HEADERS wait (see {@linkcode FrameBatch.hold}), frames wait here: the pinned
 * Deno's `node:http2` cannot take back a request it has queued behind the server's stream
 * limit, so frames handed to the stream would go out with the HEADERS once a slot frees,
 * even if the call was cancelled meanwhile, and a server takes a `Sum` with END_STREAM as
 * finished. Held here, they are dropped with a cancelled call.
 */
export class FrameBatch {
  #stream: CallStream;
  #frames: Buffer[] = [];
  #bytes = 0;
  #state: BatchState = { phase: "open" };

  /** @param stream The call's stream. */
  constructor(stream: CallStream) {
    this.#stream = stream;
  }

  /** Whether frames wait for the stream's HEADERS. */
  get held(): boolean {
    return this.#state.phase === "held";
  }

  /**
   * Adds one framed message, written at the end of the turn or once a DATA frame's worth
   * has gathered.
   *
   * @param frame The message with its prefix.
   * @returns `false` when the writer should wait for {@linkcode FrameBatch.drained}.
   */
  add(frame: Buffer): boolean {
    this.#frames.push(frame);
    this.#bytes += frame.length;
    if (this.#bytes >= FLUSH_BYTES) return this.flush();
    if (this.#frames.length === 1) process.nextTick(this.#flushLater);
    return !this.#stream.writableNeedDrain;
  }

  #flushLater = (): void => {
    this.flush();
  };

  /**
   * Writes the gathered frames as one chunk.
   *
   * @returns What the stream's `write` returned: whether it takes more.
   */
  flush(): boolean {
    const frames = this.#frames;
    const phase = this.#state.phase;
    if (phase === "held") return frames.length === 0;
    if (frames.length === 0) return !this.#stream.writableNeedDrain;
    this.#frames = [];
    this.#bytes = 0;
    if (phase === "dropped") return false;
    return this.#stream.write(
      frames.length === 1 ? frames[0]! : Buffer.concat(frames),
    );
  }

  /**
   * Resolves when the call can take more writes: at once if the frames went, once the
   * HEADERS have gone if they are held, or at the stream's `drain` (or close).
   *
   * @returns A promise that resolves then.
   */
  drained(): Promise<void> {
    if (this.flush()) return Promise.resolve();
    const state = this.#state;
    if (state.phase === "held") {
      return new Promise((resolve) => state.waiters.push(resolve));
    }
    return new Promise((resolve) => {
      const stream = this.#stream;
      function done(): void {
        stream.off("drain", done);
        stream.off("close", done);
        resolve();
      }
      stream.on("drain", done);
      stream.on("close", done);
    });
  }

  /** Half-closes: the last frames and END_STREAM in one DATA frame, once not held. */
  end(): void {
    const state = this.#state;
    if (state.phase === "dropped") return;
    if (state.phase === "held") {
      state.endRequested = true;
      return;
    }
    this.#state = { phase: "half-closed" };
    const frames = this.#frames;
    this.#frames = [];
    this.#bytes = 0;
    if (frames.length === 0) this.#stream.end();
    else {
      this.#stream.end(
        frames.length === 1 ? frames[0]! : Buffer.concat(frames),
      );
    }
  }

  /** Holds the frames: the stream's HEADERS wait. */
  hold(): void {
    const state = this.#state;
    if (state.phase === "held" || state.phase === "dropped") return;
    this.#state = {
      phase: "held",
      endRequested: state.phase === "half-closed",
      waiters: [],
    };
  }

  /** The HEADERS went: the held frames follow them, and the half-close if one was asked. */
  release(): void {
    const state = this.#state;
    if (state.phase !== "held") return;
    this.#state = { phase: "open" };
    if (state.endRequested) this.end();
    else this.flush();
    for (const resolve of state.waiters) resolve();
  }

  /**
   * Takes the frames gathered and not yet written, for a retry to send itself.
   *
   * @returns The frames, in order.
   */
  take(): Buffer[] {
    const frames = this.#frames;
    this.#frames = [];
    this.#bytes = 0;
    return frames;
  }

  /**
   * Goes on on `stream`, a retry's: writes `frames` (what the call held for the retry, and
   * what was written since), then half-closes if the caller has.
   *
   * @param stream The retry's stream, its HEADERS sent.
   * @param frames The request frames to send first.
   */
  restartOn(stream: CallStream, frames: Buffer[]): void {
    const state = this.#state;
    if (state.phase === "dropped") return;
    const ended = state.phase === "half-closed" ||
      (state.phase === "held" && state.endRequested);
    this.#stream = stream;
    this.#frames = [];
    this.#bytes = 0;
    this.#state = ended ? { phase: "half-closed" } : { phase: "open" };
    if (state.phase === "held") {
      for (const resolve of state.waiters) resolve();
    }
    for (const frame of frames) stream.write(frame);
    if (ended) stream.end();
  }

  /**
   * The call has ended: frames not yet written never are (a cancelled call reaches the
   * server as a reset, not as a finished request), and writers waiting go on.
   */
  drop(): void {
    const state = this.#state;
    this.#state = { phase: "dropped" };
    this.#frames = [];
    this.#bytes = 0;
    if (state.phase === "held") {
      for (const resolve of state.waiters) resolve();
    }
  }
}

/**
 * Sends what the HTTP/2 session writes to `socket` in one turn as one `writev`. The pinned Deno's
 * `node:http2` writes each frame it takes from nghttp2 with a `socket.write` of its own, so a
 * call's HEADERS and its first DATA frame were two system calls and two packets; corked, they
 * go out together, within the same turn (the uncork runs in the same `nextTick` queue).
 *
 * @param socket The connection's socket, before the session takes it.
 */
export function coalesceWrites(socket: net.Socket): void {
  const write = socket.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (
    this: net.Socket,
    ...args: Parameters<net.Socket["write"]>
  ): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as net.Socket["write"];
}
