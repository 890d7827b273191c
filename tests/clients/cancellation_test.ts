import { deepStrictEqual, rejects, strictEqual } from "node:assert";
import { createClient, GrpcError, startServer } from "../../mod.ts";
import { delay, forever, recordingLogger } from "../_util/test_utils.ts";
import { test } from "../_util/transports.ts";

function isGrpcError(codeName: string): (error: unknown) => boolean {
  return (error) => error instanceof GrpcError && error.codeName === codeName;
}

test("pow() stops the server's handler when the caller leaves early", async (t) => {
  const logger = recordingLogger();
  await using server = await startServer({ port: 0, logger });
  using client = createClient(server.addresses[0]!, { transport: t.transport });

  await t.step("break out of for await after a few values", async () => {
    let seen = 0;
    for await (const _ of client.pow(1, { count: 1_000_000 })) {
      if (++seen === 5) break;
    }
    const line = await logger.waitFor(
      /^Pow\(1\) cancelled after \d+ of 1000000 powers$/,
    );
    const sent = Number(line.match(/after (\d+)/)![1]);
    strictEqual(sent < 1_000_000, true, line);
    // Stopped for good: nothing more is logged about that call.
    await delay(50);
    strictEqual(
      logger.lines.filter((entry) => entry.startsWith("Pow(1)")).length,
      1,
    );
  });

  await t.step(
    "return() before the first value cancels nothing and sends nothing",
    async () => {
      const before = logger.lines.length;
      const iterator = client.pow(1, { count: 1_000_000 });
      strictEqual((await iterator.return!()).done, true);
      strictEqual((await iterator.next()).done, true);
      strictEqual(logger.lines.length, before);
    },
  );
});

test("sum() and sqrt() end promptly with the reason of an aborted signal", async (t) => {
  const logger = recordingLogger();
  await using server = await startServer({ port: 0, logger });
  using client = createClient(server.addresses[0]!, { transport: t.transport });

  async function* stalled(): AsyncGenerator<number> {
    yield 1;
    await forever();
  }

  await t.step(
    "sum() rejects with the reason and the server sees a cancel",
    async () => {
      const controller = new AbortController();
      const result = client.sum(stalled(), { signal: controller.signal });
      await logger.waitFor(/^Recved 1$/);
      const reason = new Error("Caller gave up");
      controller.abort(reason);
      await rejects(result, (error) => error === reason);
      await logger.waitFor(/^Sum cancelled by the client$/);
    },
  );

  await t.step(
    "sqrt() rejects with the reason and the server sees a cancel",
    async () => {
      const controller = new AbortController();
      const roots: number[] = [];
      const reading = (async () => {
        for await (
          const root of client.sqrt(stalled(), { signal: controller.signal })
        ) {
          roots.push(root);
          controller.abort();
        }
      })();
      await rejects(
        reading,
        (error) => error instanceof DOMException && error.name === "AbortError",
      );
      strictEqual(roots.length, 1);
      await logger.waitFor(/^Sqrt cancelled by the client after 1 numbers$/);
    },
  );

  await t.step("pow() rejects with the reason", async () => {
    const controller = new AbortController();
    const reading = (async () => {
      for await (
        const _ of client.pow(1, {
          count: 1_000_000,
          signal: controller.signal,
        })
      ) {
        controller.abort();
      }
    })();
    await rejects(
      reading,
      (error) => error instanceof DOMException && error.name === "AbortError",
    );
    await logger.waitFor(/^Pow\(1\) cancelled/);
  });

  await t.step("a signal aborted before the call sends nothing", async () => {
    const before = logger.lines.length;
    const reason = new Error("Already gone");
    await rejects(
      client.sum([1], { signal: AbortSignal.abort(reason) }),
      (e) => e === reason,
    );
    await rejects(
      Array.fromAsync(client.sqrt([1], { signal: AbortSignal.abort(reason) })),
      (error) => error === reason,
    );
    strictEqual(logger.lines.length, before);
  });
});

test("sum(), sqrt() and pow() end with DEADLINE_EXCEEDED when the deadline passes", async (t) => {
  const logger = recordingLogger();
  await using server = await startServer({ port: 0, logger });
  using client = createClient(server.addresses[0]!, { transport: t.transport });

  async function* stalled(): AsyncGenerator<number> {
    yield 4;
    await forever();
  }

  await t.step("sum() with a 50 ms timeout", async () => {
    await rejects(
      client.sum(stalled(), { timeout: 50 }),
      isGrpcError("DEADLINE_EXCEEDED"),
    );
    await logger.waitFor(/^Sum cancelled by the client$/);
  });

  await t.step(
    "sqrt() with a 50 ms timeout, after its first answer",
    async () => {
      const roots: number[] = [];
      await rejects(
        (async () => {
          for await (
            const root of client.sqrt(stalled(), { timeout: 50 })
          ) roots.push(root);
        })(),
        isGrpcError("DEADLINE_EXCEEDED"),
      );
      strictEqual(roots[0], 2);
    },
  );

  await t.step("pow() read slowly, with a deadline as a Date", async () => {
    await rejects(
      (async () => {
        for await (
          const _ of client.pow(1, {
            count: 1_000_000,
            deadline: new Date(Date.now() + 50),
          })
        ) {
          await delay(20);
        }
      })(),
      isGrpcError("DEADLINE_EXCEEDED"),
    );
    await logger.waitFor(/^Pow\(1\) cancelled/);
  });

  await t.step("the server keeps serving", async () => {
    strictEqual(await client.sum([1, 2, 3], { timeout: 5_000 }), 6n);
  });

  await t.step("a timeout that is not a time is a RangeError", async () => {
    await rejects(client.sum([1], { timeout: -1 }), RangeError);
    await rejects(client.sum([1], { timeout: Number.NaN }), RangeError);
    await rejects(
      client.sum([1], { deadline: new Date(Number.NaN) }),
      RangeError,
    );
  });
});

test("sum() and sqrt() ignore a far deadline or an infinite timeout until it comes", async (t) => {
  await using server = await startServer({ port: 0 });
  using client = createClient(server.addresses[0]!, { transport: t.transport });
  const day = 24 * 60 * 60 * 1000;

  await t.step(
    "more than 8 digits of milliseconds in grpc-timeout",
    async () => {
      strictEqual(await client.sum([1, 2], { timeout: 123_456_789 }), 3n);
      strictEqual(await client.sum([1, 2], { timeout: 1_000_000_000 }), 3n);
    },
  );

  await t.step("longer than a timer can wait", async () => {
    strictEqual(await client.sum([1, 2], { timeout: 30 * day }), 3n);
    strictEqual(
      await client.sum([1, 2], { deadline: new Date(Date.now() + 40 * day) }),
      3n,
    );
  });

  await t.step("Infinity means no deadline", async () => {
    strictEqual(await client.sum([1, 2], { timeout: Infinity }), 3n);
    deepStrictEqual(
      await Array.fromAsync(client.sqrt([4], { deadline: Infinity })),
      [2],
    );
  });
});
