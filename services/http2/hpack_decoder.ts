/**
 * The server's HPACK (RFC 7541) decoder: the static table, a dynamic table with eviction and
 * size updates, prefixed integers, string literals with and without Huffman coding, and the
 * indexed and three literal representations. The server's own HTTP/2 connection and the raw
 * HTTP/2 floor server of the benchmarks (`tests/bench/raw_h2/connection.ts`) use it.
 *
 * A decoder is stateful: one per connection, fed every header block of that connection in
 * the order the blocks arrive. Names and values are decoded one octet to one character
 * (latin1), which is what HTTP/2 header octets are.
 *
 * @module
 */

/** One decoded header: its name and its value. */
export type HeaderField = readonly [name: string, value: string];

/** RFC 7541 Appendix A, indices 1 to 61. */
const STATIC_TABLE: readonly HeaderField[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/**
 * The bit length of each symbol's code in RFC 7541 Appendix B, symbols 0 to 255 and EOS (256).
 * The appendix's code is canonical (codes of one length count up in symbol order, each length
 * starting where the shorter ones left off, shifted), so these lengths rebuild every code of
 * the table exactly; `huffmanTree()` does so.
 */
// deno-fmt-ignore
const HUFFMAN_CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;
const EMPTY = new Uint8Array(0);

/**
 * The Huffman code as a binary tree: node `n`'s children are at `2n` (bit 0) and `2n + 1`
 * (bit 1); a positive child is the next node, a negative one the leaf of symbol `-child - 1`.
 * Node 0 is the root, which is no one's child, so 0 never marks a child.
 */
function huffmanTree(): Int32Array {
  const symbols = HUFFMAN_CODE_LENGTHS.map((_, symbol) => symbol).sort((a, b) =>
    HUFFMAN_CODE_LENGTHS[a]! - HUFFMAN_CODE_LENGTHS[b]! || a - b
  );
  // A complete code of 257 leaves has 256 inner nodes.
  const tree = new Int32Array(2 * 256);
  let nodes = 1;
  let code = 0;
  let previousLength = HUFFMAN_CODE_LENGTHS[symbols[0]!]!;
  for (const [rank, symbol] of symbols.entries()) {
    const length = HUFFMAN_CODE_LENGTHS[symbol]!;
    if (rank > 0) code = (code + 1) * 2 ** (length - previousLength);
    previousLength = length;
    let node = 0;
    for (let bit = length - 1; bit > 0; bit--) {
      const slot = 2 * node + (Math.floor(code / 2 ** bit) & 1);
      if (tree[slot] === 0) tree[slot] = nodes++;
      node = tree[slot]!;
    }
    tree[2 * node + (code & 1)] = -symbol - 1;
  }
  return tree;
}

const HUFFMAN_TREE = huffmanTree();

/** `octets` as a string of one character per octet. */
function latin1(octets: Uint8Array): string {
  let text = "";
  for (const octet of octets) text += String.fromCharCode(octet);
  return text;
}

/**
 * Decodes a Huffman-coded string literal (RFC 7541 section 5.2).
 *
 * @param coded The literal's coded octets.
 * @returns The decoded string.
 * @throws {RangeError} When the literal holds EOS or its padding is not a short run of 1 bits.
 */
function huffmanDecode(coded: Uint8Array): string {
  let text = "";
  let node = 0;
  // Bits read since the last symbol, and whether all of them were 1: the padding test.
  let pending = 0;
  let ones = true;
  for (const byte of coded) {
    for (let shift = 7; shift >= 0; shift--) {
      const bit = (byte >> shift) & 1;
      const child = HUFFMAN_TREE[2 * node + bit]!;
      if (child < 0) {
        const symbol = -child - 1;
        if (symbol === EOS) {
          throw new RangeError("Huffman string holds EOS");
        }
        text += String.fromCharCode(symbol);
        node = 0;
        pending = 0;
        ones = true;
      } else {
        node = child;
        pending++;
        if (bit === 0) ones = false;
      }
    }
  }
  if (pending > 7 || !ones) {
    throw new RangeError("Huffman string has bad padding");
  }
  return text;
}

/** An entry's size in the dynamic table (RFC 7541 section 4.1). */
function entrySize(name: string, value: string): number {
  return name.length + value.length + 32;
}

/**
 * Decodes the header blocks of one HTTP/2 connection, keeping the dynamic table they build.
 *
 * @example
 * ```ts
 * import { HpackDecoder } from "./hpack_decoder.ts";
 *
 * const decoder = new HpackDecoder();
 * // RFC 7541 C.2.4: an indexed header field, `:method: GET`.
 * const headers = decoder.decode(Uint8Array.of(0x82));
 * ```
 */
export class HpackDecoder {
  /** Newest first: dynamic index 62 is `#entries[0]`. */
  #entries: HeaderField[] = [];
  #size = 0;
  #maxSize: number;
  #limit: number;
  /** The block being decoded, and where in it the next octet is. */
  #block: Uint8Array = EMPTY;
  #position = 0;

  /**
   * A decoder with an empty dynamic table.
   *
   * @param limit The most the peer may make the table hold, in octets: our
   *   SETTINGS_HEADER_TABLE_SIZE.
   */
  constructor(limit = 4096) {
    this.#limit = limit;
    this.#maxSize = limit;
  }

  /** Octets the dynamic table holds now, counted as RFC 7541 section 4.1 counts them. */
  get tableSize(): number {
    return this.#size;
  }

  /** Entries in the dynamic table now. */
  get tableLength(): number {
    return this.#entries.length;
  }

  /**
   * Decodes one complete header block (HEADERS and its CONTINUATIONs joined), in order.
   *
   * @param block The block's octets.
   * @returns The header fields, in the order the block lists them.
   * @throws {RangeError} When the block is truncated, refers to an index it does not have,
   *   holds a bad Huffman string, or updates the table size out of place or past the limit.
   */
  decode(block: Uint8Array): HeaderField[] {
    const headers: HeaderField[] = [];
    this.#block = block;
    this.#position = 0;
    let updatesAllowed = true;
    while (this.#position < block.length) {
      const first = block[this.#position]!;
      if (first & 0x80) {
        // Indexed header field.
        const index = this.#integer(7);
        if (index === 0) throw new RangeError("Header index 0 is not allowed");
        headers.push(this.#field(index));
      } else if ((first & 0xe0) === 0x20) {
        // Dynamic table size update: only before the first field.
        if (!updatesAllowed) {
          throw new RangeError("Table size update follows a header field");
        }
        const size = this.#integer(5);
        if (size > this.#limit) {
          throw new RangeError(
            `Table size update exceeds the limit: ${size} > ${this.#limit}`,
          );
        }
        this.#maxSize = size;
        this.#evict(0);
        continue;
      } else {
        // Literal: with incremental indexing (01), without indexing (0000), never indexed (0001).
        const indexing = (first & 0xc0) === 0x40;
        const nameIndex = this.#integer(indexing ? 6 : 4);
        const name = nameIndex === 0
          ? this.#string()
          : this.#field(nameIndex)[0];
        const field: HeaderField = [name, this.#string()];
        if (indexing) this.#add(field);
        headers.push(field);
      }
      updatesAllowed = false;
    }
    this.#block = EMPTY;
    return headers;
  }

  /** Reads an integer with a `prefix`-bit prefix (RFC 7541 section 5.1). */
  #integer(prefix: number): number {
    const block = this.#block;
    const mask = (1 << prefix) - 1;
    let value = block[this.#position++]! & mask;
    if (value < mask) return value;
    let scale = 1;
    for (;;) {
      if (this.#position >= block.length) {
        throw new RangeError("Header block is truncated: in an integer");
      }
      const byte = block[this.#position++]!;
      value += (byte & 0x7f) * scale;
      // Nothing in a header block needs 2^32; a larger one, or a longer run, is hostile.
      if (value >= 2 ** 32 || scale > 2 ** 28) {
        throw new RangeError("Header integer is too large");
      }
      if (byte < 0x80) return value;
      scale *= 128;
    }
  }

  /** Reads a string literal (RFC 7541 section 5.2). */
  #string(): string {
    const block = this.#block;
    if (this.#position >= block.length) {
      throw new RangeError("Header block is truncated: before a string");
    }
    const huffman = (block[this.#position]! & 0x80) !== 0;
    const length = this.#integer(7);
    const start = this.#position;
    const end = start + length;
    if (end > block.length) {
      throw new RangeError("Header block is truncated: in a string");
    }
    this.#position = end;
    const octets = block.subarray(start, end);
    return huffman ? huffmanDecode(octets) : latin1(octets);
  }

  /** The field at `index` of the static table followed by the dynamic one. */
  #field(index: number): HeaderField {
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const entry = this.#entries[index - STATIC_TABLE.length - 1];
    if (entry === undefined) {
      throw new RangeError(`Header index is out of the tables: ${index}`);
    }
    return entry;
  }

  /** Adds a field to the dynamic table, evicting the oldest entries to make room. */
  #add(field: HeaderField): void {
    const size = entrySize(field[0], field[1]);
    this.#evict(size);
    // An entry larger than the whole table empties it and is not added (section 4.4).
    if (size > this.#maxSize) return;
    this.#entries.unshift(field);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more octets fit under the table's size. */
  #evict(room: number): void {
    while (this.#size + room > this.#maxSize && this.#entries.length > 0) {
      const oldest = this.#entries.pop()!;
      this.#size -= entrySize(oldest[0], oldest[1]);
    }
  }
}
