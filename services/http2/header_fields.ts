/**
 * Header fields between HPACK's lists and the objects `node:http2` hands to a server's
 * stream listeners: a request's fields are checked as RFC 9113 §8.2 and §8.3 ask of a server
 * (the stream is malformed otherwise) and joined as `node:http2` joins them; a response's
 * object is flattened into the list the encoder writes, pseudo-headers first.
 *
 * @module
 */
import type http2 from "node:http2";

/** One header field: its name and its value. */
export type Field = readonly [name: string, value: string];

/** The pseudo-headers a request may carry. */
const REQUEST_PSEUDO = new Set([":method", ":scheme", ":path", ":authority"]);

/** Fields that are about one connection, which HTTP/2 forbids (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
]);

/** A name is a token in lowercase: RFC 9110's tchar without the capitals. */
const NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** Names checked already: a connection's requests repeat the same few. */
const validNames = new Set<string>();
/** How many checked names are kept, so that a peer's made-up names cannot grow the set. */
const MAX_VALID_NAMES = 256;

/** Octets a value may not hold (RFC 9113 §8.2.1): NUL, CR and LF. */
const FORBIDDEN_VALUE = /[\0\r\n]/;

/** A request's fields, or why the stream carrying them is malformed. */
export type RequestHeaders =
  | { ok: true; headers: http2.IncomingHttpHeaders }
  | { ok: false; reason: string };

/**
 * Checks a request's header fields and joins them into the object `node:http2` gives: a
 * repeated field's values joined with `, ` (`cookie` with `; `, `set-cookie` kept as a list).
 *
 * @param fields The decoded fields, in order.
 * @returns The headers, or why they make a malformed request.
 */
export function requestHeaders(fields: readonly Field[]): RequestHeaders {
  const headers: Record<string, string | string[]> = Object.create(null);
  let regular = false;
  for (const [name, value] of fields) {
    if (name.startsWith(":")) {
      if (regular) return malformed(`Pseudo-header after a field: ${name}`);
      if (!REQUEST_PSEUDO.has(name)) {
        return malformed(`Unknown pseudo-header: ${name}`);
      }
      if (name in headers) {
        return malformed(`Repeated pseudo-header: ${name}`);
      }
      headers[name] = value;
      continue;
    }
    regular = true;
    if (!validNames.has(name)) {
      if (!NAME.test(name)) return malformed(`Invalid field name: ${name}`);
      if (validNames.size < MAX_VALID_NAMES) validNames.add(name);
    }
    if (CONNECTION_SPECIFIC.has(name)) {
      return malformed(`Connection-specific field: ${name}`);
    }
    if (name === "te" && value !== "trailers") {
      return malformed(`Field te other than trailers: ${value}`);
    }
    const existing = headers[name];
    if (existing === undefined) {
      headers[name] = name === "set-cookie" ? [value] : value;
    } else if (Array.isArray(existing)) {
      existing.push(value);
    } else {
      headers[name] = `${existing}${name === "cookie" ? "; " : ", "}${value}`;
    }
  }
  for (const [name, value] of fields) {
    if (FORBIDDEN_VALUE.test(value)) {
      return malformed(`Invalid value in field: ${name}`);
    }
  }
  const method = headers[":method"];
  if (method === undefined) return malformed("Missing pseudo-header: :method");
  if (method === "CONNECT") {
    return malformed("CONNECT is not served");
  }
  if (headers[":scheme"] === undefined) {
    return malformed("Missing pseudo-header: :scheme");
  }
  if (!headers[":path"]) return malformed("Missing pseudo-header: :path");
  return { ok: true, headers: headers as http2.IncomingHttpHeaders };
}

function malformed(reason: string): RequestHeaders {
  return { ok: false, reason };
}

/**
 * Flattens a response's (or trailers') header object into fields: pseudo-headers first,
 * names in lowercase, a list's values as repeated fields, numbers as text.
 *
 * @param headers The object a stream's `respond` or `sendTrailers` got.
 * @returns The fields, in the order to encode them.
 * @throws {TypeError} When a name or value cannot be sent in HTTP/2.
 */
export function responseFields(headers: http2.OutgoingHttpHeaders): Field[] {
  const pseudo: Field[] = [];
  const regular: Field[] = [];
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
