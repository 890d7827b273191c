import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import { createClient, startServer, Status } from "../../mod.ts";
import { DenoProcess } from "../_util/subprocess.ts";
import { failure, forever } from "../_util/test_utils.ts";

const PROXY = new URL("../fixtures/h2_refusing_proxy.py", import.meta.url)
  .pathname;

type Fault =
  | "goaway"
  | "refuse"
  | "reset-internal"
  | "refuse-after-headers"
  | "queued";

/**
 * A raw HTTP/2 peer (python3-h2) in front of a real server: the first `count` request
 * streams get `fault`, the rest are relayed to the server.
 */
interface RefusingProxy extends AsyncDisposable {
  address: string;
  process: DenoProcess;
  /**
   * The `stream N ACTION` lines, once there are at least `count` (the peer's output can
   * come after the answers it relayed).
   */
  streams(count: number): Promise<string[]>;
  /** How many connections the client opened. */
  connections(): number;
}

/** How many of a proxy's streams meet its fault. */
interface ProxyOptions {
  /**
   * How many request streams, the first ones over every connection, get the fault; the
   * proxy relays the rest.
   *
   * @default {1}
   */
  count?: number;
}

async function startProxy(
  upstreamPort: number,
  fault: Fault,
  options: ProxyOptions = {},
): Promise<RefusingProxy> {
  const { count = 1 } = options;
  const process = DenoProcess.spawn(
    [PROXY, String(upstreamPort), fault, String(count)],
    { program: "/usr/bin/python3" },
  );
  try {
    const [, port] = await process.waitForLine("stdout", /^listening (\d+)$/);
    return {
      address: `127.0.0.1:${port}`,
      process,
      streams: async (count) => {
        await process.waitForLines("stdout", /^stream /, { count });
        return process.stdout.filter((line) => line.startsWith("stream "));
      },
      connections: () =>
        process.stdout.filter((line) => line.startsWith("connection ")).length,
      [Symbol.asyncDispose]: () => process[Symbol.asyncDispose](),
    };
  } catch (error) {
    await process[Symbol.asyncDispose]();
    throw error;
  }
}

/** `values`, then, before the last one, a wait for `gate`. */
async function* holdBeforeLast(
  values: number[],
  gate: Promise<unknown>,
): AsyncGenerator<number> {
  for (let i = 0; i < values.length - 1; i++) yield values[i]!;
  await gate;
  yield values[values.length - 1]!;
}

const CALLS = {
  pow: async (client: ReturnType<typeof createClient>) => {
    deepStrictEqual(await Array.fromAsync(client.pow(2, { count: 3 })), [
      1n,
      2n,
      4n,
    ]);
  },
  sum: async (client: ReturnType<typeof createClient>) => {
    strictEqual(await client.sum([1, 2, 3]), 6n);
  },
  sqrt: async (client: ReturnType<typeof createClient>) => {
    deepStrictEqual(await Array.fromAsync(client.sqrt([9, 16])), [3, 4]);
  },
};

