/**
 * What a hand-written HTTP/2 layer costs a short call under Deno: a gRPC server that frames
 * HTTP/2 itself over a `node:net` socket (no `node:http2`, no nghttp2, no grpc-js) and answers
 * the article's three methods as `short_floor_server.ts` answers them, with the same replies.
 * Beside that `node:http2` floor, it shows how much of a short call's cost is Deno's
 * `node:http2` rather than HTTP/2 itself.
 *
 * The framing (`raw_h2/connection.ts`) decodes every header block with a real HPACK decoder
 * (`raw_h2/hpack_decoder.ts`) and sends everything one socket read answers in one write. It
 * skips what a server owes a real peer: the peer's flow-control windows for what it sends
 * (short calls' replies are tiny; a stream run's would break the connection), limits (frame, header list and stream counts), validation of frames
 * and headers, protections against hostile peers, deadlines (`grpc-timeout`) and
 * cancellation of calls. Like `short_floor_server.ts`, it reads only what the benchmark's
 * load clients send (a `Pow` base and count, non-negative `Sum` numbers whose total stays
 * below 2^53, `Sqrt` numbers): a measuring device, not a server.
 *
 * Run: `deno run --allow-net=127.0.0.1 tests/bench/raw_h2_floor_server.ts`
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import net from "node:net";
import { announcePort, stdinClosed } from "./common.ts";
import { H2Connection } from "./raw_h2/connection.ts";

/** Reads a varint at `offset`; the value and where the next field starts. */
function readVarint(bytes: Uint8Array, offset: number): [number, number] {
  let value = 0;
  let scale = 1;
  let position = offset;
  for (;;) {
    const byte = bytes[position++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, position];
    scale *= 128;
  }
}

/** The gRPC messages of a request body, each as its own bytes. */
function messagesOf(body: Uint8Array): Uint8Array[] {
  const messages: Uint8Array[] = [];
  let offset = 0;
  while (body.length - offset >= 5) {
    const size = ((body[offset + 1]! << 24) >>> 0) + (body[offset + 2]! << 16) +
      (body[offset + 3]! << 8) + body[offset + 4]!;
    messages.push(body.subarray(offset + 5, offset + 5 + size));
    offset += 5 + size;
  }
  return messages;
}

/** Field `field` of `message` as a varint, 0 when absent. */
function varintField(message: Uint8Array, field: number): number {
  let offset = 0;
  while (offset < message.length) {
    const [tag, next] = readVarint(message, offset);
    if (tag === (field << 3)) return readVarint(message, next)[0];
    offset = (tag & 7) === 1 ? next + 8 : readVarint(message, next)[1];
  }
  return 0;
}

/** Field 1 of `message` as a double, 0 when absent. */
function doubleField(message: Uint8Array): number {
  if (message.length < 9) return 0;
  return new DataView(message.buffer, message.byteOffset + 1, 8).getFloat64(
    0,
    true,
  );
}

function varintMessage(value: number): Uint8Array {
  const varint: number[] = [];
  let rest = value;
  do {
    const low = rest % 128;
    rest = Math.floor(rest / 128);
    varint.push(rest > 0 ? low | 0x80 : low);
  } while (rest > 0);
  return Uint8Array.from(value === 0 ? [] : [0x08, ...varint]);
}

function doubleMessage(value: number): Uint8Array {
  if (value === 0) return new Uint8Array(0);
  const message = new Uint8Array(9);
  message[0] = 0x09;
  new DataView(message.buffer).setFloat64(1, value, true);
  return message;
}

function answer(path: string, body: Uint8Array): Uint8Array[] {
  const requests = messagesOf(body);
  switch (path) {
    case "/stream.ServerStream/Pow": {
      const request = requests[0] ?? new Uint8Array(0);
      const base = varintField(request, 1);
      const count = varintField(request, 2) || 10;
      const replies: Uint8Array[] = [];
      let power = 1;
      for (let i = 0; i < count; i++) {
        replies.push(varintMessage(power));
        power *= base;
      }
      return replies;
    }
    case "/stream.ClientStream/Sum": {
      let total = 0;
      for (const request of requests) total += varintField(request, 1);
      return [varintMessage(total)];
    }
    default:
      return requests.map((request) =>
        doubleMessage(Math.sqrt(doubleField(request)))
      );
  }
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  const connection = new H2Connection(answer);
  socket.write(connection.opening());
  socket.on("data", (chunk: Buffer) => {
    const output = connection.feed(chunk);
    if (output !== null) socket.write(output);
    if (connection.closed) socket.end();
  });
  // A client that goes away mid-write is no news to a measuring device.
  socket.on("error", () => socket.destroy());
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address !== null && typeof address === "object") {
    announcePort(address.port);
  }
});
await stdinClosed();
// Open sockets would hold the process; the runner only waits for it to go.
Deno.exit(0);
