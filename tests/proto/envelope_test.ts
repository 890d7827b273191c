/**
 * The gRPC message envelope, read the same way by both sides: a peer that breaks the framing
 * gets the same status and the same words from the client as from the server, and the
 * decoder reads messages cut at any byte.
 *
 * @module
 */
import { deepStrictEqual, strictEqual } from "node:assert";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { startHttp2Server } from "../_util/http2_server.ts";
import { fastPathsSwitchedOff } from "../_util/fast_paths_switch.ts";
import { createClient, GrpcError, startServer } from "../../mod.ts";
import {
  EnvelopeDecoder,
  type EnvelopeFault,
  writePrefix,
} from "../../proto/envelope.ts";

/** One gRPC message with its 5-byte prefix and `flag`. */
function frame(message: Uint8Array, flag = 0): Buffer {
  const out = Buffer.alloc(5 + message.length);
  writePrefix(out, message.length);
  out[0] = flag;
  out.set(message, 5);
  return out;
}

/** A broken body, and the status both sides must end the call with. */
interface Fault {
  name: string;
  body: Buffer;
  code: grpc.status;
  details: string;
  /**
   * The server's answer with `GRPC_STREAM_FAST_PATHS=off`, when grpc-js's own deframer reads
   * the requests (docs/development.md says what the switch gives up): a `Sum` of the messages
   * that came whole, `OK`, unless grpc-js words the fault itself.
   */
  grpcJs?: { code: grpc.status; details: string };
}

/** Both sides accept at most 4 bytes per message here. */
const LIMIT = 4;

const FAULTS: Fault[] = [
  {
    name: "a message over the receive limit",
    body: frame(new Uint8Array(10)),
    code: grpc.status.RESOURCE_EXHAUSTED,
    details: "Received message larger than max (10 vs. 4)",
    grpcJs: {
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: "Received message larger than max (10 vs 4)",
    },
  },
  {
    name: "a message flagged compressed with no compression negotiated",
    body: frame(new Uint8Array([0x08, 0x02]), 1),
    code: grpc.status.INTERNAL,
    details: "Received a compressed message, but no compression was negotiated",
  },
  {
    name: "a message with an unknown flag",
    body: frame(new Uint8Array([0x08, 0x02]), 2),
    code: grpc.status.INTERNAL,
    details: "Message prefix has an unknown flag: 2",
  },
  {
    name: "a body that ends inside a message",
    body: Buffer.from([0, 0, 0, 0, 3, 0x08]),
    code: grpc.status.INTERNAL,
    details: "Stream ended inside a message: 1 of its 3 bytes arrived",
  },
  {
    name: "a body that ends inside a message prefix",
    body: Buffer.from([0, 0, 0]),
    code: grpc.status.INTERNAL,
    details: "Stream ended inside a message prefix: 3 of its 5 bytes arrived",
  },
];

/** A bare `node:http2` server answering every call with `body` and `grpc-status: 0`. */
function startRawServer(
  body: Buffer,
): Promise<{ address: string } & AsyncDisposable> {
  return startHttp2Server((stream) => {
    stream.resume();
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
      waitForTrailers: true,
    });
    stream.on(
      "wantTrailers",
      () => stream.sendTrailers({ "grpc-status": "0" }),
    );
    stream.end(body);
  });
}

/** Sends `body` as a `Sum`'s requests over a raw HTTP/2 session; returns the status. */
function rawSum(
  session: http2.ClientHttp2Session,
  body: Buffer,
): Promise<{ code: number; details: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": "/stream.ClientStream/Sum",
      "content-type": "application/grpc",
      te: "trailers",
    });
    let status = { code: -1, details: "" };
    function read(fields: http2.IncomingHttpHeaders): void {
      const code = fields["grpc-status"];
      const message = fields["grpc-message"];
      if (typeof code === "string") {
        status = {
          code: Number(code),
          details: typeof message === "string"
            ? decodeURIComponent(message)
            : "",
        };
      }
    }
    stream.on("response", read);
    stream.on("trailers", read);
    stream.resume();
    stream.on("error", reject);
    stream.on("close", () => resolve(status));
    stream.end(body);
  });
}

Deno.test("the envelope's faults read the same from the client and the server", async (t) => {
  await using server = await startServer({
    port: 0,
    channelOptions: { "grpc.max_receive_message_length": LIMIT },
  });
  const session = http2.connect(`http://${server.addresses[0]!}`);
  session.on("error", () => {});
  try {
    for (const fault of FAULTS) {
      await t.step(`${fault.name}, sent to the server`, async () => {
        deepStrictEqual(
          await rawSum(session, fault.body),
          fastPathsSwitchedOff()
            ? fault.grpcJs ?? { code: grpc.status.OK, details: "OK" }
            : { code: fault.code, details: fault.details },
        );
      });
      await t.step(`${fault.name}, sent to the client`, async () => {
        await using raw = await startRawServer(fault.body);
        using client = createClient(raw.address, {
          maxReceiveMessageBytes: LIMIT,
        });
        let error: unknown;
        try {
          await Array.fromAsync(client.pow(2, { count: 1 }));
        } catch (caught) {
          error = caught;
        }
        strictEqual(error instanceof GrpcError, true, String(error));
        deepStrictEqual(
          {
            code: (error as GrpcError).code,
            details: (error as GrpcError).details,
          },
          { code: fault.code, details: fault.details },
        );
      });
    }
  } finally {
    session.close();
  }
});

Deno.test("EnvelopeDecoder reads messages cut at every byte, each once", async (t) => {
  const messages = [
    new Uint8Array(0),
    new Uint8Array([1, 2, 3]),
    new Uint8Array(300).fill(7),
  ];
  const stream = Buffer.concat(messages.map((message) => frame(message)));

  function read(cuts: number[]): {
    messages: number[][];
    fault: EnvelopeFault | undefined;
  } {
    const seen: number[][] = [];
    const decoder = new EnvelopeDecoder({
      message(span, compressed): void {
        strictEqual(compressed, false);
        seen.push([...span.bytes.subarray(span.start, span.end)]);
      },
      fail(fault): void {
        throw new Error(`Unexpected fault: ${fault.details}`);
      },
    });
    let from = 0;
    for (const cut of [...cuts, stream.length]) {
      // A copy, then scribbled over: the decoder must not keep a lent chunk.
      const chunk = Uint8Array.from(stream.subarray(from, cut));
      decoder.write(chunk);
      chunk.fill(0xee);
      from = cut;
    }
    return { messages: seen, fault: decoder.end() };
  }

  const expected = messages.map((message) => [...message]);
  await t.step("in one chunk", () => {
    deepStrictEqual(read([]), { messages: expected, fault: undefined });
  });
  await t.step("in two chunks, cut at each byte", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      deepStrictEqual(read([cut]), { messages: expected, fault: undefined });
    }
  });
  await t.step("a byte at a time", () => {
    const cuts = Array.from({ length: stream.length }, (_, index) => index);
    deepStrictEqual(read(cuts), { messages: expected, fault: undefined });
  });
});
