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
import { serveUntilStdinEnds } from "./common.ts";
import { answerShortCall, messagesOf } from "./short_answers.ts";

const RESPONSE_HEADERS = {
  ":status": 200,
  "content-type": "application/grpc",
} as const;
const OK_TRAILERS = { "grpc-status": "0" } as const;

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
    const replies = framed(answerShortCall(path, messagesOf(body)));
    stream.on("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
    stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    stream.end(replies);
  });
});
await serveUntilStdinEnds(server);
