import { rejects, strictEqual } from "node:assert";
import { createClient, GrpcError, startServer, sum } from "../../mod.ts";
import http2 from "node:http2";
import { delay, recordingLogger } from "../_util/test_utils.ts";
import { test } from "../_util/transports.ts";

function isGrpcError(codeName: string): (error: unknown) => boolean {
  return (error) => error instanceof GrpcError && error.codeName === codeName;
}

test("sum() adds exactly", async (t) => {
  const logger = recordingLogger();
  await using server = await startServer({ port: 0, logger });
  using client = createClient(server.addresses[0]!, { transport: t.transport });

  await t.step("0 … 9 gives the article's 45, zero included", async () => {
    strictEqual(await client.sum([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), 45n);
    strictEqual(await client.sum([0, 0, 7, 0]), 7n);
    strictEqual(logger.lines.includes("Recved 0"), true);
    strictEqual(logger.lines.includes("client closed"), true);
  });

  await t.step("an empty stream gives 0", async () => {
    strictEqual(await client.sum([]), 0n);
  });

  await t.step("values near ±2^62 are summed exactly", async () => {
    const near = 2n ** 62n;
    strictEqual(await client.sum([near - 1n, near - 3n, -near, 5]), near + 1n);
    strictEqual(await client.sum([-near, -near]), -(2n ** 63n));
    strictEqual(await client.sum([2n ** 63n - 1n, 1, -1]), 2n ** 63n - 1n);
  });

  await t.step("a total past int64 is OUT_OF_RANGE, never a wrap", async () => {
    await rejects(
      client.sum([2n ** 62n, 2n ** 62n]),
      isGrpcError("OUT_OF_RANGE"),
    );
    await rejects(client.sum([-(2n ** 63n), -1]), isGrpcError("OUT_OF_RANGE"));
  });

  await t.step(
    "100,000 numbers from an async generator give the right total",
    async () => {
      async function* numbers(): AsyncGenerator<number> {
        for (let i = 1; i <= 100_000; i++) yield i;
      }
      strictEqual(await client.sum(numbers()), 5_000_050_000n);
    },
  );

  await t.step("bigints, numbers and any iterable mix", async () => {
    strictEqual(await client.sum(new Set([1n, 2, 3n])), 6n);
  });
});

test("sum() rejects a number that is not an int64 and cancels the call", async (t) => {
  const logger = recordingLogger();
  await using server = await startServer({ port: 0, logger });
  using client = createClient(server.addresses[0]!, { transport: t.transport });

  await t.step("a fraction", async () => {
    // Connected first: grpc-js starts a call only once it has a connection, so a call it
    // cancels before then never reaches the server.
    strictEqual(await client.sum([0]), 0n);
    await rejects(client.sum([1, 2.5]), RangeError);
    await logger.waitFor(/^Sum cancelled/);
  });

  await t.step("an unsafe integer and a bigint past int64", async () => {
    await rejects(client.sum([2 ** 53]), RangeError);
    await rejects(client.sum([2n ** 63n]), RangeError);
  });

  await t.step("something that is not a number", async () => {
    await rejects(client.sum(["1"] as unknown as number[]), TypeError);
    await rejects(client.sum(42 as unknown as number[]), TypeError);
  });

  await t.step(
    "an error thrown by the source rejects the call with it",
    async () => {
      const failure = new Error("Source broke");
      function* numbers(): Generator<number> {
        yield 1;
        throw failure;
      }
      await rejects(client.sum(numbers()), (error) => error === failure);
    },
  );

  await t.step("the server still answers after all of that", async () => {
    strictEqual(await client.sum([1, 2]), 3n);
  });
});

test("sum() cancelled by a bad number in the same turn reaches the server as cancelled, not complete", async (t) => {
  // The module's client writes a turn's requests at the turn's end, with END_STREAM when the
  // call half-closes: a call that fails before then must reach the server as a reset, never
  // as a finished request, whether requests came before the bad number or not.
  const logger = recordingLogger();
  await using server = await startServer({ port: 0, logger });
  using client = createClient(server.addresses[0]!, { transport: t.transport });
  // Connected first: grpc-js starts a call only once it has a connection.
  strictEqual(await client.sum([0]), 0n);
  function count(line: string): number {
    return logger.lines.filter((seen) => seen === line).length;
  }
  for (
    const [name, numbers] of [
      ["after good numbers", [1, 2, 2.5]],
      ["first", [2.5]],
    ] as const
  ) {
    await t.step(name, async () => {
      const completed = count("client closed");
      const cancelled = count("Sum cancelled by the client");
      await rejects(client.sum(numbers), RangeError);
      for (
        let waited = 0;
        count("Sum cancelled by the client") === cancelled;
      ) {
        if (waited >= 5_000) {
          throw new Error(
            `The server did not see the call cancelled: ${
              logger.lines.join(" | ")
            }`,
          );
        }
        await delay(10);
        waited += 10;
      }
      strictEqual(
        count("client closed"),
        completed,
        "The server took the call as complete",
      );
    });
  }
  await t.step("the server still answers", async () => {
    strictEqual(await client.sum([1, 2]), 3n);
  });
});

test("sum() cancelled while queued behind the server's stream limit reaches the server as cancelled, not complete", async (t) => {
  // With one call allowed per connection, a second call waits in the client with its HEADERS
  // unsent. Cancelled there, it must reach the server as a cancelled call once a slot frees
  // (or not at all), never as a finished request, and must not keep the server's only slot.
  const logger = recordingLogger();
  await using server = await startServer({
    port: 0,
    logger,
    channelOptions: { "grpc.max_concurrent_streams": 1 },
  });
  using client = createClient(server.addresses[0]!, { transport: t.transport });
  function count(line: string): number {
    return logger.lines.filter((seen) => seen === line).length;
  }
  // Connected first, so the client knows the limit before the calls below.
  strictEqual(await client.sum([0]), 0n);
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  async function* heldOpen(): AsyncGenerator<number> {
    yield 1;
    await released;
    yield 2;
  }
  const holding = client.sum(heldOpen());
  const controller = new AbortController();
  const queued = client.sum([5, 6], { signal: controller.signal });

  await t.step("the queued call rejects with the abort", async () => {
    await delay(100);
    controller.abort();
    await rejects(
      queued,
      (error: unknown) =>
        error instanceof DOMException && error.name === "AbortError",
    );
  });

  await t.step("the call that held the slot ends as usual", async () => {
    release();
    strictEqual(await holding, 3n);
  });

  await t.step("the next call gets the slot", async () => {
    const next = client.sum([1, 2]);
    const timeout = new AbortController();
    const stuck = delay(5_000, "stuck" as const, { signal: timeout.signal })
      .catch(() => "stopped" as const);
    try {
      strictEqual(
        await Promise.race([next, stuck]),
        3n,
        `The server's slot stayed taken: ${logger.lines.join(" | ")}`,
      );
    } finally {
      timeout.abort();
      await stuck;
    }
  });

  await t.step("the server took only the finished calls as complete", () => {
    strictEqual(
      count("client closed"),
      3,
      `The server took the cancelled call as complete: ${
        logger.lines.join(" | ")
      }`,
    );
  });
});

test("sum() on its own channel goes to the given address", async (t) => {
  await using server = await startServer({ port: 0 });
  strictEqual(
    await sum([40, 2], {
      address: server.addresses[0]!,
      transport: t.transport,
    }),
    42n,
  );
});

test("sum() stops pulling numbers a server does not read", async (t) => {
  // A server that answers with headers and then never reads: HTTP/2 flow control stops the
  // client's writes, and a client that waits for them stops pulling numbers. grpc-js's own
  // 1 MiB per-call retry buffer acknowledged writes regardless (118,352 numbers pulled here,
  // and counting); the grpc-js transport keeps it to 16 KiB (clients/grpc_js_retry_buffer.ts).
  const server = http2.createServer();
  server.on("stream", (stream: http2.ServerHttp2Stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" });
    stream.pause();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const controller = new AbortController();
  let pulled = 0;
  function* numbers(): Generator<number> {
    while (true) yield ++pulled;
  }
  try {
    using client = createClient(`127.0.0.1:${port}`, {
      transport: t.transport,
    });
    const result = client.sum(numbers(), { signal: controller.signal });
    // Wait until the pulling stops: no new number for 200 ms (bounded by 5 s).
    let last = -1;
    for (let waited = 0; last !== pulled && waited < 5_000; waited += 200) {
      last = pulled;
      await delay(200);
    }
    controller.abort();
    await rejects(result);
    strictEqual(pulled < 40_000, true, `Pulled ${pulled} numbers`);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
