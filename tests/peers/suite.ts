/**
 * The interop tests, registered once per peer (tests/interop/interop_go_test.ts,
 * tests/interop/interop_python_test.ts): our client, over each of {@linkcode TRANSPORTS},
 * against the peer's server, and the peer's client against our server. Both sides go through
 * every status the methods can end with, the int64 and double edges, a 100,000-message `Sum`,
 * and cancels and deadlines followed by more calls on the same connection.
 *
 * @module
 */
import { INT64_MAX, INT64_MIN } from "../../proto/limits.ts";
import { deepStrictEqual, match, ok, rejects, strictEqual } from "node:assert";
import {
  createClient,
  GrpcError,
  startServer,
  type StatusName,
  type StreamClient,
} from "../../mod.ts";
import { forever, recordingLogger } from "../_util/test_utils.ts";
import type { Peer, PeerCall, PeerResult, PeerServer } from "./peers.ts";
import type { ClientTransport } from "../../mod.ts";
import { TRANSPORTS } from "../_util/transports.ts";

/** Doubles whose square roots must cross the wire exactly, sign of zero included. */
const DOUBLE_EDGES = [
  4,
  -0,
  Infinity,
  0,
  2,
  Number.MIN_VALUE,
  Number.MAX_VALUE,
];

/** A double in decimal, as the peers parse it; unlike `String`, it keeps the sign of -0. */
function spell(number: number): string {
  return Object.is(number, -0) ? "-0" : String(number);
}

/** What a `pow()` or `sqrt()` yielded, and the error that ended it (or `undefined`). */
interface Outcome<T> {
  values: T[];
  error: unknown;
}

async function settle<T>(replies: AsyncIterable<T>): Promise<Outcome<T>> {
  const values: T[] = [];
  try {
    for await (const value of replies) values.push(value);
    return { values, error: undefined };
  } catch (error) {
    return { values, error };
  }
}

function assertStatus(
  error: unknown,
  codeName: StatusName,
  details?: RegExp,
): void {
  ok(error instanceof GrpcError, `Expected a GrpcError, got: ${error}`);
  strictEqual(error.codeName, codeName, error.message);
  if (details !== undefined) match(error.details, details);
}

function isStatus(codeName: StatusName): (error: unknown) => boolean {
  return (error) => error instanceof GrpcError && error.codeName === codeName;
}

function isAbortError(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}

function powers(base: bigint, count: number): bigint[] {
  return Array.from(
    { length: count },
    (_, exponent) => base ** BigInt(exponent),
  );
}

function* upTo(last: number): Generator<number> {
  for (let number = 1; number <= last; number++) yield number;
}

/** Yields `first`, then never yields again nor ends: the call stays open. */
async function* stalled<T>(first: T): AsyncGenerator<T> {
  yield first;
  await forever();
}

/** Each number is sent only after the answer to the one before has arrived. */
async function interactiveSqrt(
  client: StreamClient,
  numbers: number[],
): Promise<string[]> {
  const events: string[] = [];
  let answered = Promise.withResolvers<void>();
  async function* source(): AsyncGenerator<number> {
    for (const number of numbers) {
      events.push(`send ${number}`);
      yield number;
      await answered.promise;
      answered = Promise.withResolvers<void>();
    }
  }
  // A server that answered only at the end would hold both sides until this deadline.
  for await (const root of client.sqrt(source(), { timeout: 10_000 })) {
    events.push(`answer ${root}`);
    answered.resolve();
  }
  return events;
}

async function assertUsable(client: StreamClient): Promise<void> {
  deepStrictEqual(
    await Array.fromAsync(client.pow(2, { count: 3 })),
    [1n, 2n, 4n],
  );
}

