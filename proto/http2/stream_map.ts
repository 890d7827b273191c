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

/** Bits of the slot count a map starts with. */
const INITIAL_BITS = 6;

/**
 * Streams by identifier: open addressing with linear probing, at most half full, removal by
 * backward shift (no tombstones, so no rehash but growth). A stream's slot is a
 * multiply-shift hash of its identifier with a random odd multiplier of the map's own: a
 * peer picks its stream identifiers, and with a hash it could predict it could put every
 * stream in one run of slots, making each frame's lookup walk all of them.
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
  #ids = new Int32Array(1 << INITIAL_BITS);
  #values: (V | undefined)[] = new Array(1 << INITIAL_BITS).fill(undefined);
  #mask = (1 << INITIAL_BITS) - 1;
  /** 32 less the bits of the slot count: the hash's top bits pick the slot. */
  #shift = 32 - INITIAL_BITS;
  readonly #multiplier = crypto.getRandomValues(new Uint32Array(1))[0]! | 1;
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
    for (let slot = this.#home(id);; slot = (slot + 1) & mask) {
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
    let slot = this.#home(id);
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
    let slot = this.#home(id);
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
      const home = this.#home(ids[next]!);
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

  /** The slot where `id`'s probe starts. */
  #home(id: number): number {
    return Math.imul(id, this.#multiplier) >>> this.#shift;
  }

  #grow(): void {
    const oldIds = this.#ids;
    const oldValues = this.#values;
    const slots = oldIds.length * 2;
    this.#ids = new Int32Array(slots);
    this.#values = new Array(slots).fill(undefined);
    this.#mask = slots - 1;
    this.#shift--;
    this.#size = 0;
    for (let slot = 0; slot < oldIds.length; slot++) {
      if (oldIds[slot] !== 0) this.set(oldIds[slot]!, oldValues[slot]!);
    }
    // The old slots go to the collector empty, naming no stream.
    oldValues.fill(undefined);
  }
}
