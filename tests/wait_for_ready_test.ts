import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert";
import { createClient, startServer } from "../mod.ts";
import { unusedPort } from "./subprocess.ts";
import {
  type CallerKind,
  type CallRecord,
  type Outage,
  outageFigures,
  RestartingServer,
  startCaller,
} from "./restart_callers.ts";
import { delay, failure } from "./test_utils.ts";

const PACE = { intervalMs: 10, deadlineMs: 1_000 };
/**
 * How long after the server is back a waiting call may still be waiting: the redial floor
 * of wait-for-ready calls (200 ms), and time for a busy machine to run the timers.
 */
const BACK_SLACK_MS = 400;
/**
 * How grpc-js ends a call whose connection broke under a write: `INTERNAL`, as it does on
 * Node.
 */
const GRPC_JS_WRITE_FAILED =
  /^Received RST_STREAM with code 2 triggered by internal client error: write (EPIPE|ECONNRESET)/;
/** How long after the stop signal a call may start and still be on the dying connection. */
const IN_FLIGHT_SLACK_MS = 50;

/**
 * How long after the server is back a grpc-js channel may still back off: it dials a
 * waiting call no sooner than its backoff allows (1 s, then 1.6 s, ±20%).
 */
const GRPC_JS_BACKOFF_SLACK_MS = 1_920;

/**
 * Why a failed wait-for-ready call may fail, or `undefined` when it should not have: it was
 * on the connection when the server died, or the server was back too late for its deadline
 * (with `backoffSlackMs` more for a channel that waits out its backoff).
 */
function excuse(
  call: CallRecord,
  { outages, backoffSlackMs }: {
    outages: readonly Outage[];
    backoffSlackMs: number;
  },
): string | undefined {
  for (const outage of outages) {
    if (
      (call.code === "UNAVAILABLE" ||
        GRPC_JS_WRITE_FAILED.test(call.details)) &&
      outage.signal === "SIGKILL" &&
      call.start >= outage.stoppedAt - PACE.deadlineMs &&
      call.start <= outage.stoppedAt + IN_FLIGHT_SLACK_MS
    ) {
      return "in flight at the kill";
    }
    if (
      call.code === "DEADLINE_EXCEEDED" &&
      call.start >= outage.stoppedAt - PACE.deadlineMs &&
      call.start + PACE.deadlineMs <
        outage.backAt + BACK_SLACK_MS + backoffSlackMs
    ) {
      return "the server was back too late for its deadline";
    }
  }
  return undefined;
}

Deno.test("waitForReady calls wait out a server's SIGKILL and SIGTERM restarts", async () => {
  await using server = await RestartingServer.start(unusedPort());
  const kinds: CallerKind[] = [
    { stack: "ours", waitForReady: false },
    { stack: "ours", waitForReady: true },
    { stack: "ours", waitForReady: true, transport: "grpc-js" },
    { stack: "grpc-go", waitForReady: false },
    { stack: "grpc-go", waitForReady: true },
  ];
  const callers = await Promise.all(
    kinds.map((kind) =>
      startCaller(kind, { address: server.address, ...PACE })
    ),
  );
  try {
    await Promise.all(callers.map((caller) => caller.started()));
    await delay(300);
    const outages: Outage[] = [];
    outages.push(await server.restart("SIGKILL"));
    await delay(1_500);
    outages.push(await server.restart("SIGTERM"));
    await delay(1_500);
    const results = [];
    for (const caller of callers) {
      results.push({ caller, ...await caller.stop() });
    }
    for (const { caller, calls, attempts } of results) {
      const figures = outages.map((outage) =>
        outageFigures({ calls, attempts }, { outage, deadlineMs: 1_000 })
      );
      console.log(
        `${caller.name}: ${calls.length} calls; ${
          outages.map((outage, index) =>
            `${outage.signal} (back after ${
              outage.backAt - outage.stoppedAt
            } ms): failed ${JSON.stringify(figures[index]!.failures)}, ${
              figures[index]!.attemptsPerSecond.toFixed(1)
            } attempts/s`
          ).join("; ")
        }`,
      );
    }
    for (const { caller, calls } of results) {
      ok(calls.length > 300, `${caller.name} made ${calls.length} calls`);
      if (caller.kind.stack !== "ours") continue;
      for (const call of calls) {
        ok(
          !/pending stream|caused by/.test(call.details),
          `${caller.name}: Node's words in ${JSON.stringify(call)}`,
        );
      }
      if (!caller.kind.waitForReady) continue;
      // Ours dials at once for a waiting call; over grpc-js the channel keeps its backoff.
      const backoffSlackMs = caller.kind.transport === "grpc-js"
        ? GRPC_JS_BACKOFF_SLACK_MS
        : 0;
      const unexcused = calls.filter((call) =>
        call.code !== "OK" &&
        excuse(call, { outages, backoffSlackMs }) === undefined
      );
      deepStrictEqual(
        unexcused,
        [],
        `${caller.name}: calls that should have waited:\n${
          unexcused.map((call) => JSON.stringify(call)).join("\n")
        }\noutages: ${JSON.stringify(outages)}`,
      );
    }
  } finally {
    for (const caller of callers) await caller[Symbol.asyncDispose]();
  }
});