function testStatuses(peer: Peer, transport: ClientTransport): void {
  Deno.test(`pow(), sum() and sqrt() over ${transport} get every answer and status from a ${peer.name} server`, async (t) => {
    await using server = await peer.serve();
    using client = createClient(server.address, { transport });

    await t.step(
      "pow() streams exact powers, then OUT_OF_RANGE after the powers that fit",
      async () => {
        deepStrictEqual(
          await Array.fromAsync(client.pow(2, { count: 4 })),
          [1n, 2n, 4n, 8n],
        );
        const { values, error } = await settle(client.pow(2, { count: 70 }));
        deepStrictEqual(values, powers(2n, 63));
        assertStatus(error, "OUT_OF_RANGE", /2\^63/);
      },
    );

    await t.step("pow() at the int64 edges", async () => {
      const minimum = await settle(client.pow(INT64_MIN, { count: 3 }));
      deepStrictEqual(minimum.values, [1n, INT64_MIN]);
      assertStatus(minimum.error, "OUT_OF_RANGE", /\^2/);
      const maximum = await settle(client.pow(INT64_MAX, { count: 3 }));
      deepStrictEqual(maximum.values, [1n, INT64_MAX]);
      assertStatus(maximum.error, "OUT_OF_RANGE");
      // (-2)^63 is INT64_MIN itself, the last power that fits.
      const negative = await settle(client.pow(-2, { count: 70 }));
      deepStrictEqual(negative.values, powers(-2n, 64));
      strictEqual(negative.values.at(-1), INT64_MIN);
      assertStatus(negative.error, "OUT_OF_RANGE", /\^64/);
    });

    await t.step(
      "pow() with a count over the server's limit is INVALID_ARGUMENT before any power",
      async () => {
        const { values, error } = await settle(
          client.pow(2, { count: 1_000_001 }),
        );
        deepStrictEqual(values, []);
        assertStatus(error, "INVALID_ARGUMENT", /1000001/);
      },
    );

    await t.step(
      "sum() is exact at the int64 edges and OUT_OF_RANGE beyond them",
      async () => {
        strictEqual(await client.sum([INT64_MAX]), INT64_MAX);
        strictEqual(await client.sum([INT64_MIN]), INT64_MIN);
        strictEqual(await client.sum([INT64_MIN, INT64_MAX]), -1n);
        strictEqual(await client.sum([INT64_MAX, 1n, -1n]), INT64_MAX);
        strictEqual(await client.sum([]), 0n);
        await rejects(client.sum([INT64_MAX, 1n]), (error) => {
          assertStatus(error, "OUT_OF_RANGE", /9223372036854775808/);
          return true;
        });
        await rejects(
          client.sum([INT64_MIN, -1n]),
          isStatus("OUT_OF_RANGE"),
        );
      },
    );

    await t.step("sum() of 100,000 messages", async () => {
      strictEqual(await client.sum(upTo(100_000)), 5_000_050_000n);
    });

    await t.step(
      "sqrt() answers -0, Infinity and the double edges",
      async () => {
        deepStrictEqual(
          await Array.fromAsync(client.sqrt(DOUBLE_EDGES)),
          DOUBLE_EDGES.map(Math.sqrt),
        );
      },
    );

    await t.step(
      "sqrt() answers each number before the next is sent",
      async () => {
        deepStrictEqual(await interactiveSqrt(client, [16, 25, 36]), [
          "send 16",
          "answer 4",
          "send 25",
          "answer 5",
          "send 36",
          "answer 6",
        ]);
      },
    );

    await t.step(
      "sqrt() fails with INVALID_ARGUMENT naming the value, after the answers before it",
      async () => {
        const negative = await settle(client.sqrt([16, -1, 9]));
        deepStrictEqual(negative.values, [4]);
        assertStatus(negative.error, "INVALID_ARGUMENT", /-1\b/);
        const nan = await settle(client.sqrt([Number.NaN]));
        deepStrictEqual(nan.values, []);
        assertStatus(nan.error, "INVALID_ARGUMENT", /NaN/);
        const infinity = await settle(client.sqrt([9, -Infinity]));
        deepStrictEqual(infinity.values, [3]);
        assertStatus(infinity.error, "INVALID_ARGUMENT", /-Infinity/);
      },
    );
  });
}

/**
 * Runs `cancelled` (which makes the server's first `calls` calls, each ending early), then at
 * once another call on the same client, and checks that it works and that all of them went
 * over one connection.
 */
async function thenNextCall(
  { server, client, calls }: {
    server: PeerServer;
    client: StreamClient;
    calls: number;
  },
  cancelled: () => Promise<void>,
): Promise<void> {
  await cancelled();
  await assertUsable(client);
  const callers = await server.callers(calls + 1);
  strictEqual(
    new Set(callers).size,
    1,
    `Expected the calls on one connection: ${callers.join(", ")}`,
  );
}

