/**
 * The request streams of one client connection (RFC 9113 §5.1): the open ones by identifier,
 * those whose HEADERS wait for a slot under the server's SETTINGS_MAX_CONCURRENT_STREAMS, in
 * order, and the identifier the next one takes (odd, rising, at most 2^31-1).
 *
 * @module
 */
import { StreamMap } from "../../proto/http2/stream_map.ts";
import type { ClientStream } from "./client_stream.ts";

/** The largest stream identifier. */
const MAX_STREAM_ID = 2 ** 31 - 1;

/**
 * A connection's streams.
 *
 * @example
 * ```ts ignore
 * const slots = new StreamSlots();
 * if (slots.hasRoom(limit)) slots.open(stream);
 * else slots.wait(stream);
 * ```
 */
export class StreamSlots {
  readonly #open = new StreamMap<ClientStream>();
  #waiting: ClientStream[] = [];
  #nextId = 1;

  /** The identifier of the last stream opened (-1 before any). */
  get lastOpened(): number {
    return this.#nextId - 2;
  }

  /** Whether no stream is open or waiting. */
  get empty(): boolean {
    return this.#open.size === 0 && this.#waiting.length === 0;
  }

  /**
   * The open stream `id`.
   *
   * @param id A stream identifier.
   * @returns The stream, or `undefined` when none is open with it.
   */
  get(id: number): ClientStream | undefined {
    return this.#open.get(id);
  }

  /** The open streams: a copy, which closing them does not change. */
  opened(): ClientStream[] {
    return this.#open.values();
  }

  /**
   * Whether a new stream may send its HEADERS at once: none waits before it, and fewer than
   * `limit` are open.
   *
   * @param limit The server's SETTINGS_MAX_CONCURRENT_STREAMS.
   * @returns `true` when it may.
   */
  hasRoom(limit: number): boolean {
    return this.#waiting.length === 0 && this.#open.size < limit;
  }

  /**
   * Queues `stream` until a slot frees.
   *
   * @param stream A stream whose HEADERS have not gone.
   */
  wait(stream: ClientStream): void {
    this.#waiting.push(stream);
  }

  /**
   * Forgets a stream that waited (its call gave up before its HEADERS went).
   *
   * @param stream The stream.
   */
  unwait(stream: ClientStream): void {
    this.#waiting = this.#waiting.filter((waiting) => waiting !== stream);
  }

  /**
   * Takes the first waiting stream, if a slot is free under `limit`.
   *
   * @param limit The server's SETTINGS_MAX_CONCURRENT_STREAMS.
   * @returns The stream, or `undefined`.
   */
  nextWaiting(limit: number): ClientStream | undefined {
    return this.#open.size < limit ? this.#waiting.shift() : undefined;
  }

  /**
   * Takes every waiting stream (the connection will take no more).
   *
   * @returns They, in order.
   */
  takeWaiting(): ClientStream[] {
    return this.#waiting.splice(0);
  }

  /**
   * Counts `stream` open under the next identifier.
   *
   * @param stream The stream whose HEADERS go now.
   * @returns The identifier, or `undefined` when they are used up.
   */
  open(stream: ClientStream): number | undefined {
    const id = this.#nextId;
    if (id > MAX_STREAM_ID) return undefined;
    this.#nextId += 2;
    this.#open.set(id, stream);
    return id;
  }

  /**
   * Forgets the open stream `id`.
   *
   * @param id A stream identifier.
   * @returns Whether it was open.
   */
  delete(id: number): boolean {
    return this.#open.delete(id);
  }

  /**
   * Whether `id` names a stream this side opened once (it may have closed since).
   *
   * @param id A stream identifier from the server.
   * @returns `true` for a stream this side opened.
   */
  openedOnce(id: number): boolean {
    return id % 2 === 1 && id < this.#nextId;
  }

  /**
   * Forgets every stream, open or waiting.
   *
   * @returns They, the open ones first.
   */
  clear(): ClientStream[] {
    const all = [...this.#open.values(), ...this.#waiting];
    this.#open.clear();
    this.#waiting = [];
    return all;
  }
}
