/**
 * What Deno's `node:http2` costs a short call: a bare `node:http2` server with no gRPC
 * library, answering the article's three methods the plain way (`'data'` events in, one
 * `respond()`, one `end()` with every reply, trailers on `'wantTrailers'`). A server on
 * `node:http2` cannot answer a short call with less of Deno's work than this, so it is the
 * floor our server's short calls are measured against.
 *
 * It reads only what the benchmark's load clients send (a `Pow` base and count, non-negative
 * `Sum` numbers whose total stays below 2^53, `Sqrt` numbers) and checks nothing else: a
 * measuring device, not a server.
 *
 * Run: `deno run --allow-net=127.0.0.1 tests/bench/short_floor_server.ts [--coalesce]`
 *
 * @module
 */
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import { setImmediate } from "node:timers";
import { announcePort, stdinClosed } from "./common.ts";

const RESPONSE_HEADERS = {
  ":status": 200,
  "content-type": "application/grpc",
} as const;
const OK_TRAILERS = { "grpc-status": "0" } as const;

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

/** The gRPC envelopes of `messages`, in one buffer. */
function framed(messages: readonly Uint8Array[]): Buffer {
  let size = 0;
  for (const message of messages) size += 5 + message.length;
  const bytes = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const message of messages) {
    bytes[offset] = 0;
    bytes.writeUInt32BE(message.length, offset + 1);
    bytes.set(message, offset + 5);
    offset += 5 + message.length;
  }
  return bytes;
}

function answer(path: string, requests: readonly Uint8Array[]): Uint8Array[] {
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

const server = http2.createServer();
// `--coalesce` sends what one socket read answers in one write, as our server does
// (`services/write_coalescing.ts`, without its later rounds), to show what that alone saves.
if (Deno.args.includes("--coalesce")) {
  server.on("session", (session) => {
    const socket = session.socket;
    let corked = false;
    socket.prependListener("data", () => {
      if (corked) return;
      corked = true;
      socket.cork();
      setImmediate(() => {
        corked = false;
        socket.uncork();
      });
    });
  });
}
server.on("stream", (stream: http2.ServerHttp2Stream, headers) => {
  const path = String(headers[":path"]);
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.on("end", () => {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const replies = framed(answer(path, messagesOf(body)));
    stream.on("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
    stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    stream.end(replies);
  });
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address !== null && typeof address === "object") {
    announcePort(address.port);
  }
});
await stdinClosed();
// Open sessions would hold the process; the runner only waits for it to go.
Deno.exit(0);