/** A peer's server and our client of it, closed together. */
interface Connection extends AsyncDisposable {
  server: PeerServer;
  client: StreamClient;
}

function testCancels(peer: Peer, transport: ClientTransport): void {
  Deno.test(`Cancels and deadlines over ${transport} reach a ${peer.name} server and leave the connection usable`, async (t) => {
    // A server and a client per step, so that a step that breaks its connection fails alone.
    async function connect(): Promise<Connection> {
      const server = await peer.serve();
      const client = createClient(server.address, { transport });
      return {
        server,
        client,
        async [Symbol.asyncDispose](): Promise<void> {
          client.close();
          await server[Symbol.asyncDispose]();
        },
      };
    }
    const powCancelled = /^Pow\(1\) cancelled after \d+ of 1000000 powers$/;

    await t.step(
      "leaving a for await early cancels a fast Pow; the next call works",
      async () => {
        await using connection = await connect();
        const { server, client } = connection;
        await thenNextCall({ server, client, calls: 1 }, async () => {
          let seen = 0;
          for await (const _ of client.pow(1, { count: 1_000_000 })) {
            if (++seen === 1_000) break;
          }
        });
        await server.waitForLog(powCancelled);
      },
    );

    await t.step(
      "an aborted signal cancels a fast Pow; the next call works",
      async () => {
        await using connection = await connect();
        const { server, client } = connection;
        await thenNextCall({ server, client, calls: 1 }, async () => {
          const controller = new AbortController();
          let seen = 0;
          await rejects(
            (async () => {
              for await (
                const _ of client.pow(1, {
                  count: 1_000_000,
                  signal: controller.signal,
                })
              ) {
                if (++seen === 1_000) controller.abort();
              }
            })(),
            isAbortError,
          );
        });
        await server.waitForLog(powCancelled);
      },
    );

    await t.step(
      "a deadline ends a fast Pow with DEADLINE_EXCEEDED; the next call works",
      async () => {
        await using connection = await connect();
        const { server, client } = connection;
        await thenNextCall({ server, client, calls: 1 }, async () => {
          // Long enough for the call to reach the server on a busy machine (it must be
          // cancelled there), far too short for a million powers.
          const { error } = await settle(
            client.pow(1, { count: 1_000_000, timeout: 500 }),
          );
          assertStatus(error, "DEADLINE_EXCEEDED");
        });
        await server.waitForLog(powCancelled);
      },
    );

    await t.step(
      "an aborted signal cancels Sum and Sqrt on the server; the next call works",
      async () => {
        await using connection = await connect();
        const { server, client } = connection;
        await thenNextCall({ server, client, calls: 2 }, async () => {
          const sumController = new AbortController();
          const summing = client.sum(stalled(1), {
            signal: sumController.signal,
          });
          await server.waitForLog(/^Call Sum from /);
          sumController.abort();
          await rejects(summing, isAbortError);

          const sqrtController = new AbortController();
          const roots: number[] = [];
          await rejects(
            (async () => {
              for await (
                const root of client.sqrt(stalled(4), {
                  signal: sqrtController.signal,
                })
              ) {
                roots.push(root);
                sqrtController.abort();
              }
            })(),
            isAbortError,
          );
          deepStrictEqual(roots, [2]);
        });
        await server.waitForLog(/^Sum cancelled after \d numbers$/);
        await server.waitForLog(/^Sqrt cancelled after 1 numbers$/);
      },
    );

    await t.step(
      "a bad number in the turn a Sum writes cancels it on the server, not completes it; the next call works",
      async () => {
        await using connection = await connect();
        const { server, client } = connection;
        await thenNextCall({ server, client, calls: 2 }, async () => {
          // Connected first: grpc-js starts a call only once it has a connection, so a call
          // it cancels before then never reaches the server.
          strictEqual(await client.sum([0]), 0n);
          await rejects(client.sum([1, 2, 2.5]), RangeError);
        });
        await server.waitForLog(/^Sum cancelled after \d numbers$/);
      },
    );

    await t.step(
      "a deadline ends Sum and Sqrt with DEADLINE_EXCEEDED after the answers; the next call works",
      async () => {
        await using connection = await connect();
        const { server, client } = connection;
        await thenNextCall({ server, client, calls: 2 }, async () => {
          await rejects(
            client.sum(stalled(1), { timeout: 200 }),
            isStatus("DEADLINE_EXCEEDED"),
          );
          const { values, error } = await settle(
            client.sqrt(stalled(4), { timeout: 200 }),
          );
          deepStrictEqual(values, [2]);
          assertStatus(error, "DEADLINE_EXCEEDED");
        });
        await server.waitForLog(/^Sum cancelled after \d numbers$/);
        await server.waitForLog(/^Sqrt cancelled after 1 numbers$/);
      },
    );
  });
}

