/**
 * What Deno's `node:http2` costs for a `Sum` sent one frame per message: a bare `node:http2`
 * server with no gRPC library, taking each DATA frame from its stream's native handle
 * (`onread`), adding the numbers and answering with the sum. Every frame costs it Deno's
 * per-frame buffer and call into JavaScript; our server reads the frames from the socket's
 * bytes before nghttp2 (`services/frame_tap.ts`) and skips that cost, so it can run faster.
 *
 * It reads only what the grpc-go load client sends (non-negative numbers whose sum stays
 * below 2^53) and checks nothing else: a measuring device, not a server.
 *
 * Run: `deno run --allow-net=127.0.0.1 tests/bench/floor_server.ts`
 *
 * @module
 */
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import { serveUntilStdinEnds } from "./common.ts";

/** Adds the numbers of a byte stream of `Sum` requests, messages cut anywhere. */
class Adder {
  total = 0;
  #pending: Uint8Array | undefined;

  write(chunk: Uint8Array): void {
    let bytes = chunk;
    const pending = this.#pending;
    if (pending !== undefined) {
      bytes = new Uint8Array(pending.length + chunk.length);
      bytes.set(pending);
      bytes.set(chunk, pending.length);
      this.#pending = undefined;
    }
    let offset = 0;
    while (bytes.length - offset >= 5) {
      const size = ((bytes[offset + 1]! << 24) >>> 0) +
        (bytes[offset + 2]! << 16) + (bytes[offset + 3]! << 8) +
        bytes[offset + 4]!;
      if (bytes.length - offset - 5 < size) break;
      // A field 1 varint after its tag, or nothing for 0.
      let position = offset + 6;
      let scale = 1;
      for (let left = size - 1; left > 0; left--) {
        const byte = bytes[position++]!;
        this.total += (byte & 0x7f) * scale;
        scale *= 128;
      }
      offset += 5 + size;
    }
    if (offset < bytes.length) this.#pending = bytes.slice(offset);
  }
}

function reply(total: number): Buffer {
  const varint: number[] = [];
  let rest = BigInt(total);
  do {
    const low = Number(rest & 0x7fn);
    rest >>= 7n;
    varint.push(rest > 0n ? low | 0x80 : low);
  } while (rest > 0n);
  const message = Buffer.alloc(6 + varint.length);
  message.writeUInt32BE(1 + varint.length, 1);
  message[5] = 0x08;
  message.set(varint, 6);
  return message;
}

let handleKey: symbol | undefined;

const server = http2.createServer();
server.on("stream", (stream: http2.ServerHttp2Stream) => {
  const adder = new Adder();
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
    waitForTrailers: true,
  });
  // Deno 2.9's own path: frames through the Readable, one 'data' event each. The listener
  // stays even with the handle path below: without one, Deno 2.9.6 stops granting window.
  stream.on("data", (chunk: Uint8Array) => adder.write(chunk));
  stream.on("end", () => stream.end(reply(adder.total)));
  handleKey ??= Object.getOwnPropertySymbols(stream).find((key) =>
    key.description === "kHandle"
  );
  const handle = handleKey === undefined
    ? undefined
    : (stream as unknown as Record<symbol, {
      onread: (bytes: Uint8Array | undefined, length?: number) => unknown;
    }>)[handleKey];
  if (handle !== undefined && typeof handle.onread === "function") {
    const original = handle.onread;
    handle.onread = function (bytes, length) {
      if (
        typeof length === "number" && length > 0 && bytes !== undefined &&
        stream.readableLength === 0
      ) {
        adder.write(
          bytes.length === length ? bytes : bytes.subarray(0, length),
        );
        return undefined;
      }
      return original.call(this, bytes, length);
    };
  }
});
await serveUntilStdinEnds(server);
