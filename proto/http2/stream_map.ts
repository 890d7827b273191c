/**
 * A connection's open streams by identifier, in memory that lets go of a stream as soon as it
 * is removed.
 *
 * A JavaScript `Map` does not: once a long-lived `Map`'s table has moved to V8's old
 * generation, each rehash (every few hundred adds and deletes) allocates the next table there
 * too and leaves the last one with every entry it held, until a full collection. To V8's
 * young-generation collector those dead tables are roots, so every stream they name, and all
 * of its call's objects, is copied and then promoted instead of dying young: with calls
 * opening and closing by the thousand, that made the collector's time a fifth of a server's.
 * Here the slots are plain arrays, cleared on removal and when they grow.
 *
 * @module
 */

/** The slots a map starts with: a power of two. */
const INITIAL_SLOTS = 64;

/**
 * Streams by identifier: open addressing with linear probing, at most half full, removal by
 * backward shift (no tombstones, so no rehash but growth). Stream identifiers of one side are
 * all odd or all even and rise one after another, so `id >>> 1` spreads a connection's open
 * streams over consecutive slots.
 *
 * @typeParam V The stream.
 *
 * @example
 * ```ts
 * import { StreamMap } from "./stream_map.ts";
 *
 * const streams = new StreamMap<string>();
 * streams.set(1, "first");
 * streams.delete(1);
 * ```
 */
export class StreamMap<V> {
  /** The identifier in each slot; 0 for an empty slot (no stream has identifier 0). */
  #ids = new Int32Array(INITIAL_SLOTS);
  #values: (V | undefined)[] = new Array(INITIAL_SLOTS).fill(undefined);
  #mask = INITIAL_SLOTS - 1;
  #size = 0;

  /** How many streams it holds. */
  get size(): number {
    return this.#size;
  }

  /**
   * The stream `id`.
   *
   * @param id A stream identifier.
   * @returns The stream, or `undefined` if none has that identifier.
   */
  get(id: number): V | undefined {
    const ids = this.#ids;
    const mask = this.#mask;
    for (let slot = (id >>> 1) & mask;; slot = (slot + 1) & mask) {
      const held = ids[slot];
      if (held === id) return this.#values[slot];
      if (held === 0) return undefined;
    }
  }

  /**
   * Adds or replaces the stream `id`.
   *
   * @param id A stream identifier, from 1 to 2^31-1.
   * @param value The stream.
   * @throws {RangeError} When `id` is not a stream identifier.
   */
  set(id: number, value: V): void {
    if (!Number.isInteger(id) || id < 1 || id > 0x7fffffff) {
      throw new RangeError(`Invalid stream identifier: ${id}`);
    }
    if ((this.#size + 1) * 2 > this.#ids.length) this.#grow();
    const ids = this.#ids;
    const mask = this.#mask;
    let slot = (id >>> 1) & mask;
    while (ids[slot] !== 0 && ids[slot] !== id) slot = (slot + 1) & mask;
    if (ids[slot] === 0) this.#size++;
    ids[slot] = id;
    this.#values[slot] = value;
  }

  /**
   * Removes the stream `id`, if it is there.
   *
   * @param id A stream identifier.
   * @returns Whether it was there.
   */
  delete(id: number): boolean {
    const ids = this.#ids;
    const values = this.#values;
    const mask = this.#mask;
    let slot = (id >>> 1) & mask;
    while (ids[slot] !== id) {
      if (ids[slot] === 0) return false;
      slot = (slot + 1) & mask;
    }
    // Backward shift: each later stream of the run that may sit in the emptied slot (its home
    // slot is not cyclically between the emptied slot and its own) moves up into it.
    let empty = slot;
    for (
      let next = (empty + 1) & mask;
      ids[next] !== 0;
      next = (next + 1) & mask
    ) {
      const home = (ids[next]! >>> 1) & mask;
      const stays = empty < next
        ? home > empty && home <= next
        : home > empty || home <= next;
      if (stays) continue;
      ids[empty] = ids[next]!;
      values[empty] = values[next];
      empty = next;
    }
    ids[empty] = 0;
    values[empty] = undefined;
    this.#size--;
    return true;
  }

  /**
   * The streams, in no particular order: a copy, which removing streams does not change.
   *
   * @returns The streams.
   */
  values(): V[] {
    const found: V[] = [];
    const ids = this.#ids;
    for (let slot = 0; slot < ids.length; slot++) {
      if (ids[slot] !== 0) found.push(this.#values[slot]!);
    }
    return found;
  }

  /** Removes every stream. */
  clear(): void {
    this.#ids.fill(0);
    this.#values.fill(undefined);
    this.#size = 0;
  }

  #grow(): void {
    const oldIds = this.#ids;
    const oldValues = this.#values;
    const slots = oldIds.length * 2;
    this.#ids = new Int32Array(slots);
    this.#values = new Array(slots).fill(undefined);
    this.#mask = slots - 1;
    this.#size = 0;
    for (let slot = 0; slot < oldIds.length; slot++) {
      if (oldIds[slot] !== 0) this.set(oldIds[slot]!, oldValues[slot]!);
    }
    // The old slots go to the collector empty, naming no stream.
    oldValues.fill(undefined);
  }
}
