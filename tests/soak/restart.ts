/**
 * The soak's restart case: `Sum` callers (ours by default and with wait-for-ready, ours over
 * grpc-js with wait-for-ready, grpc-go by default and with `WaitForReady`) call every 10 ms
 * with a 1 s deadline while `grpc-stream serve` is SIGKILLed and started again at once, then
 * SIGTERMed and started again at once, then SIGKILLed and kept down for a while, so the
 * connection attempts per second of a client whose server is down can be counted.
 *
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
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

/** One run: three outages; returns whether ours with wait-for-ready failed only as it may. */
async function restartRun(run: number, downSeconds: number): Promise<boolean> {
  await using server = await RestartingServer.start(unusedPort());
  const callers = await Promise.all(
    RESTART_CALLERS.map((kind) =>
      startCaller(kind, { address: server.address, ...RESTART_PACE })
    ),
  );
  let ok = true;
  try {
    await Promise.all(callers.map((caller) => caller.started()));
    await delay(500);
    const outages: Outage[] = [];
    outages.push(await server.restart("SIGKILL"));
    await delay(2_000);
    outages.push(await server.restart("SIGTERM"));
    await delay(2_000);
    outages.push(
      await server.restart("SIGKILL", { downMs: downSeconds * 1_000 }),
    );
    await delay(3_000);
    console.log(
      `restart run ${run}: ${
        outages.map((outage) =>
          `${outage.signal} (exited after ${
            outage.exitedAt - outage.stoppedAt
          } ms) back after ${outage.backAt - outage.stoppedAt} ms`
        ).join(", ")
      }`,
    );
    for (const caller of callers) {
      const { calls, attempts } = await caller.stop();
      const figures = outages.map((outage) =>
        outageFigures({ calls, attempts }, {
          outage,
          deadlineMs: RESTART_PACE.deadlineMs,
        })
      );
      // Only ours over its own transport brings an attempt forward for a waiting call.
      const judged = caller.kind.waitForReady && caller.kind.stack === "ours" &&
        caller.kind.transport !== "grpc-js";
      const unexcused = judged
        ? unexcusedFailures(calls, {
          kind: caller.kind,
          outages,
          deadlineMs: RESTART_PACE.deadlineMs,
        })
        : [];
      console.log(
        `  ${caller.name}: ${calls.length} calls; ${
          figures.map((figure, index) =>
            `${outages[index]!.signal}: failed ${
              JSON.stringify(figure.failures)
            } (${figure.failedAfterBack} started once the server was back), ${
              figure.attemptsPerSecond.toFixed(1)
            } attempts/s`
          ).join("; ")
        }${judged ? `; failures not excused: ${unexcused.length}` : ""}`,
      );
      for (const call of unexcused.slice(0, 5)) {
        console.log(`    ${JSON.stringify(call)}`);
      }
      ok = unexcused.length === 0 && ok;
    }
  } finally {
    for (const caller of callers) await caller[Symbol.asyncDispose]();
  }
  return ok;
}

/**
 * Runs the restart case `runs` times.
 *
 * @param runs How many runs.
 * @param downSeconds How long the last outage of each run keeps the server down.
 * @returns Whether ours with wait-for-ready failed only calls the server had taken, or calls
 * whose deadline the outage outlasted.
 */
export async function restarts(
  runs: number,
  downSeconds: number,
): Promise<boolean> {
  let ok = true;
  for (let run = 1; run <= runs; run++) {
    ok = await restartRun(run, downSeconds) && ok;
  }
  return ok;
}
