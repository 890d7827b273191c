import { deepStrictEqual, rejects, strictEqual } from "node:assert";
import {
  createClient,
  GrpcError,
  pow,
  startServer,
  Status,
} from "../../mod.ts";
import { test } from "../_util/transports.ts";

async function collect(
  values: AsyncIterable<bigint>,
): Promise<{ values: bigint[]; error: unknown }> {
  const seen: bigint[] = [];
  try {
    for await (const value of values) seen.push(value);
  } catch (error) {
    return { values: seen, error };
  }
  return { values: seen, error: undefined };
}

function powers(base: bigint, count: number): bigint[] {
  return Array.from(
    { length: count },
    (_, exponent) => base ** BigInt(exponent),
  );
}

test("pow() streams exact powers", async (t) => {
  await using server = await startServer({ port: 0 });
  using client = createClient(server.addresses[0]!, { transport: t.transport });

  await t.step("2 gives the article's 1 … 512", async () => {
    deepStrictEqual(await Array.fromAsync(client.pow(2)), powers(2n, 10));
    deepStrictEqual(
      (await Array.fromAsync(client.pow(2))).map(String),
      ["1", "2", "4", "8", "16", "32", "64", "128", "256", "512"],
    );
  });

  await t.step("0 gives 1 then nine 0s", async () => {
    deepStrictEqual(await Array.fromAsync(client.pow(0)), [
      1n,
      ...Array(9).fill(0n),
    ]);
  });

  await t.step("-7 alternates signs", async () => {
    const values = await Array.fromAsync(client.pow(-7n));
    deepStrictEqual(values, powers(-7n, 10));
    deepStrictEqual(values.map((value) => value < 0n), [
      false,
      true,
      false,
      true,
      false,
      true,
      false,
      true,
      false,
      true,
    ]);
  });

  await t.step("count 40 with base 3 is exact up to 3^39", async () => {
    const values = await Array.fromAsync(client.pow(3, { count: 40 }));
    strictEqual(values.length, 40);
    strictEqual(values[39], 4052555153018976267n);
    deepStrictEqual(values, powers(3n, 40));
  });

  await t.step(
    "base 2 with count 64 gives 2^0 … 2^62, then OUT_OF_RANGE",
    async () => {
      const { values, error } = await collect(client.pow(2, { count: 64 }));
      deepStrictEqual(values, powers(2n, 63));
      if (!(error instanceof GrpcError)) throw error;
      strictEqual(error.code, Status.OUT_OF_RANGE);
      strictEqual(error.codeName, "OUT_OF_RANGE");
      strictEqual(error.name, "GrpcError");
      strictEqual(error.details.includes("2^63"), true, error.details);
    },
  );

  await t.step(
    "every power that fits arrives before OUT_OF_RANGE",
    async () => {
      const { values, error } = await collect(client.pow(10, { count: 25 }));
      deepStrictEqual(values, powers(10n, 19));
      strictEqual((error as GrpcError).codeName, "OUT_OF_RANGE");
    },
  );

  await t.step("int64 extremes cross the wire exactly", async () => {
    const min = -(2n ** 63n);
    deepStrictEqual(await Array.fromAsync(client.pow(min, { count: 2 })), [
      1n,
      min,
    ]);
    const max = 2n ** 63n - 1n;
    deepStrictEqual(await Array.fromAsync(client.pow(max, { count: 2 })), [
      1n,
      max,
    ]);
  });
});

test("pow() refuses a count over the server's limit before any message", async (t) => {
  await t.step("a configured limit", async () => {
    await using server = await startServer({ port: 0, maxPowCount: 100 });
    using client = createClient(server.addresses[0]!, {
      transport: t.transport,
    });
    deepStrictEqual(
      (await Array.fromAsync(client.pow(1, { count: 100 }))).length,
      100,
    );
    const { values, error } = await collect(client.pow(1, { count: 101 }));
    deepStrictEqual(values, []);
    strictEqual((error as GrpcError).codeName, "INVALID_ARGUMENT");
    strictEqual((error as GrpcError).details.includes("101"), true);
  });

  await t.step("the default limit of 1,000,000", async () => {
    await using server = await startServer({ port: 0 });
    using client = createClient(server.addresses[0]!, {
      transport: t.transport,
    });
    const { values, error } = await collect(
      client.pow(1, { count: 1_000_001 }),
    );
    deepStrictEqual(values, []);
    strictEqual((error as GrpcError).codeName, "INVALID_ARGUMENT");
  });
});

test("pow() checks its arguments before anything is sent", async (t) => {
  await using server = await startServer({ port: 0 });
  using client = createClient(server.addresses[0]!, { transport: t.transport });

  await t.step("a number that is not a safe integer is a RangeError", () => {
    for (const base of [1.5, 2 ** 53, Number.NaN, Infinity]) {
      let thrown: unknown;
      try {
        client.pow(base);
      } catch (error) {
        thrown = error;
      }
      strictEqual(thrown instanceof RangeError, true, `base ${base}`);
    }
  });

  await t.step("a bigint outside int64 is a RangeError", () => {
    let thrown: unknown;
    try {
      client.pow(2n ** 63n);
    } catch (error) {
      thrown = error;
    }
    strictEqual(thrown instanceof RangeError, true);
  });

  await t.step("a count that is not a positive uint32 is a RangeError", () => {
    for (const count of [0, -1, 1.5, 2 ** 32]) {
      let thrown: unknown;
      try {
        client.pow(2, { count });
      } catch (error) {
        thrown = error;
      }
      strictEqual(thrown instanceof RangeError, true, `count ${count}`);
    }
  });
});

test("pow() on its own channel goes to the given address and closes it", async (t) => {
  await using server = await startServer({ port: 0 });
  deepStrictEqual(
    await Array.fromAsync(
      pow(5, {
        address: server.addresses[0]!,
        count: 3,
        transport: t.transport,
      }),
    ),
    [1n, 5n, 25n],
  );
  await rejects(
    Array.fromAsync(pow(2, {
      address: server.addresses[0]!,
      count: 64,
      transport: t.transport,
    })),
    (error: unknown) =>
      error instanceof GrpcError && error.codeName === "OUT_OF_RANGE",
  );
});

test("pow() delivers every power a server sent before it closed the connection", async (t) => {
  // The server answers the whole call, then closes the connection, while the reader still
  // holds the first power and the client has stopped reading (more powers than it reads
  // ahead): the powers after it must not go down with the connection.
  const server = await startServer({ port: 0 });
  try {
    using client = createClient(server.addresses[0]!, {
      transport: t.transport,
    });
    const values = client.pow(1, { count: 2_000 })[Symbol.asyncIterator]();
    deepStrictEqual(await values.next(), { value: 1n, done: false });
    await server.close();
    const rest = await collect({ [Symbol.asyncIterator]: () => values });
    deepStrictEqual(rest, { values: powers(1n, 1_999), error: undefined });
  } finally {
    await server.close();
  }
});
