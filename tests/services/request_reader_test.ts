import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import * as grpc from "@grpc/grpc-js";
import denoConfig from "../../deno.json" with { type: "json" };
import { createClient, startServer } from "../../mod.ts";
import {
  decodeSumRequest,
  encodeSqrtReply,
  encodeSqrtRequest,
  encodeSumRequest,
} from "../../proto/codec.ts";
import { streamServices } from "../../proto/definitions.ts";
import type {
  SqrtReply,
  SqrtRequest,
  SumReply,
  SumRequest,
} from "../../proto/definitions.ts";
import { createHandlers } from "../../services/handlers.ts";
import {
  openRequestReader,
  type RequestReader,
  type RequestSink,
} from "../../services/request_reader.ts";
import { listenOnFreePort } from "../_util/test_utils.ts";
import { fastPathsSwitchedOff } from "../_util/fast_paths_switch.ts";

/** What a raw HTTP/2 peer saw of one request. */
interface RawAnswer {
  httpStatus: number | undefined;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  body: Buffer;
}

/** One gRPC message with its 5-byte prefix. */
function frame(message: Uint8Array, flag = 0): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = flag;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

function sumMessage(number: number): Buffer {
  return frame(encodeSumRequest({ number: BigInt(number) }));
}

/**
 * Sends one request over a raw HTTP/2 session, each chunk a DATA frame of its own, and reads
 * the answer: what no gRPC library would send.
 */
/** Where a raw request goes and what it adds to the usual headers. */
interface RawRequestOptions {
  /**
   * The method's path.
   *
   * @default {"/stream.ClientStream/Sum"}
   */
  path?: string;
  /**
   * Headers that add to or replace the usual gRPC ones.
   *
   * @default {{}}
   */
  headers?: Record<string, string>;
}

function rawRequest(
  session: http2.ClientHttp2Session,
  chunks: readonly Uint8Array[],
  options: RawRequestOptions = {},
): Promise<RawAnswer> {
  const { path = "/stream.ClientStream/Sum", headers = {} } = options;
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    const answer: RawAnswer = {
      httpStatus: undefined,
      grpcStatus: undefined,
      grpcMessage: undefined,
      body: Buffer.alloc(0),
    };
    const body: Buffer[] = [];
    function read(fields: http2.IncomingHttpHeaders): void {
      const status = fields[":status"];
      if (status !== undefined) answer.httpStatus = Number(status);
      const grpcStatus = fields["grpc-status"];
      if (typeof grpcStatus === "string") answer.grpcStatus = grpcStatus;
      const message = fields["grpc-message"];
      if (typeof message === "string") {
        answer.grpcMessage = decodeURIComponent(message);
      }
    }
    stream.on("response", read);
    stream.on("trailers", read);
    stream.on("data", (chunk: Buffer) => body.push(chunk));
    stream.on("error", reject);
    stream.on("close", () => {
      answer.body = Buffer.concat(body);
      resolve(answer);
    });
    (async () => {
      for (const chunk of chunks) {
        await new Promise<void>((done) => stream.write(chunk, () => done()));
      }
      stream.end();
    })().catch(reject);
  });
}

function openSession(address: string): http2.ClientHttp2Session {
  const session = http2.connect(`http://${address}`);
  session.on("error", () => {});
  return session;
}

