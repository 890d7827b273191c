/**
 * The HPACK (RFC 7541) decoder of both sides' own connections: the static table, a dynamic
 * table with eviction and size updates, prefixed integers, string literals with and without
 * Huffman coding, and the indexed and three literal representations. The server's and the
 * client's own HTTP/2 connections and the raw HTTP/2 floor server of the benchmarks
 * (`tests/bench/raw_h2/connection.ts`) use it.
 *
 * A decoder is stateful: one per connection, fed every header block of that connection in the
 * order the blocks arrive. Names and values are decoded one octet to one character (latin1),
 * which is what HTTP/2 header octets are.
 *
 * @module
 */
import { FORBIDDEN_VALUE } from "./header_objects.ts";
import {
  fieldSize,
  type HeaderField,
  STATIC_TABLE,
} from "./hpack_static_table.ts";

export type { HeaderField };

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

/** How a {@linkcode HpackDecoder} bounds what a peer may make it hold. */
export interface HpackDecoderOptions {
  /**
   * The most the peer may make the dynamic table hold, in octets: our
   * SETTINGS_HEADER_TABLE_SIZE. A size update past it is a decoding error.
   *
   * @default {4096}
   */
  maxTableBytes?: number;
  /**
   * The largest header list a block may decode to, counted as SETTINGS_MAX_HEADER_LIST_SIZE
   * counts it (RFC 9113 section 6.5.2): over every field, its name's and value's octets
   * plus 32. A larger block is still decoded whole, but its fields are dropped
   * ({@linkcode DecodedBlock}). `Infinity` lifts the limit.
   *
   * @default {65536}
   */
  maxListBytes?: number;
}

/**
 * What one header block decoded to. A block past `maxListBytes` keeps no fields, so a caller
 * cannot take part of a list for the whole: the stream is to be refused (HTTP 431 or
 * RST_STREAM), while the connection, whose dynamic table the block did update, goes on.
 */
export type DecodedBlock =
  | {
    /** The list fits `maxListBytes`. */
    readonly oversized: false;
    /** The header fields, in the order the block lists them. */
    readonly fields: HeaderField[];
    /** The list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it. */
    readonly listBytes: number;
    /**
     * Whether a value holds NUL, CR or LF, which make a field malformed in HTTP/2 (RFC 9113
     * §8.2.1). Each value is checked once, as it is decoded from a literal: a field from the
     * tables is the same one each time.
     */
    readonly forbiddenValues: boolean;
  }
  | {
    /** The list is larger than `maxListBytes`. */
    readonly oversized: true;
    /** The whole list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it. */
    readonly listBytes: number;
  };

/** The most a decoder's table may be told to hold: a prefixed integer's reach here. */
const MAX_TABLE_BYTES = 2 ** 32 - 1;

/**
 * Decodes the header blocks of one HTTP/2 connection, keeping the dynamic table they build.
 *
 * Every decoding error is a `RangeError` whose message says what was wrong; the connection
 * answers any of them with GOAWAY COMPRESSION_ERROR (RFC 9113 section 4.3). After an error
 * the dynamic table no longer matches the peer's, so the decoder refuses every later block.
 *
 * @example
 * ```ts
 * import { HpackDecoder } from "./hpack_decoder.ts";
 *
 * const decoder = new HpackDecoder({ maxListBytes: 16384 });
 * // RFC 7541 C.2.4: an indexed header field, `:method: GET`.
 * const block = decoder.decode(Uint8Array.of(0x82));
 * if (!block.oversized) console.log(block.fields); // [[":method", "GET"]]
 * ```
 */
export class HpackDecoder {
  /** Newest first: dynamic index 62 is `#entries[0]`. */
  #entries: HeaderField[] = [];
  #size = 0;
  /** The table's size now, as the peer's last size update set it. */
  #maxSize: number;
  #limit: number;
  #maxListBytes: number;
  /** The dynamic table's entries whose value is forbidden; none from a well-behaved peer. */
  #forbidden: Set<HeaderField> | undefined = undefined;
  /** The first decoding error: the table is out of step with the peer's from then on. */
  #failure: RangeError | undefined;
  /** The block being decoded, and where in it the next octet is. */
  #block: Uint8Array = EMPTY;
  #position = 0;

