/**
 * How a Deno project tests its own code against a real grpc-stream server: each test starts
 * a server on a free port with `await using`, calls it, and lets the scope close it, so
 * Deno's sanitizers (ops, resources, exit) stay on.
 *
 * In your project: `deno add jsr:@streamrpc/grpc-stream`, copy this file, and run
 *
 * ```sh
 * deno test --allow-net=127.0.0.1 --allow-env=GRPC_*
 * ```
 *
 * @module
 */
import {
  createClient,
  GrpcError,
  startServer,
  Status,
  sum,
} from "@streamrpc/grpc-stream";
import { deepStrictEqual, rejects, strictEqual } from "node:assert";

/** The code under test: totals a day's readings through the Sum service. */
async function dailyTotal(
  address: string,
  readings: AsyncIterable<number>,
): Promise<bigint> {
  return await sum(readings, { address, timeout: 5_000 });
}

async function* readings(values: number[]): AsyncGenerator<number> {
  for (const value of values) yield value;
}

Deno.test("dailyTotal() sums the readings on a real server", async () => {
  await using server = await startServer({ port: 0 });
  strictEqual(
    await dailyTotal(server.addresses[0]!, readings([3, 4, 5])),
    12n,
  );
});

Deno.test("one server, one client, several calls", async (t) => {
  await using server = await startServer({ port: 0 });
  using client = createClient(server.addresses[0]!);

  await t.step("pow streams the powers", async () => {
    deepStrictEqual(await Array.fromAsync(client.pow(10, { count: 3 })), [
      1n,
      10n,
      100n,
    ]);
  });

  await t.step("sqrt answers each number", async () => {
    deepStrictEqual(await Array.fromAsync(client.sqrt([1, 4, 9])), [1, 2, 3]);
  });

  await t.step("a failure is a GrpcError with its status code", async () => {
    await rejects(
      client.sum([2n ** 62n, 2n ** 62n]),
      (error: unknown) =>
        error instanceof GrpcError && error.code === Status.OUT_OF_RANGE,
    );
  });
});