Deno.test("a waitForReady call ends DEADLINE_EXCEEDED when no server comes within its deadline", async () => {
  const address = `127.0.0.1:${unusedPort()}`;
  for (const transport of ["http2", "grpc-js"] as const) {
    using client = createClient(address, {
      transport,
      waitForReady: true,
      initialBackoffMs: 50,
      maxBackoffMs: 100,
    });
    const started = Date.now();
    const error = await failure(client.sum([1], { timeout: 300 }));
    strictEqual(error.codeName, "DEADLINE_EXCEEDED", String(error));
    ok(Date.now() - started >= 290, `${transport}: ended too soon`);
    // A call that does not wait fails at once, in plain words.
    const refused = await failure(
      client.sum([1], { timeout: 300, waitForReady: false }),
    );
    strictEqual(refused.codeName, "UNAVAILABLE", String(refused));
  }
});

Deno.test("a waitForReady call made before its server starts is answered once it does", async () => {
  const port = unusedPort();
  for (const transport of ["http2", "grpc-js"] as const) {
    using client = createClient(`127.0.0.1:${port}`, {
      transport,
      initialBackoffMs: 50,
      maxBackoffMs: 100,
    });
    const early = client.sum([1, 2, 3], { timeout: 5_000, waitForReady: true });
    const fast = await failure(client.sum([1], { timeout: 5_000 }));
    strictEqual(fast.codeName, "UNAVAILABLE", String(fast));
    if (transport === "http2") {
      strictEqual(
        fast.details,
        `Cannot reach 127.0.0.1:${port}: Connection refused`,
      );
    }
    await delay(300);
    await using _server = await startServer({ port });
    strictEqual(await early, 6n);
  }
});

Deno.test("createClient() checks waitForReady and the backoff options", async () => {
  for (
    const options of [
      { waitForReady: 1 as unknown as boolean },
      { initialBackoffMs: 0 },
      { maxBackoffMs: 1.5 },
      { initialBackoffMs: 2_000, maxBackoffMs: 1_000 },
      { backoffMultiplier: 0.5 },
      { backoffMultiplier: Number.NaN },
    ]
  ) {
    throws(
      () => createClient("127.0.0.1:1", options),
      options.waitForReady === undefined ? RangeError : TypeError,
    );
  }
  throws(
    () =>
      createClient("127.0.0.1:1", {
        transport: "grpc-js",
        backoffMultiplier: 2,
      }),
    TypeError,
  );
  using client = createClient("127.0.0.1:1");
  await rejects(
    client.sum([1], { waitForReady: "yes" as unknown as boolean }),
    TypeError,
  );
});
