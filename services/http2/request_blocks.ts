/**
 * A connection's request header blocks, decoded in the order they arrive (one HPACK
 * decoder per connection: every block must be decoded, even one whose stream is refused, to
 * keep the decoder's table the peer's) and read as a request: its headers, or why its stream
 * is refused, or why the connection must end.
 *
 * @module
 */
import type http2 from "node:http2";
import { HpackDecoder } from "../../proto/http2/hpack_decoder.ts";
import { requestHeaders } from "./header_fields.ts";

/** gRPC's status for a header list past the limit. */
const RESOURCE_EXHAUSTED = 8;

/** What one header block says. */
export type DecodedRequest =
  /** A request's headers (or trailers, which the connection does not read). */
  | { kind: "request"; headers: http2.IncomingHttpHeaders }
  /** A malformed request (RFC 9113 §8.1.1): its stream is reset. */
  | { kind: "malformed"; reason: string }
  /** A header list past the limit: the call is answered with this, at once. */
  | { kind: "oversized"; answer: http2.OutgoingHttpHeaders }
  /** A block HPACK cannot decode: the connection ends (COMPRESSION_ERROR). */
  | { kind: "undecodable"; reason: string };

/**
 * The header blocks of one connection.
 *
 * @example
 * ```ts
 * import { RequestBlocks } from "./request_blocks.ts";
 *
 * const blocks = new RequestBlocks(65_536);
 * const decoded = blocks.read(new Uint8Array(0));
 * ```
 */
export class RequestBlocks {
  readonly #decoder: HpackDecoder;
  readonly #maxHeaderList: number;

  /**
   * @param maxHeaderList The largest header list a peer may send (as `name + value + 32`).
   */
  constructor(maxHeaderList: number) {
    this.#maxHeaderList = maxHeaderList;
    this.#decoder = new HpackDecoder({ maxListBytes: maxHeaderList });
  }

  /**
   * Decodes the next block of the connection.
   *
   * @param block The encoded block, its CONTINUATIONs joined.
   * @returns What it says.
   */
  read(block: Uint8Array): DecodedRequest {
    let decoded;
    try {
      decoded = this.#decoder.decode(block);
    } catch (error) {
      return {
        kind: "undecodable",
        reason: `Header block cannot be decoded: ${(error as Error).message}`,
      };
    }
    if (decoded.oversized) {
      return {
        kind: "oversized",
        answer: {
          ":status": 200,
          "content-type": "application/grpc+proto",
          "grpc-status": RESOURCE_EXHAUSTED,
          "grpc-message": encodeURI(
            `Header list too large: ${decoded.listBytes} bytes, the most is ${this.#maxHeaderList}`,
          ),
        },
      };
    }
    const request = requestHeaders(decoded.fields, decoded.forbiddenValues);
    return request.ok
      ? { kind: "request", headers: request.headers }
      : { kind: "malformed", reason: request.reason };
  }
}
