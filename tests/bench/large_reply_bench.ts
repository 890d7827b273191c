/**
 * How long one large reply takes to arrive: a `Pow` answered with a single message of 1, 4 or
 * 16 MiB (an unknown length-delimited field the decoder skips, then the number), through this
 * module's client and, as the floor, through a bare `node:http2` request reading the same
 * bytes. Run it with `deno task bench:large`.
 *
 * No method of the wire contract returns a large message, so the server is a bare
 * `node:http2` one in this process that answers every call with the prepared reply.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createClient } from "../../mod.ts";

const MIB = 1024 * 1024;
const SIZES = [1, 4, 16];

/** A `stream.ServerStreamResp` of about `size` bytes: field 15 (bytes) of padding, then 7. */
function largeReply(size: number): Buffer {
  const padding = size - 16;
  const varint: number[] = [];
  for (let rest = padding;; rest = Math.floor(rest / 128)) {
    if (rest < 128) {
      varint.push(rest);
      break;
    }
    varint.push((rest & 0x7f) | 0x80);
  }
  const message = Buffer.alloc(1 + varint.length + padding + 2);
  message[0] = (15 << 3) | 2;
  message.set(varint, 1);
  message.set([0x08, 7], 1 + varint.length + padding);
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

const replies = new Map(SIZES.map((mib) => [mib, largeReply(mib * MIB)]));

const server = http2.createServer();
server.on("session", (session) => session.on("error", () => {}));
server.on("stream", (duplex, headers) => {
  const stream = duplex as http2.ServerHttp2Stream;
  stream.on("error", () => {});
  stream.resume();
  const mib = Number(headers["x-mib"]);
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
    waitForTrailers: true,
  });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.end(replies.get(mib));
});
await new Promise<void>((resolve) =>
  server.listen(0, "127.0.0.1", () => resolve())
);
const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
const client = createClient(address, { maxReceiveMessageBytes: 32 * MIB });
const session = http2.connect(`http://${address}`);

for (const mib of SIZES) {
  Deno.bench(`client pow() with one ${mib} MiB reply`, {
    group: `${mib} MiB`,
    baseline: true,
  }, async () => {
    const values = await Array.fromAsync(
      client.pow(7, { count: 1, metadata: { "x-mib": String(mib) } }),
    );
    if (values.length !== 1 || values[0] !== 7n) throw new Error("Wrong reply");
  });

  Deno.bench(`bare node:http2 reading ${mib} MiB`, {
    group: `${mib} MiB`,
  }, async () => {
    const stream = session.request({
      ":method": "POST",
      ":path": "/stream.ServerStream/Pow",
      "content-type": "application/grpc",
      "te": "trailers",
      "x-mib": String(mib),
    });
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    await new Promise((resolve) => stream.on("close", resolve));
    if (Buffer.concat(chunks).length !== replies.get(mib)!.length) {
      throw new Error("Wrong length");
    }
  });
}

globalThis.addEventListener("unload", () => {
  client.close();
  session.destroy();
  server.close();
});
