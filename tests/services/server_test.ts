import {
  deepStrictEqual,
  notStrictEqual,
  rejects,
  strictEqual,
} from "node:assert";
import { createClient, GrpcError, startServer } from "../../mod.ts";
import { probeClient } from "../../clients/_testing.ts";
import {
  assertServes,
  delay,
  forever,
  guardedGrpcJsClient,
  healthStatus,
  recordingLogger,
} from "../_util/test_utils.ts";

Deno.test("startServer() listens where it is told", async (t) => {
  await t.step("port 0 picks a free port on 127.0.0.1 by default", async () => {
    await using server = await startServer();
    strictEqual(server.hostname, "127.0.0.1");
    notStrictEqual(server.port, 0);
    deepStrictEqual(server.addresses, [`127.0.0.1:${server.port}`]);
    using client = createClient(server.addresses[0]!);
    strictEqual(await client.sum([1, 1]), 2n);
  });

  await t.step("several ports each serve all three services", async () => {
    await using server = await startServer({ port: [0, 0, 0] });
    strictEqual(new Set(server.ports).size, 3);
    for (const address of server.addresses) {
      using client = createClient(address);
      deepStrictEqual(await Array.fromAsync(client.pow(3, { count: 3 })), [
        1n,
        3n,
        9n,
      ]);
      strictEqual(await client.sum([2, 3]), 5n);
      deepStrictEqual(await Array.fromAsync(client.sqrt([16])), [4]);
    }
  });

  await t.step("IPv6 loopback gets a bracketed address", async () => {
    await using server = await startServer({ hostname: "::1" });
    strictEqual(server.addresses[0], `[::1]:${server.port}`);
    using client = createClient(server.addresses[0]!);
    strictEqual(await client.sum([2, 2]), 4n);
  });

  await t.step(
    "an address Deno may not listen on is NotCapable naming the flag, not a crash",
    async () => {
      await rejects(
        startServer({ hostname: "127.0.0.2", port: 8081 }),
        (error: unknown) => {
          strictEqual(error instanceof Deno.errors.NotCapable, true);
          strictEqual(
            (error as Error).message,
            "Requires net access to 127.0.0.2:8081: run again with --allow-net=127.0.0.2",
          );
          return true;
        },
      );
    },
  );

  await t.step("a port in use says so plainly", async () => {
    await using first = await startServer();
    await rejects(startServer({ port: first.port }), (error: unknown) => {
      strictEqual(
        (error as Error).message,
        `Cannot listen on 127.0.0.1:${first.port}: address already in use`,
      );
      return true;
    });
  });

  await t.step("a port in use is an Error naming the address", async () => {
    await using first = await startServer();
    await rejects(startServer({ port: first.port }), (error: unknown) => {
      return error instanceof Error &&
        error.message.includes(`127.0.0.1:${first.port}`);
    });
  });

  await t.step("options out of range are RangeErrors", async () => {
    await rejects(startServer({ port: 70_000 }), RangeError);
    await rejects(startServer({ port: -1 }), RangeError);
    await rejects(startServer({ port: [] }), RangeError);
    await rejects(startServer({ maxPowCount: 0 }), RangeError);
    await rejects(startServer({ maxPowCount: 1.5 }), RangeError);
    await rejects(startServer({ gracePeriod: -1 }), RangeError);
  });
});

Deno.test("close() lets calls in flight finish, then stops accepting", async () => {
  const logger = recordingLogger();
  const server = await startServer({ logger, gracePeriod: 5_000 });
  using client = createClient(server.addresses[0]!);
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => release = resolve);
  async function* numbers(): AsyncGenerator<number> {
    yield 40;
    await released;
    yield 2;
  }
  const total = client.sum(numbers());
  await logger.waitFor(/^Recved 40$/);
  const closed = server.close();
  strictEqual(server.close(), closed);
  release();
  strictEqual(await total, 42n);
  await closed;
  await rejects(
    client.sum([1]),
    (error) => (error as GrpcError).codeName === "UNAVAILABLE",
  );
});

Deno.test("close() cancels what is left after the grace period", async () => {
  const logger = recordingLogger();
  const server = await startServer({ logger, gracePeriod: 50 });
  using client = createClient(server.addresses[0]!);
  async function* stalled(): AsyncGenerator<number> {
    yield 1;
    await forever();
  }
  // As with other gRPC servers, a call cut off by a shutdown ends UNAVAILABLE.
  const outcome = rejects(
    client.sum(stalled()),
    (error) => error instanceof GrpcError && error.codeName === "UNAVAILABLE",
  );
  await logger.waitFor(/^Recved 1$/);
  await server.close();
  await outcome;
});

Deno.test("pow() read slowly stalls the server on flow control instead of filling memory", async () => {
  const logger = recordingLogger();
  await using server = await startServer({ logger });
  // A client on node:http2, whose streams grant HTTP/2's 64 KiB: the windows fill within the
  // first second even on grpc-js's path (GRPC_STREAM_FAST_PATHS=off), where the own client's
  // 1 MiB takes longer than the pauses below to fill at grpc-js's pace.
  const options = {};
  probeClient(options).ownHttp2 = false;
  using client = createClient(server.addresses[0]!, options);
  async function sentAfterPause(ms: number): Promise<number> {
    for await (const _ of client.pow(1, { count: 1_000_000 })) {
      await delay(ms);
      break;
    }
    const line = await logger.waitFor(/^Pow\(1\) cancelled after \d+/);
    logger.lines.length = 0;
    return Number(line.match(/after (\d+)/)![1]);
  }
  // Once the windows are full the handler waits for drain, so a longer pause sends no more.
  const afterOneSecond = await sentAfterPause(1_000);
  const afterTwoSeconds = await sentAfterPause(2_000);
  strictEqual(afterTwoSeconds, afterOneSecond);
  strictEqual(afterOneSecond < 1_000_000, true);
});

Deno.test("createClient() checks its address", () => {
  let thrown: unknown;
  try {
    createClient("");
  } catch (error) {
    thrown = error;
  }
  strictEqual(thrown instanceof TypeError, true);
});

Deno.test("startServer() with await using leaves nothing behind after all three calls", async () => {
  // Deno's default sanitizers (ops, resources, exit) check this test: the server and the
  // client must release every socket, timer and pending operation when they are disposed.
  await using server = await startServer({ port: 0 });
  await assertServes(server);
});

Deno.test("close() answers health checks with NOT_SERVING for the drain period", async () => {
  const server = await startServer({ drainPeriod: 300 });
  const raw = guardedGrpcJsClient(server.addresses[0]!);
  function check(): Promise<number> {
    return healthStatus(raw);
  }

  try {
    strictEqual(await check(), 1);
    const closed = server.close();
    strictEqual(await check(), 2);
    using client = createClient(server.addresses[0]!);
    strictEqual(await client.sum([1, 2]), 3n); // still answering while it drains
    await closed;
  } finally {
    raw.close();
    await server.close();
  }
});
