/**
 * Bytes as `node:` APIs take them: a `Buffer` over the caller's bytes, not a copy.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/**
 * Views `bytes` as a `Buffer`, sharing their memory.
 *
 * @param bytes Any bytes.
 * @returns A `Buffer` over the same memory.
 */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