Deno.test("openRequestReader() reads the requests of a grpc-js call itself", async (t) => {
  if (fastPathsSwitchedOff()) {
    // With GRPC_STREAM_FAST_PATHS=off the reader never reads a call itself: the steps below
    // have nothing to test, and this one asserts the fallback instead.
    await t.step(
      "switched off, it leaves every call to grpc-js, which answers it",
      async () => {
        let opened: boolean | undefined;
        const received: number[] = [];
        const server = new grpc.Server();
        server.addService(streamServices.clientStream, {
          Sum(
            call: grpc.ServerReadableStream<SumRequest, SumReply>,
            callback: grpc.sendUnaryData<SumReply>,
          ): void {
            opened = openRequestReader(call, {
              message() {},
              end() {},
              fail() {},
            }) !== undefined;
            call.on("data", () => received.push(1));
            call.on("end", () => {
              callback(null, { sum: BigInt(received.length) });
            });
          },
        });
        await using listening = await listenOnFreePort(server);
        using client = createClient(listening.address);
        strictEqual(await client.sum([1, 300, 0, -1]), 4n);
        strictEqual(opened, false);
      },
    );
    return;
  }
  await t.step(
    `grpc-js ${
      denoConfig.imports["@grpc/grpc-js"].split("@").pop()
    } has the shape the fast path needs`,
    async () => {
      let opened: boolean | undefined;
      const received: number[] = [];
      const server = new grpc.Server();
      server.addService(streamServices.clientStream, {
        Sum(
          call: grpc.ServerReadableStream<SumRequest, SumReply>,
          callback: grpc.sendUnaryData<SumReply>,
        ): void {
          const sink: RequestSink = {
            message(span) {
              received.push(span.end - span.start);
            },
            end() {
              callback(null, { sum: BigInt(received.length) });
            },
            fail(failure) {
              callback(failure);
            },
          };
          opened = openRequestReader(call, sink) !== undefined;
          if (!opened) {
            call.on("data", () => received.push(-1));
            call.on("end", () => callback(null, { sum: -1n }));
          }
        },
      });
      await using listening = await listenOnFreePort(server);
      using client = createClient(listening.address);
      strictEqual(await client.sum([1, 300, 0, -1]), 4n);
      strictEqual(opened, true);
      // Each message's length: 1 and 300 as varints, 0 as the empty message, -1 in 10 bytes.
      deepStrictEqual(received, [2, 3, 0, 11]);
    },
  );

  await t.step(
    `Deno ${Deno.version.deno}'s HTTP/2 frames go to the reader straight from the stream handle`,
    async () => {
      const count = 200;
      let reader: RequestReader | undefined;
      const received: number[] = [];
      const server = new grpc.Server();
      server.addService(streamServices.clientStream, {
        Sum(
          call: grpc.ServerReadableStream<SumRequest, SumReply>,
          callback: grpc.sendUnaryData<SumReply>,
        ): void {
          reader = openRequestReader(call, {
            message({ bytes, start, end }) {
              received.push(
                decodeSumRequest(bytes.subarray(start, end)).number ===
                    BigInt(received.length)
                  ? 1
                  : 0,
              );
            },
            end() {
              callback(null, { sum: BigInt(received.length) });
            },
            fail(failure) {
              callback(failure);
            },
          });
        },
      });
      await using listening = await listenOnFreePort(server);
      const session = openSession(listening.address);
      try {
        // One DATA frame per message, as grpc-go sends them.
        const answer = await rawRequest(
          session,
          Array.from({ length: count }, (_, index) => sumMessage(index)),
        );
        strictEqual(answer.grpcStatus, "0", String(answer.grpcMessage));
      } finally {
        session.close();
      }
      deepStrictEqual(received, Array(count).fill(1));
      // Only frames that came before the handler opened the reader may take the Readable.
      ok(
        reader !== undefined && reader.framesFromHandle > count / 2,
        `${reader?.framesFromHandle} of ${count} frames from the handle`,
      );
    },
  );

  await t.step(
    "a reader paused and resumed with no frame between reads on past the stream's window",
    async () => {
      // 300 KB after the resume: several times the 64 KiB stream window, which only
      // WINDOW_UPDATEs from a restarted native read reopen.
      const count = 30_000;
      let received = 0;
      const server = new grpc.Server();
      server.addService(streamServices.bidirectionalStream, {
        Sqrt(call: grpc.ServerDuplexStream<SqrtRequest, SqrtReply>): void {
          const reader = openRequestReader(call, {
            message() {
              received += 1;
              if (received !== 1) return;
              reader?.pause();
              setTimeout(() => {
                reader?.resume();
                call.write({ sqrt: 1 });
              }, 50);
            },
            end() {
              call.write({ sqrt: received });
              call.end();
            },
            fail(failure) {
              call.emit("error", failure);
            },
          });
        },
      });
      await using listening = await listenOnFreePort(server);
      const session = openSession(listening.address);
      try {
        const stream = session.request({
          ":method": "POST",
          ":path": "/stream.BidirectionalStreamServer/Sqrt",
          "content-type": "application/grpc",
          te: "trailers",
        });
        const body: Buffer[] = [];
        let firstAnswer!: () => void;
        const answered = new Promise<void>((resolve) => firstAnswer = resolve);
        stream.on("data", (data: Buffer) => {
          body.push(data);
          firstAnswer();
        });
        const closed = new Promise<void>((resolve, reject) => {
          stream.on("error", reject);
          stream.on("close", resolve);
        });
        stream.write(frame(encodeSqrtRequest({ number: 1 })));
        // The answer leaves after the resume: nothing was sent while the reader was paused.
        await answered;
        stream.end(
          Buffer.concat(
            Array.from(
              { length: count - 1 },
              () => frame(encodeSqrtRequest({ number: 2 })),
            ),
          ),
        );
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timedOut = new Promise<string>((resolve) =>
          timer = setTimeout(resolve, 10_000, "stalled")
        );
        const outcome = await Promise.race([closed, timedOut]);
        clearTimeout(timer);
        // A stalled call must not hold the server's shutdown: the session goes with it.
        if (outcome !== undefined) session.destroy();
        strictEqual(outcome, undefined, `${received} of ${count} read`);
        const answers = Buffer.concat(body);
        deepStrictEqual(
          answers.subarray(-14),
          frame(encodeSqrtReply({ sqrt: count })),
        );
      } finally {
        session.close();
      }
    },
  );

  await t.step(
    "a call an interceptor wraps is left to grpc-js, and still answers",
    async () => {
      let opened: boolean | undefined;
      function passThrough(
        _method: grpc.ServerMethodDefinition<unknown, unknown>,
        call: grpc.ServerInterceptingCallInterface,
      ): grpc.ServerInterceptingCall {
        return new grpc.ServerInterceptingCall(call);
      }
      const server = new grpc.Server({ interceptors: [passThrough] });
      const handlers = createHandlers({
        maxPowCount: 1_000_000,
        logger: undefined,
      });
      server.addService(streamServices.clientStream, {
        Sum(
          call: grpc.ServerReadableStream<SumRequest, SumReply>,
          callback: grpc.sendUnaryData<SumReply>,
        ): void {
          opened = openRequestReader(call, {
            message() {},
            end() {},
            fail() {},
          }) !== undefined;
          handlers.clientStream.Sum(call, callback);
        },
      });
      server.addService(
        streamServices.bidirectionalStream,
        handlers.bidirectionalStream,
      );
      await using listening = await listenOnFreePort(server);
      using client = createClient(listening.address);
      strictEqual(await client.sum([1, 2, 3, 2 ** 40]), 6n + 2n ** 40n);
      strictEqual(opened, false);
      deepStrictEqual(await Array.fromAsync(client.sqrt([4, 9, -0])), [
        2,
        3,
        -0,
      ]);
    },
  );
});

