/**
 * A request's header fields as the server reads them: checked as RFC 9113 §8.2 and §8.3 ask
 * of a server (the stream is malformed otherwise) and joined into the object `node:http2`
 * hands to a server's stream listeners.
 *
 * @module
 */
import type http2 from "node:http2";
import {
  FORBIDDEN_VALUE,
  joinField,
} from "../../proto/http2/header_objects.ts";

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

/**
 * The object a request's headers are joined into: no inherited names (a field named
 * `constructor` or `__proto__` is a field like any other), as with `Object.create(null)`,
 * but with the fast properties of a class's instances, which V8 keeps in less memory and
 * reads faster than the dictionary an `Object.create(null)` gets.
 */
class RequestHeaderObject {}
Object.setPrototypeOf(RequestHeaderObject.prototype, null);
delete (RequestHeaderObject.prototype as { constructor?: unknown }).constructor;

/** A request's fields, or why the stream carrying them is malformed. */
export type RequestHeaders =
  | { ok: true; headers: http2.IncomingHttpHeaders }
  | { ok: false; reason: string };

/**
 * Checks a request's header fields and joins them into the object `node:http2` gives: a
 * repeated field's values joined with `, ` (`cookie` with `; `, `set-cookie` kept as a list).
 *
 * @param fields The decoded fields, in order.
 * @param forbiddenValues Whether the decoder found a value with NUL, CR or LF among them:
 * then the first such field is named in the reason.
 * @returns The headers, or why they make a malformed request.
 */
export function requestHeaders(
  fields: readonly Field[],
  forbiddenValues: boolean,
): RequestHeaders {
  const headers = new RequestHeaderObject() as Record<
    string,
    string | string[]
  >;
  let regular = false;
  for (let index = 0; index < fields.length; index++) {
    const field = fields[index]!;
    const name = field[0];
    const value = field[1];
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
    joinField(headers, field);
  }
  if (forbiddenValues) {
    for (let index = 0; index < fields.length; index++) {
      if (FORBIDDEN_VALUE.test(fields[index]![1])) {
        return malformed(`Invalid value in field: ${fields[index]![0]}`);
      }
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
