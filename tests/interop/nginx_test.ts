/**
 * Three `serve` processes behind nginx (`grpc_pass`), the documented configuration of
 * `docs/scaling.md`: calls spread over the three, and a backend killed mid-call fails only
 * the calls it held. The rolling restart under load is
 * `tests/interop/nginx_rolling_restart_test.ts`.
 *
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import { createClient, GrpcError, Status } from "../../mod.ts";
import {
  call,
  holdCall,
  KINDS,
  spread,
  startBackends,
  startNginx,
  within,
} from "../_util/nginx.ts";

Deno.test("nginx spreads calls over three servers and routes around a killed one", async (t) => {
  const { ports, processes: backends } = await startBackends(3);
  try {
    await using nginx = await startNginx(ports);
    using client = createClient(nginx.address);

    await t.step("calls of all three kinds spread over the three", async () => {
      for (let i = 0; i < 30; i++) await call(client, KINDS[i % 3]!);
      // nginx writes a request's log line once it has finished with it, a moment after the
      // client has its answer.
      for (let wait = 0; nginx.accessLog().length < 30 && wait < 40; wait++) {
        await delay(50);
      }
      deepStrictEqual(spread(nginx.accessLog(), ports), [10, 10, 10]);
    });

    await t.step(
      "a killed server fails only the calls it held, and none hangs",
      async () => {
        const held = Array.from(
          { length: 12 },
          (_, id) =>
            holdCall(client, { kind: id % 2 === 0 ? "sqrt" : "sum", id }),
        );
        const holders = await Promise.all(held.map(async (call) => {
          const index = await within(
            Promise.any(backends.map(async (backend, index) => {
              await backend.waitForLine("stdout", new RegExp(`^${call.line}$`));
              return index;
            })),
            `${call.kind} reaching a server`,
          );
          return index;
        }));
        const victim = [0, 1, 2].find((index) =>
          held.some((call, i) =>
            holders[i] === index && call.kind === "sqrt"
          ) &&
          held.some((call, i) => holders[i] === index && call.kind === "sum")
        );
        ok(victim !== undefined, `No server holds both kinds: ${holders}`);
        // A server logs a number before its answer leaves: on a busy machine a kill right
        // after the log can come before nginx has the answer's headers, and nginx then
        // answers 502 instead of resetting a stream whose answer has begun.
        await within(
          Promise.all(
            held.filter((call) => call.kind === "sqrt").map((call) =>
              call.answered
            ),
          ),
          "the first roots",
        );
        backends[victim]!.kill("SIGKILL");
        await backends[victim]!.finished();
        for (const call of held) call.release();
        for (const [i, call] of held.entries()) {
          const outcome = await within(call.outcome, `${call.kind} call`);
          if (holders[i] === victim) {
            ok(
              outcome instanceof GrpcError,
              `${call.kind} ended with ${outcome}`,
            );
            if (call.kind === "sum") {
              // nginx had no answer to pass on yet: it answers 502, which is UNAVAILABLE.
              strictEqual(outcome.code, Status.UNAVAILABLE, outcome.message);
            } else {
              // The answer had begun: nginx can only reset the stream (INTERNAL_ERROR), which
              // gRPC maps to INTERNAL, as grpc-go and grpc-js do.
              strictEqual(outcome.code, Status.INTERNAL, outcome.message);
              match(outcome.details, /NGHTTP2_INTERNAL_ERROR/);
            }
          } else if (call.kind === "sqrt") {
            deepStrictEqual(outcome, [1000 + i, 2]);
          } else {
            strictEqual(outcome, BigInt(1000 + i + 1));
          }
        }
        for (let i = 0; i < 30; i++) await call(client, KINDS[i % 3]!);
      },
    );
  } finally {
    await Promise.all(
      backends.map((backend) => backend[Symbol.asyncDispose]()),
    );
  }
});
