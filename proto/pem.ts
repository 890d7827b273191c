/**
 * The form in which both the client and the server take certificates and keys.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { toBuffer } from "./bytes.ts";

/**
 * Checks that `value` is PEM text or its bytes.
 *
 * @param value A certificate chain, a key, or CA certificates, as a caller passed it.
 * @param what What the value is, for the error message.
 * @returns `value`.
 * @throws {TypeError} If `value` is anything else, `undefined` included.
 */
function requirePem(value: unknown, what: string): string | Uint8Array {
  if (typeof value === "string" || value instanceof Uint8Array) return value;
  throw new TypeError(
    `${what} must be PEM text or its bytes: ${
      value === null ? "null" : typeof value
    }`,
  );
}

/**
 * Checks that `value` is PEM text, its bytes, or absent.
 *
 * @param value A certificate chain, a key, or CA certificates, as a caller passed it.
 * @param what What the value is, for the error message.
 * @throws {TypeError} If `value` is anything else.
 */
export function checkPem(
  value: unknown,
  what: string,
): asserts value is string | Uint8Array | undefined {
  if (value !== undefined) requirePem(value, what);
}

/**
 * Checks that `value` is PEM text or its bytes, and gives it as grpc-js and `node:tls` take
 * it: a `Buffer`, over the caller's bytes rather than a copy of them.
 *
 * @param value A certificate chain, a key, or CA certificates, as a caller passed it.
 * @param what What the value is, for the error message.
 * @returns The PEM as a `Buffer`.
 * @throws {TypeError} If `value` is anything else, `undefined` included.
 */
export function pemBuffer(value: unknown, what: string): Buffer {
  const pem = requirePem(value, what);
  return typeof pem === "string" ? Buffer.from(pem) : toBuffer(pem);
}