  /**
   * A decoder with an empty dynamic table.
   *
   * @param options The limits the peer's blocks are held to.
   * @throws {RangeError} When `maxTableBytes` is not an integer from 0 to 2^32 - 1, or
   *   `maxListBytes` is negative or not a number.
   */
  constructor(options: HpackDecoderOptions = {}) {
    const { maxTableBytes = 4096, maxListBytes = 65536 } = options;
    if (
      !Number.isInteger(maxTableBytes) || maxTableBytes < 0 ||
      maxTableBytes > MAX_TABLE_BYTES
    ) {
      throw new RangeError(
        `maxTableBytes must be an integer from 0 to 2^32 - 1: ${maxTableBytes}`,
      );
    }
    if (!(maxListBytes >= 0)) {
      throw new RangeError(
        `maxListBytes must be a non-negative number: ${maxListBytes}`,
      );
    }
    this.#limit = maxTableBytes;
    this.#maxSize = maxTableBytes;
    this.#maxListBytes = maxListBytes;
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
   * A block whose list is past `maxListBytes` is decoded to its end all the same, so the
   * dynamic table stays the peer's; only its fields are dropped, as soon as the list passes
   * the limit, which bounds what the decoder holds.
   *
   * @param block The block's octets.
   * @returns The header fields, or that the list was too large.
   * @throws {RangeError} When the block is truncated, refers to an index it does not have,
   *   holds a bad Huffman string or an integer of 2^32 or more, or updates the table size
   *   after a field or past `maxTableBytes`; and on every block after such an error.
   */
  decode(block: Uint8Array): DecodedBlock {
    if (this.#failure !== undefined) {
      throw new RangeError(
        `HPACK decoder failed on an earlier block: ${this.#failure.message}`,
      );
    }
    this.#block = block;
    this.#position = 0;
    try {
      return this.#fields();
    } catch (error) {
      this.#failure = error instanceof RangeError
        ? error
        : new RangeError(String(error));
      throw error;
    } finally {
      this.#block = EMPTY;
    }
  }

  #fields(): DecodedBlock {
    const block = this.#block;
    let fields: HeaderField[] | undefined = [];
    let listBytes = 0;
    let updatesAllowed = true;
    let forbiddenValues = false;
    while (this.#position < block.length) {
      const first = block[this.#position]!;
      let field: HeaderField;
      if (first & 0x80) {
        // Indexed header field.
        const index = this.#integer(7);
        if (index === 0) throw new RangeError("Header index 0 is not allowed");
        field = this.#field(index);
        if (this.#forbidden?.has(field)) forbiddenValues = true;
      } else if ((first & 0xe0) === 0x20) {
        // Dynamic table size update: only at the start of a block (RFC 7541 section 4.2),
        // where several may follow one another.
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
        field = [name, this.#string()];
        const forbidden = FORBIDDEN_VALUE.test(field[1]);
        if (forbidden) forbiddenValues = true;
        if (indexing) {
          this.#add(field);
          // Kept only while the table holds it (a field larger than the table is not added).
          if (forbidden && this.#entries[0] === field) {
            (this.#forbidden ??= new Set()).add(field);
          }
        }
      }
      updatesAllowed = false;
      listBytes += fieldSize(field);
      if (fields === undefined) continue;
      if (listBytes > this.#maxListBytes) fields = undefined;
      else fields.push(field);
    }
    return fields === undefined
      ? { oversized: true, listBytes }
      : { oversized: false, fields, listBytes, forbiddenValues };
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
      throw new RangeError(
        `Header block is truncated: in a string of ${length} octets`,
      );
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
    const size = fieldSize(field);
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
      this.#size -= fieldSize(oldest);
      this.#forbidden?.delete(oldest);
    }
  }
}