/** One call of a peer's client against our server, and what must come of it. */
interface PeerCase {
  name: string;
  call: PeerCall;
  expect: Partial<PeerResult>;
  /** What the status message must say. */
  details?: RegExp;
  /** Sqrt's answers, compared as numbers (so -0 is not 0) whatever their spelling. */
  roots?: number[];
}

const TWO_TO_THREE: PeerCase = {
  name: "the next call on the connection works",
  call: { method: "pow", number: "2", count: 3 },
  expect: { values: ["1", "2", "4"], code: "OK" },
};

/** Every call a peer's client makes, in this order, over one connection. */
const PEER_CASES: PeerCase[] = [
  {
    name: "Pow streams exact powers",
    call: { method: "pow", number: "2", count: 4 },
    expect: { values: ["1", "2", "4", "8"], code: "OK" },
  },
  {
    name: "Pow without a count streams 10 powers",
    call: { method: "pow", number: "3" },
    expect: { values: powers(3n, 10).map(String), code: "OK" },
  },
  {
    name: "Pow ends with OUT_OF_RANGE after the 63 powers of 2 that fit",
    call: { method: "pow", number: "2", count: 70 },
    expect: { values: powers(2n, 63).map(String), code: "OUT_OF_RANGE" },
    details: /2\^63/,
  },
  {
    name: "Pow of INT64_MIN",
    call: { method: "pow", number: String(INT64_MIN), count: 3 },
    expect: { values: ["1", String(INT64_MIN)], code: "OUT_OF_RANGE" },
  },
  {
    name: "Pow of -2 reaches INT64_MIN",
    call: { method: "pow", number: "-2", count: 70 },
    expect: { values: powers(-2n, 64).map(String), code: "OUT_OF_RANGE" },
  },
  {
    name: "Pow with a count over the limit is INVALID_ARGUMENT",
    call: { method: "pow", number: "2", count: 1_000_001 },
    expect: { received: 0, code: "INVALID_ARGUMENT" },
    details: /1000001/,
  },
  {
    name: "Sum of INT64_MAX",
    call: { method: "sum", numbers: [String(INT64_MAX)] },
    expect: { values: [String(INT64_MAX)], code: "OK" },
  },
  {
    name: "Sum of INT64_MIN",
    call: { method: "sum", numbers: [String(INT64_MIN)] },
    expect: { values: [String(INT64_MIN)], code: "OK" },
  },
  {
    name: "Sum is exact when a partial sum leaves int64",
    call: { method: "sum", numbers: [String(INT64_MAX), "1", "-1"] },
    expect: { values: [String(INT64_MAX)], code: "OK" },
  },
  {
    name: "Sum of nothing is 0",
    call: { method: "sum", numbers: [] },
    expect: { values: ["0"], code: "OK" },
  },
  {
    name: "Sum over INT64_MAX is OUT_OF_RANGE",
    call: { method: "sum", numbers: [String(INT64_MAX), "1"] },
    expect: { code: "OUT_OF_RANGE" },
    details: /9223372036854775808/,
  },
  {
    name: "Sum under INT64_MIN is OUT_OF_RANGE",
    call: { method: "sum", numbers: [String(INT64_MIN), "-1"] },
    expect: { code: "OUT_OF_RANGE" },
  },
  {
    name: "Sum of 100,000 messages",
    call: { method: "sum", upTo: 100_000 },
    expect: { values: ["5000050000"], code: "OK" },
  },
  {
    name: "Sqrt answers -0, Infinity and the double edges",
    call: { method: "sqrt", numbers: DOUBLE_EDGES.map(spell) },
    expect: { code: "OK" },
    roots: DOUBLE_EDGES.map(Math.sqrt),
  },
  {
    name: "Sqrt answers each number before the next is sent",
    call: {
      method: "sqrt",
      numbers: ["16", "25", "36"],
      interactive: true,
      timeoutMs: 10_000,
    },
    expect: { values: ["4", "5", "6"], code: "OK" },
  },
  {
    name: "Sqrt of -1 is INVALID_ARGUMENT after the answers before it",
    call: { method: "sqrt", numbers: ["16", "-1", "9"] },
    expect: { values: ["4"], code: "INVALID_ARGUMENT" },
    details: /-1 \(message 2\)/,
  },
  {
    name: "Sqrt of NaN is INVALID_ARGUMENT",
    call: { method: "sqrt", numbers: ["NaN"] },
    expect: { received: 0, code: "INVALID_ARGUMENT" },
    details: /NaN/,
  },
  {
    name: "a deadline ends a fast Pow with DEADLINE_EXCEEDED",
    call: {
      method: "pow",
      number: "1",
      count: 1_000_000,
      timeoutMs: 50,
      quiet: true,
    },
    expect: { code: "DEADLINE_EXCEEDED" },
  },
  TWO_TO_THREE,
  {
    name: "a cancel ends a fast Pow with CANCELLED",
    call: {
      method: "pow",
      number: "1",
      count: 1_000_000,
      cancelAfter: 1_000,
      quiet: true,
    },
    expect: { received: 1_000, code: "CANCELLED" },
  },
  TWO_TO_THREE,
  {
    name: "a cancel ends Sum with CANCELLED",
    call: {
      method: "sum",
      numbers: ["1", "2", "3"],
      cancelAfter: 2,
      hold: true,
    },
    expect: { code: "CANCELLED" },
  },
  {
    name: "a deadline ends Sum with DEADLINE_EXCEEDED",
    call: { method: "sum", numbers: ["1"], hold: true, timeoutMs: 200 },
    expect: { code: "DEADLINE_EXCEEDED" },
  },
  {
    name: "a deadline ends Sqrt with DEADLINE_EXCEEDED after its answer",
    call: { method: "sqrt", numbers: ["4"], hold: true, timeoutMs: 200 },
    expect: { values: ["2"], code: "DEADLINE_EXCEEDED" },
  },
  {
    name: "a cancel ends Sqrt with CANCELLED after its answer",
    call: { method: "sqrt", numbers: ["4", "9"], hold: true, cancelAfter: 1 },
    expect: { values: ["2"], code: "CANCELLED" },
  },
  TWO_TO_THREE,
];

