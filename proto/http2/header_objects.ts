/**
 * Header fields between HPACK's lists and the objects `node:http2` hands around, for both
 * sides' own connections: an object flattened into the list the encoder writes (a request's
 * headers, a response's, trailers), and a received field joined into an object as
 * `node:http2` joins a repeated one.
 *
 * @module
 */
import type http2 from "node:http2";
import type { HeaderField } from "./hpack_static_table.ts";

/** Octets a value may not hold (RFC 9113 §8.2.1): NUL, CR and LF. */
export const FORBIDDEN_VALUE: RegExp = /[\0\r\n]/;

/** The fields of each frozen header object, flattened once: a server's constant headers. */
const frozenFields = new WeakMap<object, readonly HeaderField[]>();

/**
 * Flattens a header object into fields: pseudo-headers first, names in lowercase, a list's
 * values as repeated fields, numbers as text. A frozen object (a constant set of response
 * headers or trailers) is flattened once, and its fields are the same frozen list each time.
 *
 * @param headers The object a stream's `respond`, `sendTrailers` or a `request` got.
 * @returns The fields, in the order to encode them.
 * @throws {TypeError} When a name or value cannot be sent in HTTP/2.
 */
export function fieldsOf(
  headers: http2.OutgoingHttpHeaders,
): readonly HeaderField[] {
  if (!Object.isFrozen(headers)) return flatten(headers);
  let fields = frozenFields.get(headers);
  if (fields === undefined) {
    fields = Object.freeze(flatten(headers));
    frozenFields.set(headers, fields);
  }
  return fields;
}

function flatten(headers: http2.OutgoingHttpHeaders): HeaderField[] {
  const pseudo: HeaderField[] = [];
  const regular: HeaderField[] = [];
  for (const key of Object.keys(headers)) {
    const value = headers[key];
    if (value === undefined || value === null) continue;
    const name = key.toLowerCase();
    const into = name.startsWith(":") ? pseudo : regular;
    if (Array.isArray(value)) {
      for (const item of value) into.push([name, checkedValue(name, item)]);
    } else {
      into.push([name, checkedValue(name, value)]);
    }
  }
  return pseudo.length === 0 ? regular : pseudo.concat(regular);
}

function checkedValue(name: string, value: unknown): string {
  const text = String(value);
  if (FORBIDDEN_VALUE.test(text)) {
    throw new TypeError(`Invalid value for header: ${name}`);
  }
  return text;
}

/**
 * Adds one received field to a header object as `node:http2` does: a repeated field's values
 * joined with `, ` (`cookie` with `; `), `set-cookie` kept as a list.
 *
 * @param headers The object being built.
 * @param field The field's name and value.
 */
export function joinField(
  headers: Record<string, string | string[]>,
  [name, value]: HeaderField,
): void {
  const existing = headers[name];
  if (existing === undefined) {
    headers[name] = name === "set-cookie" ? [value] : value;
  } else if (Array.isArray(existing)) {
    existing.push(value);
  } else {
    headers[name] = `${existing}${name === "cookie" ? "; " : ", "}${value}`;
  }
}
