/**
 * The chunks a stream has received and not yet handed up, first in first out. A paused stream
 * can hold a whole window of one-message DATA frames (a hundred thousand chunks), and
 * `Array.prototype.shift()` on an array that long copies it each time: this reads from an
 * index instead, and lets the array go once it is drained.
 *
 * @module
 */

/**
 * A first-in first-out queue of byte chunks, counting their bytes.
 *
 * @example
 * ```ts ignore
 * const queue = new ChunkQueue<Uint8Array>();
 * queue.push(new Uint8Array(3));
 * queue.shift(); // the chunk; queue.bytes is 0 again
 * ```
 */
export class ChunkQueue<Chunk extends Uint8Array> {
  #chunks: Chunk[] = [];
  #head = 0;
  #bytes = 0;

  /** The bytes of the chunks queued. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Whether no chunk is queued. */
  get empty(): boolean {
    return this.#head === this.#chunks.length;
  }

  /**
   * Queues `chunk` last.
   *
   * @param chunk The bytes.
   */
  push(chunk: Chunk): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
  }

  /**
   * Takes the first chunk.
   *
   * @returns It, or `undefined` when none is queued.
   */
  shift(): Chunk | undefined {
    if (this.#head === this.#chunks.length) return undefined;
    const chunk = this.#chunks[this.#head]!;
    this.#head += 1;
    this.#bytes -= chunk.length;
    if (this.#head === this.#chunks.length) this.#clear();
    return chunk;
  }

  /**
   * Takes every chunk queued.
   *
   * @returns They, in order.
   */
  takeAll(): Chunk[] {
    const chunks = this.#head === 0
      ? this.#chunks
      : this.#chunks.slice(this.#head);
    this.#clear();
    return chunks;
  }

  #clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}