Deno.test("startServer() holds the gRPC framing on the receive path", async (t) => {
  await using server = await startServer({
    port: 0,
    channelOptions: { "grpc.max_receive_message_length": 1024 },
  });
  const address = server.addresses[0]!;
  const session = openSession(address);
  using client = createClient(address);
  try {
    // With GRPC_STREAM_FAST_PATHS=off grpc-js's own deframer reads the requests, and ends a
    // call cut inside a message, or with a message flagged compressed, with the messages that
    // came whole and OK, as grpc-js does under Node (docs/development.md).
    const framingFault = fastPathsSwitchedOff()
      ? grpc.status.OK
      : grpc.status.INTERNAL;

    await t.step("a Sum cut inside its last message is INTERNAL", async () => {
      const cut = Buffer.concat([
        sumMessage(20),
        sumMessage(22),
        Buffer.from([0, 0, 0, 0, 9, 0x08, 0x01]),
      ]);
      const answer = await rawRequest(session, [cut]);
      strictEqual(answer.grpcStatus, String(framingFault));
      if (fastPathsSwitchedOff()) return;
      ok(
        answer.grpcMessage?.includes("ended inside a message"),
        String(answer.grpcMessage),
      );
    });

    await t.step("a Sqrt cut inside a message prefix is INTERNAL", async () => {
      const answer = await rawRequest(session, [Buffer.from([0, 0, 0])], {
        path: "/stream.BidirectionalStreamServer/Sqrt",
      });
      strictEqual(answer.grpcStatus, String(framingFault));
    });

    await t.step(
      "a message flagged compressed on a call without grpc-encoding is INTERNAL",
      async () => {
        for (
          const path of [
            "/stream.ClientStream/Sum",
            "/stream.BidirectionalStreamServer/Sqrt",
          ]
        ) {
          const answer = await rawRequest(session, [
            frame(Buffer.from([0x08, 0x05]), 1),
          ], { path });
          // grpc-js itself fails the Sqrt's flagged message, and reads the Sum's as none.
          const expected = fastPathsSwitchedOff() && path.endsWith("/Sum")
            ? grpc.status.OK
            : grpc.status.INTERNAL;
          strictEqual(answer.grpcStatus, String(expected), path);
          if (fastPathsSwitchedOff()) continue;
          ok(
            answer.grpcMessage?.includes("compressed"),
            String(answer.grpcMessage),
          );
        }
      },
    );

    await t.step("a gzip message on a gzip call is read", async () => {
      const answer = await rawRequest(session, [
        frame(gzipSync(encodeSumRequest({ number: 40n })), 1),
        sumMessage(2),
      ], { headers: { "grpc-encoding": "gzip" } });
      strictEqual(answer.grpcStatus, "0");
      // The reply: prefix, then field 1 = 42.
      deepStrictEqual([...answer.body], [0, 0, 0, 0, 2, 0x08, 42]);
    });

    await t.step(
      "messages cut across DATA frames at every byte are read whole",
      async () => {
        const bytes = Buffer.concat(
          [1, 300, 70_000, 2 ** 35, -5].map(sumMessage),
        );
        const chunks = [...bytes].map((byte) => Buffer.from([byte]));
        const answer = await rawRequest(session, chunks);
        strictEqual(answer.grpcStatus, "0");
        const expected = 1 + 300 + 70_000 + 2 ** 35 - 5;
        deepStrictEqual(
          answer.body.subarray(5),
          frame(encodeSumRequest({ number: BigInt(expected) })).subarray(5),
        );
      },
    );

    await t.step(
      "a message over grpc.max_receive_message_length is RESOURCE_EXHAUSTED",
      async () => {
        for (
          const path of [
            "/stream.ClientStream/Sum",
            "/stream.BidirectionalStreamServer/Sqrt",
          ]
        ) {
          // An empty message first (0 for either method), then one byte over the limit.
          const answer = await rawRequest(session, [
            frame(Buffer.alloc(0)),
            frame(Buffer.alloc(1025)),
          ], { path });
          strictEqual(
            answer.grpcStatus,
            String(grpc.status.RESOURCE_EXHAUSTED),
            path,
          );
        }
        // At the limit is allowed: 1024 bytes of an unknown field 2.
        const filler = Buffer.alloc(1024);
        filler[0] = 0x12;
        filler[1] = 0x80 | (1021 & 0x7f);
        filler[2] = 1021 >> 7;
        const answer = await rawRequest(session, [
          frame(filler),
          sumMessage(7),
        ]);
        strictEqual(answer.grpcStatus, "0", String(answer.grpcMessage));
        deepStrictEqual([...answer.body], [0, 0, 0, 0, 2, 0x08, 7]);
      },
    );

    await t.step(
      "a request that is not application/grpc gets HTTP 415",
      async () => {
        const plain = await rawRequest(session, [sumMessage(1)], {
          headers: { "content-type": "text/plain" },
        });
        strictEqual(plain.httpStatus, 415);
        const none = await new Promise<number | undefined>(
          (resolve, reject) => {
            const stream = session.request({
              ":method": "POST",
              ":path": "/stream.ClientStream/Sum",
            });
            stream.on("response", (headers) => resolve(headers[":status"]));
            stream.on("error", reject);
            stream.end();
          },
        );
        strictEqual(none, 415);
      },
    );

    await t.step("the server still answers", async () => {
      strictEqual(await client.sum([20, 22]), 42n);
      deepStrictEqual(await Array.fromAsync(client.sqrt([16])), [4]);
    });
  } finally {
    session.close();
  }
});

