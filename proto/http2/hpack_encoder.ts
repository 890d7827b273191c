/**
 * The HPACK (RFC 7541) encoder of both sides' own connections, for the header blocks of
 * requests, responses and trailers: {@linkcode encodeHeaderBlockInto} writes into the caller's
 * buffer, {@linkcode encodeHeaderBlock} returns a new array.
 *
 * It never adds to the peer's dynamic table, so it keeps no table and needs no size updates:
 * whatever the peer's SETTINGS_HEADER_TABLE_SIZE, even 0, its blocks decode the same, and any
 * number of connections can share it. A field the static table holds whole becomes one octet
 * (`:status: 200` is 0x88); a field whose name the static table holds becomes a literal
 * without indexing that names it by index; any other, a literal without indexing with the name
 * written out. Strings are written raw, never Huffman-coded: a gRPC call's few short fields
 * would save a few octets for the cost of coding them on every call.
 *
 * @module
 */
import { type HeaderField, STATIC_TABLE } from "./hpack_static_table.ts";

export type { HeaderField };

/** Where the static table holds a name: its first index, and its full fields by value. */
interface StaticName {
  index: number;
  values: Map<string, number>;
}

/** The static table by name, first index first, as an encoder looks fields up. */
function staticNames(): Map<string, StaticName> {
  const names = new Map<string, StaticName>();
  for (const [offset, [name, value]] of STATIC_TABLE.entries()) {
    const index = offset + 1;
    let entry = names.get(name);
    if (entry === undefined) {
      entry = { index, values: new Map() };
      names.set(name, entry);
    }
    if (!entry.values.has(value)) entry.values.set(value, index);
  }
  return names;
}

const STATIC_NAMES = staticNames();

/**
 * Octets a name may not hold (RFC 9113 section 8.2.1): controls, space, upper case letters,
 * DEL and above. The pseudo-headers' leading colon is allowed, as everywhere in a name.
 */
const BAD_NAME_OCTET = Uint8Array.from(
  { length: 256 },
  (_, octet) =>
    octet <= 0x20 || (octet >= 0x41 && octet <= 0x5a) || octet >= 0x7f ? 1 : 0,
);

/** Octets a value may not hold (RFC 9113 section 8.2.1): NUL, LF and CR. */
const BAD_VALUE_OCTET = Uint8Array.from(
  { length: 256 },
  (_, octet) => octet === 0 || octet === 0x0a || octet === 0x0d ? 1 : 0,
);

/** Octets an integer of `value` takes with a `prefix`-bit prefix (RFC 7541 section 5.1). */
function integerLength(value: number, prefix: number): number {
  const mask = (1 << prefix) - 1;
  if (value < mask) return 1;
  let length = 2;
  for (let rest = value - mask; rest >= 128; rest = Math.floor(rest / 128)) {
    length++;
  }
  return length;
}

/**
 * Where {@linkcode writeField} writes: the array, and the offset of the next octet, which
 * the caller sets first and reads after. The encoder's functions run to completion one at a
 * time, so one cursor serves them all without a cursor object per field.
 */
let out: Uint8Array = new Uint8Array(0);
let at = 0;

