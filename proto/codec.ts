/**
 * Hand-written protobuf codecs for the six messages of the wire contract. Each message has one
 * or two scalar fields, so encoding them directly is several times faster than the generic
 * reflection-based codec; `tests/proto/codec_test.ts` proves them byte-for-byte against protobufjs.
 *
 * Decoders accept anything a conforming encoder may send: fields in any order, repeated
 * fields (the last wins), zero values left out, and unknown fields of any wire type, groups
 * included (skipped). Malformed input throws a `RangeError`, which grpc-js turns into a status
 * on that call alone.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { MessageSpan } from "./envelope.ts";

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;
/** How deep unknown groups may nest, as protobuf's own recursion limit. */
const MAX_GROUP_DEPTH = 100;

const TWO_TO_32 = 4_294_967_296;

/**
 * A position in a message being decoded, and the tag of the field read last. One reader goes
 * through a whole message, so reading a field allocates nothing.
 */
interface Reader {
  bytes: Uint8Array;
  offset: number;
  /** The number of the field whose tag was read last. */
  field: number;
  /** The wire type of that field. */
  wireType: number;
}

function truncated(): never {
  throw new RangeError("Message is truncated");
}

/** Reads a varint as two 32-bit halves, so 64-bit values keep every bit. */
function readVarint64(reader: Reader): { low: number; high: number } {
  const { bytes } = reader;
  let low = 0;
  let high = 0;
  let shift = 0;
  let offset = reader.offset;
  for (let index = 0; index < 10; index++) {
    if (offset >= bytes.length) truncated();
    const byte = bytes[offset++]!;
    if (shift < 28) {
      low |= (byte & 0x7f) << shift;
    } else if (shift === 28) {
      low |= (byte & 0x0f) << 28;
      high |= (byte & 0x7f) >>> 4;
    } else {
      high |= (byte & 0x7f) << (shift - 32);
    }
    shift += 7;
    if (byte < 0x80) {
      reader.offset = offset;
      return { low: low >>> 0, high: high >>> 0 };
    }
  }
  throw new RangeError("Varint is longer than 10 bytes");
}

function readInt64(reader: Reader): bigint {
  const { low, high } = readVarint64(reader);
  if (high === 0) return BigInt(low);
  if (high === 0xffffffff && low !== 0) return BigInt(low - TWO_TO_32);
  return BigInt.asIntN(64, (BigInt(high) << 32n) | BigInt(low));
}

function readDouble(reader: Reader): number {
  const { bytes, offset } = reader;
  if (offset + 8 > bytes.length) truncated();
  reader.offset = offset + 8;
  return new DataView(bytes.buffer, bytes.byteOffset + offset, 8).getFloat64(
    0,
    true,
  );
}

/** Skips the field whose tag `reader` has just read, inside `depth` groups. */
function skipField(reader: Reader, depth = 0): void {
  const wireType = reader.wireType;
  switch (wireType) {
    case WIRE_VARINT:
      readVarint64(reader);
      return;
    case WIRE_FIXED64:
      reader.offset += 8;
      break;
    case WIRE_LENGTH_DELIMITED: {
      const { low, high } = readVarint64(reader);
      if (high !== 0) truncated();
      reader.offset += low;
      break;
    }
    case WIRE_START_GROUP:
      skipGroup(reader, depth + 1);
      return;
    case WIRE_FIXED32:
      reader.offset += 4;
      break;
    default:
      // An end-group tag without its start, or wire type 6 or 7.
      throw new RangeError(`Wire type is not supported: ${wireType}`);
  }
  if (reader.offset > reader.bytes.length) truncated();
}

/**
 * Skips the fields of the group (a proto2 encoding) whose start tag `reader` has just read, up
 * to its end tag, groups within included.
 */
function skipGroup(reader: Reader, depth: number): void {
  const field = reader.field;
  if (depth > MAX_GROUP_DEPTH) {
    throw new RangeError("Groups are nested too deeply");
  }
  while (reader.offset < reader.bytes.length) {
    const { low: tag, high } = readVarint64(reader);
    if (high !== 0 || tag >>> 3 === 0) {
      throw new RangeError("Field number is invalid");
    }
    if ((tag & 7) === WIRE_END_GROUP) {
      if (tag >>> 3 !== field) {
        throw new RangeError(
          `Group ${field} ends with the tag of ${tag >>> 3}`,
        );
      }
      return;
    }
    reader.field = tag >>> 3;
    reader.wireType = tag & 7;
    skipField(reader, depth);
  }
  truncated();
}