for (const fault of ["goaway", "refuse"] as const) {
  Deno.test(`createClient() retries a call once when the server never saw it (${fault})`, async (t) => {
    await using server = await startServer({ port: 0 });

    for (const [kind, call] of Object.entries(CALLS)) {
      await t.step(`a ${kind} call succeeds on the retry`, async () => {
        await using proxy = await startProxy(server.port, fault);
        using client = createClient(proxy.address);
        await call(client);
        deepStrictEqual(await proxy.streams(2), [
          `stream 1 ${fault}`,
          "stream 2 relayed",
        ]);
        // A GOAWAY retires the connection: the retry opens the next one.
        strictEqual(proxy.connections(), fault === "goaway" ? 2 : 1);
      });
    }

    await t.step(
      "a call refused again is not retried a second time",
      async () => {
        await using proxy = await startProxy(server.port, fault, { count: 2 });
        using client = createClient(proxy.address);
        const error = await failure(Array.fromAsync(client.pow(2)));
        strictEqual(error.code, Status.UNAVAILABLE, String(error));
        // The next call is a call of its own: the third stream.
        await CALLS.pow(client);
        deepStrictEqual(await proxy.streams(3), [
          `stream 1 ${fault}`,
          `stream 2 ${fault}`,
          "stream 3 relayed",
        ]);
      },
    );

    await t.step(
      "the messages written before the refusal are sent again",
      async () => {
        await using proxy = await startProxy(server.port, fault);
        using client = createClient(proxy.address);
        // About 7 KiB of requests, under the 16 KiB a call holds for a retry; the last
        // number is written once the first stream has been refused.
        const numbers = Array.from({ length: 1_000 }, (_, i) => i + 1);
        const refused = proxy.process.waitForLine("stdout", /^stream 1 /);
        strictEqual(
          await client.sum(holdBeforeLast(numbers, refused)),
          500_500n,
        );
        deepStrictEqual(await proxy.streams(2), [
          `stream 1 ${fault}`,
          "stream 2 relayed",
        ]);
      },
    );

    await t.step(
      "a call that sent more than the retry buffer holds is not retried",
      async () => {
        await using proxy = await startProxy(server.port, fault);
        using client = createClient(proxy.address);
        // About 28 KiB of requests before the refusal: more than a call holds.
        const numbers = Array.from({ length: 4_000 }, (_, i) => i + 1_000_000);
        const refused = proxy.process.waitForLine("stdout", /^stream 1 /);
        const error = await failure(
          client.sum(holdBeforeLast(numbers, refused)),
        );
        // Only the first stream was refused: a retry would have succeeded.
        strictEqual(error.code, Status.UNAVAILABLE, String(error));
        await CALLS.sum(client);
        deepStrictEqual(await proxy.streams(2), [
          `stream 1 ${fault}`,
          "stream 2 relayed",
        ]);
      },
    );

    await t.step("the deadline runs across the retry", async () => {
      await using proxy = await startProxy(server.port, fault);
      using client = createClient(proxy.address);
      async function* oneThenNothing(): AsyncGenerator<number> {
        yield 4;
        await forever();
      }
      const roots = client.sqrt(oneThenNothing(), { timeout: 1_000 });
      deepStrictEqual(await roots.next(), { done: false, value: 2 });
      const error = await failure(roots.next());
      strictEqual(error.code, Status.DEADLINE_EXCEEDED, String(error));
      const streams = await proxy.streams(2);
      const [first, second] = streams.map((line) =>
        Number(/grpc-timeout=(\d+)m$/.exec(line)?.[1])
      );
      ok(first! <= 1_000 && second! <= first!, streams.join("; "));
    });
  });
}

Deno.test("createClient() does not retry a call the server may have seen", async (t) => {
  await using server = await startServer({ port: 0 });

  await t.step("a stream reset with another code", async () => {
    await using proxy = await startProxy(server.port, "reset-internal");
    using client = createClient(proxy.address);
    const error = await failure(client.sum([1, 2, 3]));
    strictEqual(error.code, Status.INTERNAL, String(error));
    match(error.details, /INTERNAL_ERROR/);
    // Only the first stream is reset: a retry would have succeeded.
    await CALLS.sum(client);
    deepStrictEqual(await proxy.streams(2), [
      "stream 1 reset-internal",
      "stream 2 relayed",
    ]);
  });

  await t.step("a stream refused after the response headers", async () => {
    await using proxy = await startProxy(server.port, "refuse-after-headers");
    using client = createClient(proxy.address);
    const error = await failure(Array.fromAsync(client.pow(2)));
    strictEqual(error.code, Status.UNAVAILABLE, String(error));
    await CALLS.pow(client);
    deepStrictEqual(await proxy.streams(2), [
      "stream 1 refuse-after-headers",
      "stream 2 relayed",
    ]);
  });
});

Deno.test("createClient() retries a call it never sent without using up its retry", async () => {
  await using server = await startServer({ port: 0 });
  // The first connection takes one stream at a time, then goes away; the next connection
  // refuses the first stream it sees.
  await using proxy = await startProxy(server.port, "queued");
  using client = createClient(proxy.address);
  const goaway = proxy.process.waitForLine("stdout", /^goaway$/);
  const { promise: released, resolve: release } = Promise.withResolvers<
    void
  >();
  async function* numbers(): AsyncGenerator<number> {
    yield 4;
    await released;
    yield 9;
  }
  const roots = client.sqrt(numbers());
  deepStrictEqual(await roots.next(), { done: false, value: 2 });
  // Queued behind the Sqrt: its HEADERS are never sent before the GOAWAY.
  const powers = Array.fromAsync(client.pow(2, { count: 3 }));
  await goaway;
  release();
  deepStrictEqual(await Array.fromAsync(roots), [3]);
  // Sent twice after the GOAWAY: refused once (its one retry), then answered.
  deepStrictEqual(await powers, [1n, 2n, 4n]);
  deepStrictEqual(await proxy.streams(3), [
    "stream 1 relayed",
    "stream 2 refuse",
    "stream 3 relayed",
  ]);
  strictEqual(proxy.connections(), 2);
});
