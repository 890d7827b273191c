/**
 * The request streams of one server connection (RFC 9113 §5.1): the open ones by identifier,
 * the highest one the peer has opened, and what a frame on a stream identifier means given
 * those, and what the connection gives back of the data it has received (its receive windows).
 *
 * @module
 */
import { StreamMap } from "../../proto/http2/stream_map.ts";
import type { ServerStream } from "./server_stream.ts";

/**
 * Each stream's first receive window: what a client may send before the reader takes it.
 * HTTP/2's default, as `node:http2` grants: a client that dies leaves no more unread behind.
 */
export const STREAM_WINDOW = 65_535;

/**
 * The most a stream's window grows to. It grows fourfold (65,535, 256 KiB, then 1 MiB) each
 * time the reader has taken a whole window without pausing, before the server has begun its
 * answer: a client streaming a request that is answered at its end (a `Sum`) then sends on
 * while the server reads, rather than wait for each WINDOW_UPDATE. A stream answered as it
 * is read (a `Sqrt`) is paced by its answers, so a larger window would only queue requests;
 * a reader that stops holds the client at the window it had.
 */
export const MAX_STREAM_WINDOW = 1 << 20;

/** The connection's receive window, given back as DATA arrives (the streams' bound memory). */
export const CONNECTION_WINDOW = 1 << 24;

/** What a HEADERS frame on a stream identifier is. */
export type HeadersTarget =
  /** The trailers of an open stream. */
  | { kind: "trailers"; stream: ServerStream }
  /** A stream the peer has opened and that has closed: a connection error. */
  | { kind: "closed" }
  /** A new stream, now the highest the peer has opened. */
  | { kind: "new" };

/**
 * The open streams of a connection, and the windows of what it receives on them.
 *
 * @example
 * ```ts ignore
 * const table = new StreamTable();
 * if (table.headersTarget(1).kind === "new") table.add(stream);
 * ```
 */
export class StreamTable {
  readonly #streams = new StreamMap<ServerStream>();
  #lastStream = 0;
  /** What the connection has received and not yet given back to the peer. */
  #connectionUnacknowledged = 0;

  /** How many streams are open. */
  get size(): number {
    return this.#streams.size;
  }

  /** The highest stream the peer has opened. */
  get lastStream(): number {
    return this.#lastStream;
  }

  /**
   * The open stream `id`.
   *
   * @param id A stream identifier.
   * @returns The stream, or `undefined` if none is open with it.
   */
  get(id: number): ServerStream | undefined {
    return this.#streams.get(id);
  }

  /** The open streams: a copy, which closing them does not change. */
  values(): ServerStream[] {
    return this.#streams.values();
  }

  /**
   * Whether the peer has not opened stream `id` yet: a frame on it other than HEADERS is a
   * connection error.
   *
   * @param id A stream identifier.
   * @returns `true` for an idle stream.
   */
  idle(id: number): boolean {
    return id > this.#lastStream;
  }

  /**
   * What a HEADERS frame on `id` is; a new stream becomes the highest opened.
   *
   * @param id The frame's stream identifier (odd: a client's).
   * @returns Trailers, a closed stream, or a new one.
   */
  headersTarget(id: number): HeadersTarget {
    const stream = this.#streams.get(id);
    if (stream !== undefined) return { kind: "trailers", stream };
    if (id <= this.#lastStream) return { kind: "closed" };
    this.#lastStream = id;
    return { kind: "new" };
  }

  /**
   * Adds a stream that has just opened.
   *
   * @param stream The stream.
   */
  add(stream: ServerStream): void {
    this.#streams.set(stream.id, stream);
  }

  /**
   * Forgets a stream that has closed.
   *
   * @param stream The stream.
   */
  delete(stream: ServerStream): void {
    this.#streams.delete(stream.id);
  }

  /**
   * Closes every open stream with `code`, and forgets them.
   *
   * @param code The HTTP/2 error code they close with.
   */
  closeAll(code: number): void {
    for (const stream of this.#streams.values()) stream.closeWith(code);
    this.#streams.clear();
  }

  /**
   * Counts `flowLength` bytes of DATA received on the connection.
   *
   * @param flowLength The frame's length, padding included.
   * @returns The WINDOW_UPDATE increment for the connection now due, or 0.
   */
  received(flowLength: number): number {
    this.#connectionUnacknowledged += flowLength;
    if (this.#connectionUnacknowledged < CONNECTION_WINDOW / 4) return 0;
    const increment = this.#connectionUnacknowledged;
    this.#connectionUnacknowledged = 0;
    return increment;
  }

  /**
   * Counts `bytes` of a stream's data that its reader has taken (or padding, which is never
   * read), and gives back what has been taken once that is a quarter of the window, growing
   * the window (see {@linkcode MAX_STREAM_WINDOW}) once the reader has taken all of it.
   *
   * @param stream The stream.
   * @param bytes How many bytes.
   * @returns The WINDOW_UPDATE increment for the stream now due, or 0.
   */
  consumed(stream: ServerStream, bytes: number): number {
    if (stream.remoteEnded || stream.closed) return 0;
    stream.unacknowledged += bytes;
    if (stream.unacknowledged < stream.windowSize / 4) return 0;
    let increment = stream.unacknowledged;
    stream.unacknowledged = 0;
    stream.takenSinceGrowth += increment;
    if (
      stream.takenSinceGrowth >= stream.windowSize &&
      stream.windowSize < MAX_STREAM_WINDOW
    ) {
      if (!stream.pausedSinceGrowth && stream.send.kind === "idle") {
        const grown = Math.min(
          2 ** Math.ceil(Math.log2(stream.windowSize * 4)),
          MAX_STREAM_WINDOW,
        );
        increment += grown - stream.windowSize;
        stream.windowSize = grown;
      }
      stream.takenSinceGrowth = 0;
      stream.pausedSinceGrowth = false;
    }
    stream.receiveWindow += increment;
    return increment;
  }
}
