import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert";
import {
  createClient,
  type FaultRule,
  GrpcError,
  startServer,
  Status,
} from "../../mod.ts";
import type { StreamServer } from "../../mod.ts";
import { faultDraw } from "../../services/faults.ts";
import {
  guardedGrpcJsClient,
  healthStatus,
  recordingLogger,
} from "../_util/test_utils.ts";

/** `HealthCheckResponse.status` of a serving server. */
const SERVING = 1;

const H2_PEER = new URL("../fixtures/h2_peer.py", import.meta.url).pathname;

/** What the raw HTTP/2 peer saw of one Pow that a fault drops (`dropped-call` mode). */
async function droppedCall(server: StreamServer): Promise<string> {
  const { stdout, code } = await new Deno.Command("/usr/bin/python3", {
    args: [H2_PEER, server.hostname, String(server.port), "dropped-call"],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  strictEqual(code, 0, "The HTTP/2 peer failed");
  return new TextDecoder().decode(stdout).trim();
}

/** The code a promise rejects with, as a `GrpcError`. */
async function codeOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (error) {
    ok(error instanceof GrpcError, String(error));
    return error.code;
  }
  return Status.OK;
}

Deno.test("startServer({ faults }) refuses bad rules, naming the field and its value", async (t) => {
  const cases: [unknown, ErrorConstructor | TypeErrorConstructor, RegExp][] = [
    [
      { method: "Div", status: 14 },
      TypeError,
      /^Fault rule 1 method must be "Pow", "Sum" or "Sqrt": "Div"$/,
    ],
    [
      { after: -1, status: 14 },
      RangeError,
      /^Fault rule 1 after must be an integer from 0 to 4294967295: -1$/,
    ],
    [
      { after: 1.5, status: 14 },
      RangeError,
      /after must be an integer .*: 1\.5$/,
    ],
    [
      { after: "3", status: 14 },
      TypeError,
      /^Fault rule 1 after must be a number: "3"$/,
    ],
    [
      { status: 0 },
      RangeError,
      /^Fault rule 1 status must be an integer from 1 to 16: 0$/,
    ],
    [{ status: 17 }, RangeError, /status must be an integer from 1 to 16: 17$/],
    [
      { delay: -5 },
      RangeError,
      /^Fault rule 1 delay must be a number from 0 to 2147483647: -5$/,
    ],
    [{ delay: NaN }, RangeError, /delay must be a number .*: NaN$/],
    [
      { drop: "host" },
      TypeError,
      /^Fault rule 1 drop must be "stream" or "connection": "host"$/,
    ],
    [
      { delay: 1, ratio: 1.5 },
      RangeError,
      /^Fault rule 1 ratio must be a number from 0 to 1: 1\.5$/,
    ],
    [
      { method: "Sum" },
      TypeError,
      /^Fault rule 1 has no effect: give it status, delay or drop$/,
    ],
    [
      { message: "x" },
      TypeError,
      /^Fault rule 1 has a message but no status: x$/,
    ],
    [{ status: 14, drop: "stream" }, TypeError, /has both status and drop/],
    [
      { delay: 1, wait: 3 },
      TypeError,
      /^Fault rule 1 has an unknown field: wait$/,
    ],
    ["Sum", TypeError, /^Fault rule 1 must be an object: "Sum"$/],
  ];
  for (const [rule, kind, message] of cases) {
    await t.step(JSON.stringify(rule) ?? String(rule), async () => {
      await rejects(
        startServer({ port: 0, faults: [rule as FaultRule] }),
        (error: unknown) => {
          ok(error instanceof kind, String(error));
          ok(message.test((error as Error).message), (error as Error).message);
          return true;
        },
      );
    });
  }
  await t.step("the rule is named by its place in the list", async () => {
    await rejects(
      startServer({ port: 0, faults: [{ delay: 1 }, { delay: -1 }] }),
      /^RangeError: Fault rule 2 delay/,
    );
  });
  await t.step("a seed out of range", async () => {
    await rejects(
      startServer({ port: 0, faults: [], faultSeed: -1 }),
      /^RangeError: Fault seed must be an integer from 0 to 4294967295: -1$/,
    );
    await rejects(
      startServer({ port: 0, faults: [], faultSeed: 1.5 }),
      RangeError,
    );
  });
});

Deno.test("setFaults() replaces the rules between steps, and [] ends them", async (t) => {
  await using server = await startServer({ port: 0 });
  using client = createClient(server.addresses[0]!);

  await t.step("a server started without faults has none", async () => {
    strictEqual(await client.sum([1, 2]), 3n);
  });
  await t.step("setFaults() turns them on for the next calls", async () => {
    server.setFaults([{
      method: "Sum",
      status: Status.ABORTED,
      message: "Try again",
    }]);
    await rejects(client.sum([1, 2]), (error: unknown) => {
      ok(error instanceof GrpcError);
      strictEqual(error.code, Status.ABORTED);
      strictEqual(error.details, "Try again");
      return true;
    });
    // Other methods are not hit.
    deepStrictEqual(await Array.fromAsync(client.pow(3, { count: 2 })), [
      1n,
      3n,
    ]);
  });
  await t.step("a bad rule throws and leaves the rules as they were", () => {
    throws(
      () => server.setFaults([{ method: "Pow", status: 99 }]),
      /^RangeError: Fault rule 1 status must be an integer from 1 to 16: 99$/,
    );
    throws(() => server.setFaults("none" as never), TypeError);
  });
  await t.step("the rules in place still hold", async () => {
    strictEqual(await codeOf(client.sum([1])), Status.ABORTED);
  });
  await t.step("setFaults([]) ends them", async () => {
    server.setFaults([]);
    strictEqual(await client.sum([1, 2]), 3n);
  });
});

Deno.test("Envoy's fault headers are obeyed only on a server started with faults", async (t) => {
  const abort = { "x-envoy-fault-abort-grpc-request": "14" };

  await t.step("without faults the headers are ignored", async () => {
    await using server = await startServer({ port: 0 });
    using client = createClient(server.addresses[0]!);
    strictEqual(await client.sum([1, 2], { metadata: abort }), 3n);
    // setFaults() does not make a production server obey them either.
    server.setFaults([{ method: "Pow", delay: 1 }]);
    strictEqual(await client.sum([1, 2], { metadata: abort }), 3n);
  });

  await using server = await startServer({ port: 0, faults: [], faultSeed: 9 });
  using client = createClient(server.addresses[0]!);

  await t.step(
    "x-envoy-fault-abort-grpc-request ends the call with its code",
    async () => {
      strictEqual(
        await codeOf(client.sum([1], { metadata: abort })),
        Status.UNAVAILABLE,
      );
      strictEqual(
        await codeOf(Array.fromAsync(client.pow(2, { metadata: abort }))),
        Status.UNAVAILABLE,
      );
      strictEqual(
        await codeOf(Array.fromAsync(client.sqrt([4], { metadata: abort }))),
        Status.UNAVAILABLE,
      );
      // Calls without the header go through.
      strictEqual(await client.sum([1, 2]), 3n);
    },
  );

  await t.step(
    "x-envoy-fault-abort-request-percentage: 0 hits no call, 100 every call",
    async () => {
      strictEqual(
        await client.sum([1], {
          metadata: { ...abort, "x-envoy-fault-abort-request-percentage": "0" },
        }),
        1n,
      );
      strictEqual(
        await codeOf(client.sum([1], {
          metadata: {
            ...abort,
            "x-envoy-fault-abort-request-percentage": "100",
          },
        })),
        Status.UNAVAILABLE,
      );
    },
  );

  await t.step("x-envoy-fault-delay-request holds the call once", async () => {
    const started = performance.now();
    deepStrictEqual(
      await Array.fromAsync(
        client.pow(2, {
          count: 3,
          metadata: { "x-envoy-fault-delay-request": "100" },
        }),
      ),
      [1n, 2n, 4n],
    );
    ok(performance.now() - started >= 99);
    strictEqual(
      await client.sum([1], {
        metadata: {
          "x-envoy-fault-delay-request": "100",
          "x-envoy-fault-delay-request-percentage": "0",
        },
      }),
      1n,
    );
  });

  await t.step(
    "a malformed header is INVALID_ARGUMENT, named with its value",
    async () => {
      await rejects(
        client.sum([1], {
          metadata: { "x-envoy-fault-delay-request": "soon" },
        }),
        (error: unknown) => {
          ok(error instanceof GrpcError);
          strictEqual(error.code, Status.INVALID_ARGUMENT);
          strictEqual(
            error.details,
            "Fault header x-envoy-fault-delay-request must be a number from 0 to 2147483647: soon",
          );
          return true;
        },
      );
      strictEqual(
        await codeOf(client.sum([1], {
          metadata: {
            ...abort,
            "x-envoy-fault-abort-request-percentage": "101",
          },
        })),
        Status.INVALID_ARGUMENT,
      );
    },
  );
});

Deno.test("each injected fault is one line on the server's logger", async () => {
  const logger = recordingLogger();
  await using server = await startServer({
    port: 0,
    logger,
    logMessages: false,
    faultSeed: 5,
    faults: [
      { method: "Pow", after: 2, status: Status.DATA_LOSS },
      { method: "Sqrt", delay: 1 },
    ],
  });
  using client = createClient(server.addresses[0]!);
  strictEqual(await codeOf(Array.fromAsync(client.pow(2))), Status.DATA_LOSS);
  deepStrictEqual(await Array.fromAsync(client.sqrt([4, 9, 16])), [2, 3, 4]);
  strictEqual(await client.sum([1]), 1n);
  await client.sum([1], {
    metadata: { "x-envoy-fault-abort-grpc-request": "8" },
  })
    .catch(() => {});
  deepStrictEqual(
    logger.lines.filter((line) => line.includes("Fault")),
    [
      "Faults on: 2 rules, fault seed 5",
      "warn: Fault injected into Pow: rule 1 (Pow:after=2:status=DATA_LOSS) after 2 replies: status DATA_LOSS",
      "warn: Fault injected into Sqrt: rule 2 (Sqrt:delay=1) after 0 requests: delay 1 ms before each reply",
      "warn: Fault injected into Sum: header x-envoy-fault-abort-grpc-request=8 after 0 requests: status RESOURCE_EXHAUSTED",
    ],
  );
});

Deno.test("calls a fault's cut takes with it are not blamed on the client", async () => {
  const logger = recordingLogger();
  await using server = await startServer({
    port: 0,
    logger,
    faults: [{ method: "Pow", after: 1, drop: "connection" }],
  });
  using client = createClient(server.addresses[0]!);
  // A Sqrt on the same connection, one number answered, still open when the Pow is cut.
  const { promise: released, resolve: release } = Promise.withResolvers<
    void
  >();
  async function* heldOpen(): AsyncGenerator<number> {
    yield 4;
    await released;
  }
  const bystander = client.sqrt(heldOpen())[Symbol.asyncIterator]();
  deepStrictEqual(await bystander.next(), { done: false, value: 2 });
  strictEqual(await codeOf(Array.fromAsync(client.pow(2))), Status.UNAVAILABLE);
  strictEqual(await codeOf(bystander.next()), Status.UNAVAILABLE);
  release();
  await logger.waitFor(
    /^Sqrt cancelled by a fault that cut the connection after 1 numbers$/,
  );
  ok(
    !logger.lines.some((line) => line.includes("cancelled by the client")),
    logger.lines.join("\n"),
  );
});

Deno.test("the seeded draw picks calls by the order they start", async (t) => {
  await t.step("faultDraw() is a function of seed, call and slot alone", () => {
    strictEqual(
      faultDraw(1, { call: 7, slot: 0 }),
      faultDraw(1, { call: 7, slot: 0 }),
    );
    const draws = Array.from(
      { length: 1000 },
      (_, call) => faultDraw(42, { call, slot: 0 }),
    );
    ok(draws.every((draw) => draw >= 0 && draw < 1));
    const under = draws.filter((draw) => draw < 0.5).length;
    ok(under > 400 && under < 600, `${under}`);
    // Another seed draws otherwise.
    ok(
      draws.some((draw, call) => draw !== faultDraw(43, { call, slot: 0 })),
    );
  });
  await t.step(
    "setFaults() counts calls from 0 again, so a step replays",
    async () => {
      await using server = await startServer({ port: 0, faultSeed: 77 });
      using client = createClient(server.addresses[0]!);
      const rules: FaultRule[] = [{ method: "Sum", ratio: 0.3, status: 14 }];
      async function run(): Promise<number[]> {
        server.setFaults(rules);
        const codes: number[] = [];
        for (let call = 0; call < 40; call++) {
          codes.push(
            await codeOf(client.sum([1])),
          );
        }
        return codes;
      }
      const first = await run();
      deepStrictEqual(await run(), first);
      const expected = Array.from(
        { length: 40 },
        (_, call) => faultDraw(77, { call, slot: 0 }) < 0.3 ? 14 : Status.OK,
      );
      deepStrictEqual(first, expected);
    },
  );
});

Deno.test("drops reach the wire as documented, and harm nothing else", async (t) => {
  await using server = await startServer({ port: 0, faults: [] });

  await t.step(
    "drop: stream is RST_STREAM INTERNAL_ERROR after the replies before it",
    async () => {
      server.setFaults([{ method: "Pow", after: 2, drop: "stream" }]);
      strictEqual(await droppedCall(server), "messages 2 rst 2");
    },
  );
  await t.step(
    "drop: connection closes the TCP connection with no GOAWAY",
    async () => {
      server.setFaults([{ method: "Pow", after: 2, drop: "connection" }]);
      const seen = await droppedCall(server);
      ok(/^messages 2 (closed|tcp-reset)$/.test(seen), seen);
    },
  );
  await t.step("the server's health checks are untouched", async () => {
    server.setFaults([{ drop: "connection" }, { status: Status.UNAVAILABLE }]);
    const raw = guardedGrpcJsClient(server.addresses[0]!);
    try {
      for (let check = 0; check < 3; check++) {
        strictEqual(await healthStatus(raw), SERVING);
      }
    } finally {
      raw.close();
    }
  });
  await t.step("another server in the process is untouched", async () => {
    await using other = await startServer({ port: 0 });
    using client = createClient(other.addresses[0]!);
    server.setFaults([{ drop: "connection" }]);
    deepStrictEqual(await Array.fromAsync(client.pow(2, { count: 2 })), [
      1n,
      2n,
    ]);
  });
});

Deno.test("close() ends calls a fault holds, with the sanitizers on", async () => {
  const server = await startServer({
    port: 0,
    gracePeriod: 100,
    faults: [{ method: "Pow", delay: 60_000 }, {
      method: "Sum",
      after: 1,
      status: 14,
      delay: 60_000,
    }],
  });
  const client = createClient(server.addresses[0]!);
  const pow = codeOf(Array.fromAsync(client.pow(2)));
  const sum = codeOf(client.sum([1, 2]));
  // Let both calls start and reach their delays.
  await new Promise((resolve) => setTimeout(resolve, 200));
  await server.close();
  strictEqual(await pow, Status.UNAVAILABLE);
  strictEqual(await sum, Status.UNAVAILABLE);
  client.close();
});
