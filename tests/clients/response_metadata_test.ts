import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import {
  type CallOptions,
  createClient,
  pow,
  type ResponseMetadata,
  startServer,
  Status,
  sum,
} from "../../mod.ts";
import {
  type PowReply,
  type PowRequest,
  streamServices,
  type SumReply,
  type SumRequest,
} from "../../proto/definitions.ts";
import { GO_PEER } from "../peers/peers.ts";
import { failure, forever, listenOnFreePort } from "../_util/test_utils.ts";
import { test } from "../_util/transports.ts";

/** What a call's callbacks heard, in order, with the replies between them. */
interface Heard {
  events: string[];
  headers: ResponseMetadata[];
  trailers: ResponseMetadata[];
  options: Pick<CallOptions, "onHeader" | "onTrailer">;
}

function listen(): Heard {
  const heard: Heard = {
    events: [],
    headers: [],
    trailers: [],
    options: {
      onHeader(headers): void {
        heard.events.push("header");
        heard.headers.push(headers);
      },
      onTrailer(trailers): void {
        heard.events.push("trailer");
        heard.trailers.push(trailers);
      },
    },
  };
  return heard;
}

/**
 * Reads every reply, then says how the call went: the replies in order, and the callbacks
 * around the end. The trailers can come while replies still wait in the iterator, so only
 * the order of the headers, the first reply, the trailers and the end is fixed.
 */
async function collect<Value>(
  replies: AsyncIterable<Value>,
  heard: Heard,
): Promise<string[]> {
  const values: string[] = [];
  for await (const reply of replies) {
    if (values.length === 0) heard.events.push("first reply");
    values.push(String(reply));
  }
  heard.events.push("done");
  return values;
}

/** The headers came once, before the first reply; the trailers once, before the end. */
function assertHeardAround(heard: Heard): void {
  deepStrictEqual(
    heard.events.filter((event) => event !== "first reply"),
    ["header", "trailer", "done"],
  );
  ok(heard.events.indexOf("first reply") > heard.events.indexOf("header"));
}

/**
 * A grpc-js server whose `Pow` sends metadata of its own in its headers and trailers, and
 * whose `Sum` sends headers and then fails with trailers of its own.
 */
function serverWithMetadata(): grpc.Server {
  const server = new grpc.Server();
  server.addService(streamServices.serverStream, {
    Pow(call: grpc.ServerWritableStream<PowRequest, PowReply>): void {
      const headers = new grpc.Metadata();
      headers.set("x-served-by", "pow, the test's");
      headers.set("x-token-bin", Buffer.from([0, 1, 255]));
      call.sendMetadata(headers);
      for (let power = 0n; power < BigInt(call.request.count); power++) {
        call.write({ number: power });
      }
      const trailers = new grpc.Metadata();
      trailers.set("x-count", String(call.request.count));
      call.end(trailers);
    },
  });
  server.addService(streamServices.clientStream, {
    Sum(
      call: grpc.ServerReadableStream<SumRequest, SumReply>,
      callback: grpc.sendUnaryData<SumReply>,
    ): void {
      const headers = new grpc.Metadata();
      headers.set("x-served-by", "sum, the test's");
      call.sendMetadata(headers);
      call.on("data", () => {});
      call.on("end", () => {
        const trailers = new grpc.Metadata();
        trailers.set("x-reason", "always fails");
        callback({
          code: grpc.status.FAILED_PRECONDITION,
          details: "Not today",
          metadata: trailers,
        });
      });
    },
  });
  return server;
}

