import { deepStrictEqual, rejects, strictEqual } from "node:assert";
import * as grpc from "@grpc/grpc-js";
import { createClient, GrpcError, sqrt, startServer } from "../../mod.ts";
import { test } from "../_util/transports.ts";
import { type SqrtReply, streamMethods } from "../../proto/definitions.ts";
import { guardedGrpcJsClient } from "../_util/test_utils.ts";

test("sqrt() answers each number in order", async (t) => {
  await using server = await startServer({ port: 0 });
  using client = createClient(server.addresses[0]!, { transport: t.transport });

  await t.step("0 … 9 give their roots, as in the article", async () => {
    const numbers = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const roots = await Array.fromAsync(client.sqrt(numbers));
    deepStrictEqual(roots, numbers.map(Math.sqrt));
    deepStrictEqual(roots.map(String).slice(0, 4), [
      "0",
      "1",
      "1.4142135623730951",
      "1.7320508075688772",
    ]);
  });

  await t.step(
    "the first answer arrives before the second number is sent",
    async () => {
      const events: string[] = [];
      let answered: () => void = () => {};
      let firstAnswer = new Promise<void>((resolve) => answered = resolve);
      async function* numbers(): AsyncGenerator<number> {
        events.push("send 16");
        yield 16;
        await firstAnswer;
        events.push("send 25");
        yield 25;
      }
      for await (const root of client.sqrt(numbers())) {
        events.push(`answer ${root}`);
        answered();
        firstAnswer = Promise.resolve();
      }
      deepStrictEqual(events, ["send 16", "answer 4", "send 25", "answer 5"]);
    },
  );

  await t.step(
    "-1 after 4 gives 2, then INVALID_ARGUMENT naming -1 and its position",
    async () => {
      const roots: number[] = [];
      await rejects(
        (async () => {
          for await (const root of client.sqrt([4, -1, 9])) roots.push(root);
        })(),
        (error: unknown) =>
          error instanceof GrpcError && error.codeName === "INVALID_ARGUMENT" &&
          error.details.includes("-1") && error.details.includes("message 2"),
      );
      deepStrictEqual(roots, [2]);
    },
  );

  await t.step("NaN is INVALID_ARGUMENT", async () => {
    await rejects(
      Array.fromAsync(client.sqrt([Number.NaN])),
      (error: unknown) =>
        error instanceof GrpcError && error.codeName === "INVALID_ARGUMENT" &&
        error.details.includes("NaN"),
    );
  });

  await t.step("an empty stream gives nothing", async () => {
    deepStrictEqual(await Array.fromAsync(client.sqrt([])), []);
  });

  await t.step("+Infinity gives Infinity and -0 gives -0", async () => {
    const [infinity, negativeZero] = await Array.fromAsync(
      client.sqrt([Infinity, -0]),
    );
    strictEqual(infinity, Infinity);
    strictEqual(Object.is(negativeZero, -0), true);
  });

  await t.step("a value that is not a number is a TypeError", async () => {
    await rejects(
      Array.fromAsync(client.sqrt(["4"] as unknown as number[])),
      TypeError,
    );
    let thrown: unknown;
    try {
      client.sqrt(4 as unknown as number[]);
    } catch (error) {
      thrown = error;
    }
    strictEqual(thrown instanceof TypeError, true);
  });
});

test("sqrt() on its own channel goes to the given address", async (t) => {
  await using server = await startServer({ port: 0 });
  deepStrictEqual(
    await Array.fromAsync(sqrt([81], {
      address: server.addresses[0]!,
      transport: t.transport,
    })),
    [9],
  );
});

Deno.test("startServer() answers the unary stream.Single/Sqrt one number per call", async (t) => {
  await using server = await startServer({ port: 0 });
  const raw = guardedGrpcJsClient(server.addresses[0]!);
  const method = streamMethods.singleSqrt;
  function call(number: number): Promise<SqrtReply> {
    return new Promise((resolve, reject) => {
      raw.makeUnaryRequest(
        method.path,
        method.serializeRequest,
        method.deserializeReply,
        { number },
        (error: grpc.ServiceError | null, reply?: SqrtReply) => {
          if (error) reject(error);
          else resolve(reply!);
        },
      );
    });
  }
  try {
    await t.step("a number gets its root", async () => {
      deepStrictEqual(await call(2), { sqrt: Math.SQRT2 });
      deepStrictEqual(await call(0), { sqrt: 0 });
    });
    await t.step("a negative number is INVALID_ARGUMENT", async () => {
      await rejects(call(-4), (error: grpc.ServiceError) => {
        return error.code === grpc.status.INVALID_ARGUMENT &&
          error.details.includes("-4");
      });
    });
  } finally {
    raw.close();
  }
});
