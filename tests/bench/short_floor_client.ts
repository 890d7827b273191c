/**
 * What Deno's `node:http2` costs a client per short call: a bare `node:http2` client with no
 * gRPC library, making the article's calls the plain way (`session.request()`, one `end()`
 * with every request message, `'data'` events in, the status from `'trailers'`). A client on
 * `node:http2` cannot make a short call with less of Deno's work than this, so it is the floor
 * `createClient` is measured against (`short_client.ts --transport floor`).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import type { Shape } from "./common.ts";

const PATHS: Record<Shape, string> = {
  pow: "/stream.ServerStream/Pow",
  sum: "/stream.ClientStream/Sum",
  sqrt: "/stream.BidirectionalStreamServer/Sqrt",
};

function varint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  do {
    const low = rest % 128;
    rest = Math.floor(rest / 128);
    bytes.push(rest > 0 ? low | 0x80 : low);
  } while (rest > 0);
  return bytes;
}

/** The gRPC envelopes of `messages`, in one buffer. */
function framed(messages: readonly number[][]): Buffer {
  const bytes: number[] = [];
  for (const message of messages) {
    bytes.push(0, 0, 0, 0, message.length, ...message);
  }
  return Buffer.from(bytes);
}

function doubleMessage(value: number): number[] {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, value, true);
  return [0x09, ...bytes];
}

/** Field 1 of each message of a response body: a varint, or a double for `Sqrt`. */
function fieldsOf(body: Buffer, shape: Shape): number[] {
  const values: number[] = [];
  let offset = 0;
  while (body.length - offset >= 5) {
    const size = body.readUInt32BE(offset + 1);
    const message = body.subarray(offset + 5, offset + 5 + size);
    if (message.length === 0) values.push(0);
    else if (shape === "sqrt") values.push(message.readDoubleLE(1));
    else {
      let value = 0;
      let scale = 1;
      for (let i = 1; i < message.length; i++) {
        value += (message[i]! & 0x7f) * scale;
        scale *= 128;
      }
      values.push(value);
    }
    offset += 5 + size;
  }
  return values;
}

/** The request messages of a call, and the answers it must get. */
function callOf(
  shape: Shape,
  { seed, messages }: { seed: number; messages: number },
): { requests: number[][]; expected: number[] } {
  const numbers = Array.from(
    { length: messages },
    (_, i) => seed * messages + i,
  );
  switch (shape) {
    case "pow":
      return {
        requests: [[0x08, ...varint(2), 0x10, ...varint(messages)]],
        expected: numbers.map((_, i) => 2 ** i),
      };
    case "sum": {
      const total = numbers.reduce((sum, number) => sum + number, 0);
      return {
        requests: numbers.map((number) =>
          number === 0 ? [] : [0x08, ...varint(number)]
        ),
        expected: [total],
      };
    }
    case "sqrt":
      return {
        requests: numbers.map((number) =>
          number === 0 ? [] : doubleMessage(number)
        ),
        expected: numbers.map(Math.sqrt),
      };
  }
}

/**
 * A bare `node:http2` connection making `shape`'s short calls.
 *
 * @param shape The method.
 * @param options The server's address and the messages of each call.
 * @returns One call at a time (resolving once its answers are checked), and the close.
 */
export function floorCall(
  shape: Shape,
  { address, messages }: { address: string; messages: number },
): { call: (seed: number) => Promise<void>; close(): void } {
  const session = http2.connect(`http://${address}`);
  session.on("error", () => {});
  const headers = {
    ":method": "POST",
    ":path": PATHS[shape],
    "content-type": "application/grpc",
    te: "trailers",
  };
  function call(seed: number): Promise<void> {
    const { requests, expected } = callOf(shape, { seed, messages });
    return new Promise((resolve, reject) => {
      const stream = session.request(headers);
      const chunks: Buffer[] = [];
      let status: string | undefined;
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("trailers", (trailers) => {
        status = String(trailers["grpc-status"]);
      });
      stream.on("error", reject);
      stream.on("close", () => {
        const answers = fieldsOf(Buffer.concat(chunks), shape);
        if (status !== "0") reject(new Error(`grpc-status ${status}`));
        else if (answers.join() !== expected.join()) {
          reject(new Error(`${shape} answered ${answers.join()}`));
        } else resolve();
      });
      stream.end(framed(requests));
    });
  }
  return { call, close: () => session.close() };
}