function testPeerClient(peer: Peer): void {
  Deno.test(`A ${peer.name} client gets every answer and status from our server, over one connection`, async (t) => {
    const logger = recordingLogger();
    await using server = await startServer({ logger });
    const results = await peer.call(
      server.addresses[0]!,
      PEER_CASES.map((peerCase) => peerCase.call),
    );
    strictEqual(results.length, PEER_CASES.length);
    for (const [index, peerCase] of PEER_CASES.entries()) {
      await t.step(peerCase.name, () => {
        const result = results[index]!;
        const seen: Partial<PeerResult> = {};
        for (const key of Object.keys(peerCase.expect)) {
          const field = key as keyof PeerResult;
          Object.assign(seen, { [field]: result[field] });
        }
        deepStrictEqual(seen, peerCase.expect, JSON.stringify(result));
        if (peerCase.details !== undefined) {
          match(result.details, peerCase.details);
        }
        if (peerCase.roots !== undefined) {
          deepStrictEqual(result.values?.map(Number), peerCase.roots);
        }
      });
    }

    await t.step("our server saw each cancel and deadline", async () => {
      await logger.waitFor(/^Pow\(1\) cancelled after \d+ of 1000000 powers$/);
      await logger.waitFor(/^Sum cancelled by the client$/);
      await logger.waitFor(/^Sqrt cancelled by the client after 1 numbers$/);
    });
  });
}

/**
 * Registers the interop tests against `peer`.
 *
 * @param peer The other gRPC stack.
 */
export function testInterop(peer: Peer): void {
  for (const transport of TRANSPORTS) {
    testStatuses(peer, transport);
    testCancels(peer, transport);
  }
  testPeerClient(peer);
}
