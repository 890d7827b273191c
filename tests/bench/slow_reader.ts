/**
 * The slow-reader section: how much memory a server holds while our client reads a long
 * `pow` at one value per millisecond, for our server and for the grpc-js handlers that
 * ignore `write()`'s answer, sampled over a window.
 *
 * @module
 */
import type { ClientResult } from "./common.ts";
import { formatCount, formatMiB, median } from "./figures.ts";
import { delay, log, runClient, ServerProcess } from "./processes.ts";
import { MemorySampler, readMemory } from "./proc.ts";
import type { Settings } from "./settings.ts";

/** What the slow reader found for one server. */
export interface SlowReaderResult {
  server: "ours" | "baseline";
  label: string;
  idleRssKb: number | undefined;
  peakRssKb: number | undefined;
  growthKb: number | undefined;
  valuesRead: number;
  windowSeconds: number;
  samples: [number, number][];
  error?: string;
  serverExit?: string;
}

/** Watches one server's memory while our client reads slowly. */
export async function measureSlowReader(
  server: "ours" | "baseline",
  settings: Settings,
): Promise<SlowReaderResult> {
  const label = server === "ours"
    ? "our server"
    : "grpc-js handlers (ignore write())";
  const program = server === "ours" ? "our_server.ts" : "baseline_server.ts";
  await using serverProcess = await ServerProcess.start(
    `Server ${label}`,
    program,
  );
  // Idle: the settled RSS of a started server before any call.
  await delay(500);
  const idleSamples: number[] = [];
  for (let i = 0; i < 4; i++) {
    const memory = await readMemory(serverProcess.pid);
    if (memory !== undefined) idleSamples.push(memory.rssKb);
    await delay(250);
  }
  const idleRssKb = median(idleSamples);
  const sampler = new MemorySampler(serverProcess.pid, 250);
  let result: ClientResult;
  try {
    result = await runClient(
      "our_client.ts",
      [
        "slow-pow",
        serverProcess.address,
        "--count",
        String(settings.slowCount),
        "--read-delay",
        String(settings.slowReadDelayMs),
        "--window",
        String(settings.slowWindowSeconds),
      ],
      { hardLimitMs: (settings.slowWindowSeconds + 60) * 1000 },
    );
  } finally {
    await sampler.stop();
  }
  const peakRssKb = sampler.maxRssKb;
  const slow: SlowReaderResult = {
    server,
    label,
    idleRssKb,
    peakRssKb,
    growthKb: peakRssKb === undefined || idleRssKb === undefined
      ? undefined
      : peakRssKb - idleRssKb,
    valuesRead: result.completed,
    windowSeconds: settings.slowWindowSeconds,
    samples: sampler.samples.map((sample) => [
      Math.round(sample.seconds * 100) / 100,
      sample.memory.rssKb,
    ]),
  };
  if (!result.ok) slow.error = result.error ?? "Wrong values";
  const exit = serverProcess.describeExit();
  if (exit !== undefined) slow.serverExit = exit;
  log(
    `Slow reader, ${label}: idle ${formatMiB(idleRssKb)}, peak ${
      formatMiB(peakRssKb)
    }, ${formatCount(result.completed)} values read${
      slow.error === undefined ? "" : `, FAILED: ${slow.error}`
    }`,
  );
  return slow;
}