/** Writes an integer with a `prefix`-bit prefix, the prefix's other bits 0 (RFC 7541 5.1). */
function writeInteger(value: number, prefix: number): void {
  const mask = (1 << prefix) - 1;
  if (value < mask) {
    out[at++] = value;
    return;
  }
  out[at++] = mask;
  let rest = value - mask;
  while (rest >= 128) {
    out[at++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[at++] = rest;
}

/**
 * Writes a raw string literal (RFC 7541 section 5.2, H = 0), one octet per character.
 *
 * @returns -1, or where in `text` the first character `bad` refuses (or past U+00FF) is:
 *   the caller throws, naming the field.
 */
function writeString(text: string, bad: Uint8Array): number {
  writeInteger(text.length, 7);
  for (let i = 0; i < text.length; i++) {
    const octet = text.charCodeAt(i);
    if (octet > 0xff || bad[octet] === 1) return i;
    out[at + i] = octet;
  }
  at += text.length;
  return -1;
}

/** The most fields the memo keeps the octets of. */
const MEMO_FIELDS = 128;
/** The longest field (name and value, in characters) the memo keeps the octets of. */
const MEMO_CHARS = 96;
/** The most octets a memoized field takes: its representation's first octet, two integers. */
const MEMO_FIELD_OCTETS = MEMO_CHARS + 1 + 2 * 2;

/**
 * The octets of fields met before, by name and value, as `offset * 256 + length` in
 * `MEMO_OCTETS`: a server repeats the same few fields on every call (`content-type`,
 * `grpc-status: 0`), and copying their octets takes about half the time of encoding them again
 * (`tests/bench/hpack_bench.ts`). One memo serves every connection of the process, in one
 * array, since a new array per field costs more than encoding it many times over. Once full
 * it takes no more fields, so one-off values (`grpc-message` texts) cannot grow it.
 */
const MEMO = new Map<string, Map<string, number>>();
const MEMO_OCTETS = new Uint8Array(MEMO_FIELDS * MEMO_FIELD_OCTETS);
let memoized = 0;

/**
 * A field's place in the memo (`offset * 256 + length`), met before or added now when short
 * and room is left; -1 for a field to encode in place.
 */
function memoOf(field: HeaderField): number {
  const name = field[0];
  const value = field[1];
  let values = MEMO.get(name);
  const known = values?.get(value);
  if (known !== undefined) return known;
  if (memoized >= MEMO_FIELDS || name.length + value.length > MEMO_CHARS) {
    return -1;
  }
  const offset = memoized * MEMO_FIELD_OCTETS;
  at = offset;
  writeField(MEMO_OCTETS, field);
  const length = at - offset;
  const place = offset * 256 + length;
  if (values === undefined) {
    values = new Map();
    MEMO.set(name, values);
  }
  values.set(value, place);
  memoized++;
  return place;
}

/**
 * Encodes one header block of a response or of trailers into a new array.
 * {@linkcode encodeHeaderBlockInto} saves the array, which costs more than the encoding.
 *
 * Names must be lower case already, as HTTP/2 requires; values are octet strings given one
 * character per octet (latin1), which gRPC's ASCII values, its percent-encoded
 * `grpc-message` and its base64 `-bin` values are. A character past U+00FF, or one HTTP/2
 * does not allow (upper case, space or a control in a name; NUL, LF or CR in a value), is
 * refused rather than written: Deno's and Node's `node:http2` keep only such a character's
 * low octet, which can turn U+010A into a line feed.
 *
 * @param fields The fields, in the order to send them.
 * @returns The block's octets, the caller's own.
 * @throws {RangeError} When a name or value holds a character HTTP/2 does not allow.
 *
 * @example
 * ```ts
 * import { encodeHeaderBlock } from "./hpack_encoder.ts";
 *
 * const block = encodeHeaderBlock([
 *   [":status", "200"],
 *   ["content-type", "application/grpc"],
 * ]);
 * console.log(block[0]); // 0x88: `:status: 200`, static index 8
 * ```
 */
export function encodeHeaderBlock(fields: Iterable<HeaderField>): Uint8Array {
  const list = Array.isArray(fields) ? fields as readonly HeaderField[] : [
    ...fields,
  ];
  let length = 0;
  for (const field of list) {
    const place = memoOf(field);
    length += place === -1 ? fieldLength(field) : place % 256;
  }
  const block = new Uint8Array(length);
  encodeHeaderBlockInto(list, block);
  return block;
}

/** The blocks of frozen field lists, by list. */
const frozenBlocks = new WeakMap<readonly HeaderField[], Uint8Array>();

/**
 * The header block of a frozen field list (such as `fieldsOf` gives for a frozen headers
 * object: a server's usual response headers and `OK` trailers), encoded the first time only.
 * The encoder keeps no dynamic table, so the block is the same on every connection.
 *
 * @param fields A frozen list of fields.
 * @returns Its block, shared: not to be changed.
 * @throws {TypeError} When `fields` is not frozen: a list that may change cannot be kept.
 * @throws {RangeError} When a name or value holds a character HTTP/2 does not allow.
 *
 * @example
 * ```ts
 * import { encodeFrozenHeaderBlock } from "./hpack_encoder.ts";
 *
 * const trailers = Object.freeze([["grpc-status", "0"]] as const);
 * console.log(encodeFrozenHeaderBlock(trailers) === encodeFrozenHeaderBlock(trailers)); // true
 * ```
 */
export function encodeFrozenHeaderBlock(
  fields: readonly HeaderField[],
): Uint8Array {
  let block = frozenBlocks.get(fields);
  if (block === undefined) {
    if (!Object.isFrozen(fields)) {
      throw new TypeError(
        "Header fields are not frozen: their block cannot be kept",
      );
    }
    block = encodeHeaderBlock(fields);
    frozenBlocks.set(fields, block);
  }
  return block;
}

/**
 * Encodes one header block of a response or of trailers into `target` from its start, as a
 * connection does into the payload of the HEADERS frame it builds (`target` a view past the
 * frame's header). Names and values as {@linkcode encodeHeaderBlock} takes them.
 *
 * @param fields The fields, in the order to send them.
 * @param target Where to write the block.
 * @returns The block's length in octets.
 * @throws {RangeError} When the block does not fit `target` (whose octets are then partly
 *   written), or a name or value holds a character HTTP/2 does not allow.
 *
 * @example
 * ```ts
 * import { encodeHeaderBlockInto } from "./hpack_encoder.ts";
 *
 * const frame = new Uint8Array(16384 + 9);
 * const length = encodeHeaderBlockInto(
 *   [["grpc-status", "0"]],
 *   frame.subarray(9),
 * );
 * ```
 */
export function encodeHeaderBlockInto(
  fields: Iterable<HeaderField>,
  target: Uint8Array,
): number {
  // An array's fields by index: a generic iteration makes an iterator object per block.
  const list = Array.isArray(fields)
    ? fields as readonly HeaderField[]
    : [...fields];
  let end = 0;
  for (let index = 0; index < list.length; index++) {
    const field = list[index]!;
    const place = memoOf(field);
    const length = place === -1 ? fieldLength(field) : place % 256;
    if (end + length > target.length) {
      throw new RangeError(
        `Header block does not fit: ${
          end + length
        } octets or more for ${target.length}`,
      );
    }
    if (place === -1) {
      at = end;
      writeField(target, field);
    } else {
      const offset = (place - length) / 256;
      for (let i = 0; i < length; i++) {
        target[end + i] = MEMO_OCTETS[offset + i]!;
      }
    }
    end += length;
  }
  // The cursor is to hold no caller's buffer past the call.
  out = MEMO_OCTETS;
  return end;
}

/** Octets a field takes, as {@linkcode writeField} writes it. */
function fieldLength(field: HeaderField): number {
  const [name, value] = field;
  const known = STATIC_NAMES.get(name);
  if (known === undefined) {
    return 1 + integerLength(name.length, 7) + name.length +
      integerLength(value.length, 7) + value.length;
  }
  if (known.values.has(value)) return 1;
  return integerLength(known.index, 4) + integerLength(value.length, 7) +
    value.length;
}

/**
 * Writes a field into `target` at the cursor `at`, where the caller has made room.
 *
 * @throws {RangeError} When the name or value holds a character HTTP/2 does not allow.
 */
function writeField(target: Uint8Array, field: HeaderField): void {
  out = target;
  const [name, value] = field;
  const known = STATIC_NAMES.get(name);
  if (known === undefined) {
    // Literal without indexing, new name (RFC 7541 section 6.2.2).
    out[at++] = 0x00;
    const bad = writeString(name, BAD_NAME_OCTET);
    if (bad !== -1) throw refusal(field, bad);
  } else {
    const index = known.values.get(value);
    if (index !== undefined) {
      // Indexed header field (section 6.1).
      out[at++] = 0x80 | index;
      return;
    }
    // Literal without indexing, indexed name (section 6.2.2).
    writeInteger(known.index, 4);
  }
  const bad = writeString(value, BAD_VALUE_OCTET);
  if (bad !== -1) throw refusal(field, -1 - bad);
}

/**
 * The error for a character HTTP/2 does not allow: at `where` in the name, or at
 * `-1 - where` in the value.
 */
function refusal(field: HeaderField, where: number): RangeError {
  const [what, text, i] = where >= 0
    ? ["name", field[0], where]
    : ["value", field[1], -1 - where];
  const code = text.charCodeAt(i).toString(16).padStart(4, "0");
  return new RangeError(
    `Header ${what} holds a character HTTP/2 does not allow: ${
      JSON.stringify(field[0])
    } at ${i}, U+${code}`,
  );
}