/**
 * Reads every field of a message, handing the known ones to `onField` and skipping the rest.
 */
function readFields(
  bytes: Uint8Array,
  onField: (reader: Reader) => boolean,
): void {
  const reader: Reader = { bytes, offset: 0, field: 0, wireType: 0 };
  while (reader.offset < bytes.length) {
    const { low: tag, high } = readVarint64(reader);
    if (high !== 0 || tag >>> 3 === 0) {
      throw new RangeError("Field number is invalid");
    }
    reader.field = tag >>> 3;
    reader.wireType = tag & 7;
    if (!onField(reader)) skipField(reader);
  }
}

/** Checks the wire type of the field whose tag `reader` has just read. */
function expectWireType(reader: Reader, expected: number): void {
  if (reader.wireType !== expected) {
    throw new RangeError(
      `Field ${reader.field} has wire type ${reader.wireType}, expected ${expected}`,
    );
  }
}

/** Encodes an int64 into field 1 (tag 0x08) as protobuf does: zero is left out. */
function encodeInt64Field1(value: bigint): Buffer {
  if (value === 0n) return Buffer.alloc(0);
  const out = Buffer.allocUnsafe(11);
  return out.subarray(0, writeInt64Field1(value, out));
}

/**
 * The same into bytes the next call reuses, for a caller that copies them at once: a short
 * call's replies then cost no allocation (under Deno every new byte array, however small, has
 * memory of its own outside V8's heap, and a `Buffer` a view of a pool).
 */
function int64Field1Scratch(value: bigint): Uint8Array {
  if (value === 0n) return INT64_VIEWS[0]!;
  return INT64_VIEWS[writeInt64Field1(value, INT64_SCRATCH)]!;
}

const INT64_SCRATCH = new Uint8Array(11);
/** A view of the first `n` bytes of {@linkcode INT64_SCRATCH} at index `n`. */
const INT64_VIEWS = Array.from(
  { length: 12 },
  (_, length) => INT64_SCRATCH.subarray(0, length),
);

/** Writes field 1 of a non-zero int64 into `out` from its start; returns its length. */
function writeInt64Field1(value: bigint, out: Uint8Array): number {
  let low: number;
  let high: number;
  if (value > 0n && value < 0x80000000n) {
    low = Number(value);
    high = 0;
  } else {
    const bits = BigInt.asUintN(64, value);
    low = Number(bits & 0xffffffffn);
    high = Number(bits >> 32n);
  }
  out[0] = 0x08;
  let offset = 1;
  while (high > 0 || low > 0x7f) {
    out[offset++] = (low & 0x7f) | 0x80;
    low = ((low >>> 7) | (high << 25)) >>> 0;
    high >>>= 7;
  }
  out[offset++] = low;
  return offset;
}

/** Encodes a double into field 1 (tag 0x09); `0` is left out, `-0` is kept as protobuf does. */
function encodeDoubleField1(value: number): Buffer {
  if (value === 0 && !Object.is(value, -0)) return Buffer.alloc(0);
  const out = Buffer.allocUnsafe(9);
  out[0] = 0x09;
  out.writeDoubleLE(value, 1);
  return out;
}

const DOUBLE_SCRATCH = new Uint8Array(9);
const DOUBLE_VIEW = new DataView(DOUBLE_SCRATCH.buffer);
const NO_DOUBLE = DOUBLE_SCRATCH.subarray(0, 0);

/** The same into bytes the next call reuses, as {@linkcode int64Field1Scratch} does. */
function doubleField1Scratch(value: number): Uint8Array {
  if (value === 0 && !Object.is(value, -0)) return NO_DOUBLE;
  DOUBLE_SCRATCH[0] = 0x09;
  DOUBLE_VIEW.setFloat64(1, value, true);
  return DOUBLE_SCRATCH;
}

function checkInt64(value: bigint, what: string): void {
  if (typeof value !== "bigint" || BigInt.asIntN(64, value) !== value) {
    throw new RangeError(`${what} is not an int64: ${value}`);
  }
}