Deno.test("startServer() stops reading a Sqrt whose client reads no answers, and reads on when it does", async () => {
  await using server = await startServer({ port: 0 });
  const session = openSession(server.addresses[0]!);
  try {
    const stream = session.request({
      ":method": "POST",
      ":path": "/stream.BidirectionalStreamServer/Sqrt",
      "content-type": "application/grpc",
      te: "trailers",
    });
    // The client reads nothing yet: its window shuts, the server's answers back up, and the
    // server must then stop reading numbers, so the client's writes stop completing.
    stream.pause();
    const perChunk = 1024;
    const chunk = Buffer.concat(
      Array.from(
        { length: perChunk },
        () => frame(encodeSqrtRequest({ number: 4 })),
      ),
    );
    const most = (32 * 1024 * 1024) / chunk.length;
    let written = 0;
    let stalled: Promise<unknown> | undefined;
    while (written < most && stalled === undefined) {
      const write = new Promise<void>((done) =>
        stream.write(chunk, () => done())
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        write.then(() => false),
        new Promise<boolean>((done) => timer = setTimeout(done, 2_000, true)),
      ]);
      clearTimeout(timer);
      if (timedOut) stalled = write;
      else written += 1;
    }
    ok(
      stalled !== undefined,
      `The server read all ${
        written * chunk.length
      } bytes of a client that reads nothing`,
    );
    // Reading again lets everything through: every number answered, in one piece.
    const body: Buffer[] = [];
    const closed = new Promise<string | undefined>((resolve, reject) => {
      let status: string | undefined;
      stream.on("trailers", (fields) => {
        const value = fields["grpc-status"];
        if (typeof value === "string") status = value;
      });
      stream.on("error", reject);
      stream.on("close", () => resolve(status));
    });
    stream.on("data", (data: Buffer) => body.push(data));
    stream.resume();
    await stalled;
    stream.end();
    strictEqual(await closed, "0");
    const answers = Buffer.concat(body);
    const answer = frame(encodeSqrtReply({ sqrt: 2 }));
    strictEqual(answers.length, (written + 1) * perChunk * answer.length);
    deepStrictEqual(answers.subarray(0, answer.length), answer);
  } finally {
    session.close();
  }
});
