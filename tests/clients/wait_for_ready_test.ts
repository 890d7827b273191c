import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert";
import { createClient, startServer } from "../../mod.ts";
import { unusedPort } from "../_util/subprocess.ts";
import {
  type Outage,
  outageFigures,
  RESTART_CALLERS,
  RESTART_PACE,
  RestartingServer,
  startCaller,
  unexcusedFailures,
} from "../_util/restart_callers.ts";
import { delay, failure } from "../_util/test_utils.ts";

Deno.test("waitForReady calls wait out a server's SIGKILL and SIGTERM restarts", async () => {
  await using server = await RestartingServer.start(unusedPort());
  const callers = await Promise.all(
    RESTART_CALLERS.map((kind) =>
      startCaller(kind, { address: server.address, ...RESTART_PACE })
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
            } ms): failed ${JSON.stringify(figures[index]!.failures)} (${
              figures[index]!.failedAfterBack
            } started once the server was back), ${
              figures[index]!.attemptsPerSecond.toFixed(1)
            } attempts/s`
          ).join("; ")
        }`,
      );
    }
    for (const { caller, calls } of results) {
      ok(calls.length > 200, `${caller.name} made ${calls.length} calls`);
      if (caller.kind.stack !== "ours") continue;
      for (const call of calls) {
        ok(
          !/pending stream|caused by/.test(call.details),
          `${caller.name}: Node's words in ${JSON.stringify(call)}`,
        );
      }
      if (!caller.kind.waitForReady) continue;
      const unexcused = unexcusedFailures(calls, {
        kind: caller.kind,
        outages,
        deadlineMs: RESTART_PACE.deadlineMs,
      });
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