function checkDouble(value: number, what: string): void {
  if (typeof value !== "number") {
    throw new TypeError(`${what} is not a number: ${value}`);
  }
}

/** `stream.ServerStreamReq` */
export interface PowRequest {
  /** The base. */
  number: bigint;
  /** How many powers to send; 0 means the demo's 10. */
  count: number;
}

/** `stream.ServerStreamResp` */
export interface PowReply {
  /** One power. */
  number: bigint;
}

/** `stream.ClientStreamReq` */
export interface SumRequest {
  /** One addend. */
  number: bigint;
}

/** `stream.ClientStreamResp` */
export interface SumReply {
  /** The total. */
  sum: bigint;
}

/** `stream.AllStreamReq` */
export interface SqrtRequest {
  /** The number to take the square root of. */
  number: number;
}

/** `stream.AllStreamResp` */
export interface SqrtReply {
  /** The square root. */
  sqrt: number;
}

/** Encodes a `stream.ServerStreamReq`. */
export function encodePowRequest(message: PowRequest): Buffer {
  checkInt64(message.number, "Pow request number");
  const count = message.count;
  if (!Number.isInteger(count) || count < 0 || count >= TWO_TO_32) {
    throw new RangeError(`Pow request count is not a uint32: ${count}`);
  }
  const number = encodeInt64Field1(message.number);
  if (count === 0) return number;
  const out = Buffer.allocUnsafe(number.length + 6);
  out.set(number, 0);
  let offset = number.length;
  out[offset++] = 0x10;
  let rest = count;
  while (rest > 0x7f) {
    out[offset++] = (rest & 0x7f) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[offset++] = rest;
  return out.subarray(0, offset);
}

/** Decodes a `stream.ServerStreamReq`. */
export function decodePowRequest(bytes: Uint8Array): PowRequest {
  const message: PowRequest = { number: 0n, count: 0 };
  readFields(bytes, (reader) => {
    if (reader.field === 1) {
      expectWireType(reader, WIRE_VARINT);
      message.number = readInt64(reader);
      return true;
    }
    if (reader.field === 2) {
      expectWireType(reader, WIRE_VARINT);
      message.count = readVarint64(reader).low;
      return true;
    }
    return false;
  });
  return message;
}

function decodeInt64Message(bytes: Uint8Array): bigint {
  let value = 0n;
  readFields(bytes, (reader) => {
    if (reader.field !== 1) return false;
    expectWireType(reader, WIRE_VARINT);
    value = readInt64(reader);
    return true;
  });
  return value;
}

function decodeDoubleMessage(bytes: Uint8Array): number {
  let value = 0;
  readFields(bytes, (reader) => {
    if (reader.field !== 1) return false;
    expectWireType(reader, WIRE_FIXED64);
    value = readDouble(reader);
    return true;
  });
  return value;
}

/** Encodes a `stream.ServerStreamResp`. */
export function encodePowReply(message: PowReply): Buffer {
  checkInt64(message.number, "Pow reply number");
  return encodeInt64Field1(message.number);
}

/**
 * Encodes a `stream.ServerStreamResp` as {@linkcode encodePowReply} does, into bytes that the
 * next call of it reuses: for the server's reply writer, which copies them into its own chunk
 * at once.
 *
 * @param message The reply.
 * @returns Its bytes, without the gRPC prefix, valid until the next call.
 * @throws {RangeError} When the number is not an int64.
 */
export function powReplyBytes(message: PowReply): Uint8Array {
  checkInt64(message.number, "Pow reply number");
  return int64Field1Scratch(message.number);
}

/** Decodes a `stream.ServerStreamResp`. */
export function decodePowReply(bytes: Uint8Array): PowReply {
  return { number: decodeInt64Message(bytes) };
}

/** Encodes a `stream.ClientStreamReq`. */
export function encodeSumRequest(message: SumRequest): Buffer {
  checkInt64(message.number, "Sum request number");
  return encodeInt64Field1(message.number);
}

/** Decodes a `stream.ClientStreamReq`. */
export function decodeSumRequest(bytes: Uint8Array): SumRequest {
  return { number: decodeInt64Message(bytes) };
}

/** Encodes a `stream.ClientStreamResp`. */
export function encodeSumReply(message: SumReply): Buffer {
  checkInt64(message.sum, "Sum reply");
  return encodeInt64Field1(message.sum);
}

/** Decodes a `stream.ClientStreamResp`. */
export function decodeSumReply(bytes: Uint8Array): SumReply {
  return { sum: decodeInt64Message(bytes) };
}

/** Encodes a `stream.AllStreamReq`. */
export function encodeSqrtRequest(message: SqrtRequest): Buffer {
  checkDouble(message.number, "Sqrt request number");
  return encodeDoubleField1(message.number);
}

/** Decodes a `stream.AllStreamReq`. */
export function decodeSqrtRequest(bytes: Uint8Array): SqrtRequest {
  return { number: decodeDoubleMessage(bytes) };
}

/** Encodes a `stream.AllStreamResp`. */
export function encodeSqrtReply(message: SqrtReply): Buffer {
  checkDouble(message.sqrt, "Sqrt reply");
  return encodeDoubleField1(message.sqrt);
}

/**
 * Encodes a `stream.AllStreamResp` as {@linkcode encodeSqrtReply} does, into bytes that the
 * next call of it reuses: for the server's reply writer, which copies them into its own chunk
 * at once.
 *
 * @param message The reply.
 * @returns Its bytes, without the gRPC prefix, valid until the next call.
 * @throws {RangeError} When the root is not a number.
 */
export function sqrtReplyBytes(message: SqrtReply): Uint8Array {
  checkDouble(message.sqrt, "Sqrt reply");
  return doubleField1Scratch(message.sqrt);
}

/** Decodes a `stream.AllStreamResp`. */
export function decodeSqrtReply(bytes: Uint8Array): SqrtReply {
  return { sqrt: decodeDoubleMessage(bytes) };
}

/**
 * Reads the number of a `ClientStreamReq` (a `Sum` request) in its common shape, field 1 as
 * a varint of at most 4 bytes (0 to 2^28-1), without a bigint; the empty message is 0. The
 * shape of nearly every number a `Sum` adds.
 *
 * @param span Where the message lies.
 * @returns The number, or -1 for any other shape, which {@linkcode readSumNumber} reads.
 */
export function readSmallSumNumber(span: Readonly<MessageSpan>): number {
  const { bytes, start, end } = span;
  const length = end - start;
  if (length === 0) return 0;
  if (length > 5 || bytes[start] !== 0x08) return -1;
  let value = 0;
  let shift = 0;
  for (let offset = start + 1; offset < end; offset++) {
    const byte = bytes[offset]!;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return offset === end - 1 ? value : -1;
  }
  return -1;
}

/**
 * Reads the number of a `ClientStreamReq` (a `Sum` request) of any shape.
 *
 * @param span Where the message lies.
 * @returns The number.
 * @throws {RangeError} If the message is malformed.
 */
export function readSumNumber(span: Readonly<MessageSpan>): bigint {
  return decodeSumRequest(span.bytes.subarray(span.start, span.end)).number;
}

/** The bytes of one double, little-endian, to read through `SCRATCH_DOUBLE`. */
const SCRATCH_BYTES = new Uint8Array(8);
const SCRATCH_DOUBLE = new Float64Array(SCRATCH_BYTES.buffer);
SCRATCH_DOUBLE[0] = 1;
/** Whether this platform stores doubles little-endian, as protobuf sends them. */
const LITTLE_ENDIAN = SCRATCH_BYTES[7] === 0x3f;

/**
 * Reads the number of an `AllStreamReq` (a `Sqrt` request): the common shape (tag 0x09 and 8
 * bytes) at once, any other decoded.
 *
 * @param span Where the message lies.
 * @returns The number.
 * @throws {RangeError} If the message is malformed.
 */
export function readSqrtNumber(span: Readonly<MessageSpan>): number {
  const { bytes, start, end } = span;
  if (end === start) return 0;
  if (LITTLE_ENDIAN && end - start === 9 && bytes[start] === 0x09) {
    for (let index = 0; index < 8; index++) {
      SCRATCH_BYTES[index] = bytes[start + 1 + index]!;
    }
    return SCRATCH_DOUBLE[0]!;
  }
  return decodeSqrtRequest(bytes.subarray(start, end)).number;
}
