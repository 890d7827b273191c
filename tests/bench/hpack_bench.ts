/**
 * What the server's HPACK coding costs per gRPC call: the response headers and trailers
 * grpc-js sends for a call that succeeds, into the caller's buffer and into new arrays; and a
 * typical request's header block through a new decoder.
 *
 * Run: `deno bench tests/bench/hpack_bench.ts`
 *
 * @module
 */
import { HpackDecoder } from "../../proto/http2/hpack_decoder.ts";
import {
  encodeHeaderBlock,
  encodeHeaderBlockInto,
  type HeaderField,
} from "../../proto/http2/hpack_encoder.ts";

const HEADERS: readonly HeaderField[] = [
  [":status", "200"],
  ["content-type", "application/grpc"],
  ["grpc-accept-encoding", "identity,deflate,gzip"],
  ["grpc-encoding", "identity"],
];
const TRAILERS: readonly HeaderField[] = [
  ["grpc-status", "0"],
  ["grpc-message", ""],
];
const REQUEST: readonly HeaderField[] = [
  [":method", "POST"],
  [":scheme", "http"],
  [":path", "/stream.ServerStream/Pow"],
  [":authority", "127.0.0.1:50051"],
  ["content-type", "application/grpc"],
  ["te", "trailers"],
  ["grpc-accept-encoding", "identity,deflate,gzip"],
  ["user-agent", "grpc-node-js/1.14.7"],
];

const target = new Uint8Array(16384);
const requestBlock = encodeHeaderBlock(REQUEST);

Deno.bench("encodeHeaderBlockInto", { group: "encode", baseline: true }, () => {
  encodeHeaderBlockInto(HEADERS, target);
  encodeHeaderBlockInto(TRAILERS, target);
});

Deno.bench("encodeHeaderBlock (new arrays)", { group: "encode" }, () => {
  encodeHeaderBlock(HEADERS);
  encodeHeaderBlock(TRAILERS);
});

Deno.bench("decode a request's block, a new decoder", () => {
  new HpackDecoder().decode(requestBlock);
});
