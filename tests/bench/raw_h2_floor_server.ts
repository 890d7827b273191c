/**
 * What a hand-written HTTP/2 layer costs a short call under Deno: a gRPC server that frames
 * HTTP/2 itself over a `node:net` socket (no `node:http2`, no nghttp2, no grpc-js) and answers
 * the article's three methods as `short_floor_server.ts` answers them, with the same replies.
 * Beside that `node:http2` floor, it shows how much of a short call's cost is Deno's
 * `node:http2` rather than HTTP/2 itself.
 *
 * The framing (`raw_h2/connection.ts`) decodes every header block with the server's own HPACK
 * decoder (`proto/http2/hpack_decoder.ts`) and sends everything one socket read answers in
 * one write. It
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
import { serveUntilStdinEnds } from "./common.ts";
import { H2Connection } from "./raw_h2/connection.ts";
import { answerShortCall, messagesOf } from "./short_answers.ts";

/** The replies of one call, from its whole request body. */
function answer(path: string, body: Uint8Array): Uint8Array[] {
  return answerShortCall(path, messagesOf(body));
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
await serveUntilStdinEnds(server);