test("onHeader and onTrailer hear the module's server", async (t) => {
  await using server = await startServer({ port: 0 });
  using client = createClient(server.addresses[0]!, {
    transport: t.transport,
  });

  await t.step(
    "pow: headers before the first reply, trailers before the end",
    async () => {
      const heard = listen();
      deepStrictEqual(
        await collect(client.pow(2, { count: 3, ...heard.options }), heard),
        ["1", "2", "4"],
      );
      assertHeardAround(heard);
      deepStrictEqual(heard.headers[0]!["content-type"], [
        "application/grpc+proto",
      ]);
      for (const key of ["grpc-status", "grpc-encoding", ":status"]) {
        strictEqual(key in heard.headers[0]!, false, key);
      }
      // The server sends no metadata of its own in its trailers: only the status, left out.
      deepStrictEqual(heard.trailers, [{}]);
    },
  );

  await t.step("sum and sqrt tell them too", async () => {
    const summed = listen();
    strictEqual(await client.sum([1, 2, 3], summed.options), 6n);
    summed.events.push("done");
    deepStrictEqual(summed.events, ["header", "trailer", "done"]);
    const rooted = listen();
    deepStrictEqual(
      await collect(client.sqrt([4, 9], rooted.options), rooted),
      ["2", "3"],
    );
    assertHeardAround(rooted);
  });

  await t.step(
    "a failure in the trailers alone: no headers, its trailers told",
    async () => {
      const heard = listen();
      const error = await failure(
        client.sum([2n ** 62n, 2n ** 62n], heard.options),
      );
      strictEqual(error.code, Status.OUT_OF_RANGE);
      deepStrictEqual(heard.events, ["trailer"]);
      strictEqual(heard.trailers[0], error.trailers);
    },
  );

  await t.step(
    "a call ended on this side: no trailers, told as {}",
    async () => {
      const heard = listen();
      async function* stalled(): AsyncGenerator<number> {
        yield 1;
        await forever();
      }
      const error = await failure(
        client.sum(stalled(), { timeout: 200, ...heard.options }),
      );
      strictEqual(error.code, Status.DEADLINE_EXCEEDED);
      strictEqual(heard.events.at(-1), "trailer");
      deepStrictEqual(heard.trailers, [{}]);
      strictEqual(heard.trailers[0], error.trailers);
    },
  );

  await t.step("the one-call helpers take them", async () => {
    const heard = listen();
    deepStrictEqual(
      await collect(
        pow(3, {
          address: server.addresses[0]!,
          transport: t.transport,
          count: 1,
          ...heard.options,
        }),
        heard,
      ),
      ["1"],
    );
    assertHeardAround(heard);
    const summed = listen();
    await sum([1], {
      address: server.addresses[0]!,
      transport: t.transport,
      ...summed.options,
    });
    deepStrictEqual(summed.events, ["header", "trailer"]);
  });

  await t.step(
    "a callback that throws fails the call with what it threw",
    async () => {
      const thrown = new Error("Not these headers");
      await rejects(
        Array.fromAsync(client.pow(2, {
          count: 1_000_000,
          onHeader(): void {
            throw thrown;
          },
        })),
        (error) => error === thrown,
      );
      const late = new Error("Not these trailers");
      await rejects(
        client.sum([1], {
          onTrailer(): void {
            throw late;
          },
        }),
        (error) => error === late,
      );
      // The connection is still good.
      strictEqual(await client.sum([1, 1]), 2n);
    },
  );
});

test("onHeader and onTrailer hear a server's own metadata, on success and failure", async (t) => {
  await using server = await listenOnFreePort(serverWithMetadata());
  using client = createClient(server.address, { transport: t.transport });

  await t.step(
    "pow: custom text and binary headers, custom trailers",
    async () => {
      const heard = listen();
      deepStrictEqual(
        await collect(client.pow(0, { count: 2, ...heard.options }), heard),
        ["0", "1"],
      );
      assertHeardAround(heard);
      const [headers] = heard.headers;
      deepStrictEqual(headers!["x-served-by"], ["pow, the test's"]);
      deepStrictEqual(headers!["x-token-bin"], [new Uint8Array([0, 1, 255])]);
      deepStrictEqual(headers!["content-type"], ["application/grpc+proto"]);
      deepStrictEqual(heard.trailers, [{ "x-count": ["2"] }]);
    },
  );

  await t.step(
    "sum: headers, then a failure whose trailers GrpcError holds too",
    async () => {
      const heard = listen();
      const error = await failure(client.sum([1, 2], heard.options));
      strictEqual(error.code, Status.FAILED_PRECONDITION);
      deepStrictEqual(heard.events, ["header", "trailer"]);
      deepStrictEqual(heard.headers[0]!["x-served-by"], ["sum, the test's"]);
      deepStrictEqual(heard.trailers, [{ "x-reason": ["always fails"] }]);
      strictEqual(heard.trailers[0], error.trailers);
    },
  );
});

test("onHeader and onTrailer hear a grpc-go server", async (t) => {
  await using server = await GO_PEER.serve();
  using client = createClient(server.address, { transport: t.transport });

  await t.step(
    "pow: grpc-go's headers, and trailers with nothing but the status",
    async () => {
      const heard = listen();
      deepStrictEqual(
        await collect(client.pow(2, { count: 2, ...heard.options }), heard),
        ["1", "2"],
      );
      assertHeardAround(heard);
      deepStrictEqual(heard.headers[0]!["content-type"], ["application/grpc"]);
      deepStrictEqual(heard.trailers, [{}]);
    },
  );

  await t.step("a failure: the trailers GrpcError holds", async () => {
    const heard = listen();
    const error = await failure(
      client.sum([2n ** 62n, 2n ** 62n], heard.options),
    );
    strictEqual(error.code, Status.OUT_OF_RANGE);
    strictEqual(heard.trailers.length, 1);
    strictEqual(heard.trailers[0], error.trailers);
    strictEqual(heard.events.at(-1), "trailer");
  });
});
