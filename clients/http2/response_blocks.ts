/**
 * A client connection's response header blocks (headers and trailers), decoded in the order
 * they arrive (one HPACK decoder per connection: every block must be decoded, even one whose
 * stream is gone, to keep the decoder's table the server's) and read as the object
 * `node:http2` hands a client stream's listeners, `:status` a number.
 *
 * @module
 */
import type http2 from "node:http2";
import {
  FORBIDDEN_VALUE,
  joinField,
} from "../../proto/http2/header_objects.ts";
import { HpackDecoder } from "../../proto/http2/hpack_decoder.ts";

/** The largest response header list taken, as `node:http2`'s default. */
export const MAX_HEADER_LIST = 65_536;

/** What one header block says. */
export type DecodedResponse =
  | { kind: "headers"; headers: http2.IncomingHttpHeaders }
  /** A header list past {@linkcode MAX_HEADER_LIST}: its stream is reset. */
  | { kind: "oversized"; error: Error }
  /**
   * A value with NUL, CR or LF, which make a response malformed (RFC 9113 §8.2.1): its
   * stream is reset, as `node:http2` resets it.
   */
  | { kind: "malformed"; error: Error };

/**
 * One connection's response blocks.
 *
 * @example
 * ```ts ignore
 * const blocks = new ResponseBlocks();
 * const response = blocks.decode(frame.block);
 * ```
 */
export class ResponseBlocks {
  readonly #decoder = new HpackDecoder({ maxListBytes: MAX_HEADER_LIST });

  /**
   * Decodes one block.
   *
   * @param block The encoded block.
   * @returns Its headers, or why its stream is reset.
   * @throws {RangeError} When HPACK cannot decode it: the connection must end.
   */
  decode(block: Uint8Array): DecodedResponse {
    const decoded = this.#decoder.decode(block);
    if (decoded.oversized) {
      return {
        kind: "oversized",
        error: new Error(
          `Response header list too large: ${decoded.listBytes} bytes, limit ${MAX_HEADER_LIST}`,
        ),
      };
    }
    if (decoded.forbiddenValues) {
      const [name] = decoded.fields.find(([, value]) =>
        FORBIDDEN_VALUE.test(value)
      )!;
      return {
        kind: "malformed",
        error: new Error(`Invalid value in response header: ${name}`),
      };
    }
    const headers: Record<string, string | string[]> = {};
    for (const field of decoded.fields) joinField(headers, field);
    const status = headers[":status"];
    return {
      kind: "headers",
      headers: {
        ...headers,
        ...(typeof status === "string" ? { ":status": Number(status) } : {}),
      } as http2.IncomingHttpHeaders,
    };
  }
}
