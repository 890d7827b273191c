/**
 * The throughput section: the article's three streams through five pairings of client and
 * server ((a) ours → ours … (e) our helpers over the grpc-js transport), a fresh server per
 * run, each server's peak memory sampled, rounds interleaved so a drift in the machine's
 * speed hits every pairing alike.
 *
 * @module
 */
import type { ClientResult, Shape } from "./common.ts";
import { formatCount, formatRate, median } from "./figures.ts";
import {
  delay,
  GRPC_JS_CLIENT_PERMISSIONS,
  log,
  RUN_PERMISSIONS,
  runClient,
  ServerProcess,
} from "./processes.ts";
import { MemorySampler } from "./proc.ts";
import type { Settings } from "./settings.ts";

/** A pairing of client and server, a column of the throughput table. */
export type Pairing =
  | "ours"
  | "baseline"
  | "oursOnBaseline"
  | "tunedBaseline"
  | "oursOverGrpcJs";

interface PairingInfo {
  label: string;
  client: string;
  clientPermissions: readonly string[];
  server: string;
  extraArgs(settings: Settings): string[];
}

/** What each pairing runs, and how the tables name it. */
export const PAIRINGS: Record<Pairing, PairingInfo> = {
  ours: {
    label: "(a) our client → our server",
    client: "our_client.ts",
    clientPermissions: RUN_PERMISSIONS,
    server: "our_server.ts",
    extraArgs: () => [],
  },
  baseline: {
    label: "(b) grpc-js client → grpc-js handlers",
    client: "baseline_client.ts",
    clientPermissions: GRPC_JS_CLIENT_PERMISSIONS,
    server: "baseline_server.ts",
    extraArgs: () => [],
  },
  oursOnBaseline: {
    label: "(c) our client → grpc-js handlers",
    client: "our_client.ts",
    clientPermissions: RUN_PERMISSIONS,
    server: "baseline_server.ts",
    extraArgs: () => [],
  },
  tunedBaseline: {
    label: "(d) grpc-js client, 16 KiB retry buffer → grpc-js handlers",
    client: "baseline_client.ts",
    clientPermissions: GRPC_JS_CLIENT_PERMISSIONS,
    server: "baseline_server.ts",
    extraArgs: (settings) => [
      "--retry-buffer",
      String(settings.tunedRetryBuffer),
    ],
  },
  oursOverGrpcJs: {
    label: "(e) our helpers, grpc-js transport → our server",
    client: "our_client.ts",
    clientPermissions: GRPC_JS_CLIENT_PERMISSIONS,
    server: "our_server.ts",
    extraArgs: () => ["--transport", "grpc-js"],
  },
};

/** Pairings per shape: (d) only where the client writes a stream, the only place it differs. */
const SHAPE_PAIRINGS: Record<Shape, Pairing[]> = {
  pow: ["ours", "baseline", "oursOnBaseline", "oursOverGrpcJs"],
  sum: [
    "ours",
    "baseline",
    "oursOnBaseline",
    "tunedBaseline",
    "oursOverGrpcJs",
  ],
  sqrt: [
    "ours",
    "baseline",
    "oursOnBaseline",
    "tunedBaseline",
    "oursOverGrpcJs",
  ],
};

/** One run of a shape through a pairing. */
export interface ThroughputRun {
  result: ClientResult;
  /** The server's `VmHWM` at the end of the run, in kB. */
  serverPeakKb: number | undefined;
  /** Set when the server process ended during or right after the run. */
  serverExit?: string;
}

/** The runs of one shape through one pairing, summed up. */
export interface ThroughputCell {
  shape: Shape;
  pairing: Pairing;
  label: string;
  count: number;
  runs: ThroughputRun[];
  /** Median rate over the runs that moved every message correctly, or over stalled runs. */
  medianRate: number | undefined;
  peakRssKb: number | undefined;
  stalled: boolean;
  failed: boolean;
  note?: string;
}

/** How many messages a shape moves per run. */
export function countOf(shape: Shape, settings: Settings): number {
  return shape === "pow"
    ? settings.powCount
    : shape === "sum"
    ? settings.sumCount
    : settings.sqrtCount;
}

/** Which cell of the throughput table: a shape through a pairing of client and server. */
export interface CellKey {
  shape: Shape;
  pairing: Pairing;
}

async function measureThroughputRun(
  { shape, pairing }: CellKey,
  settings: Settings,
): Promise<ThroughputRun> {
  const info = PAIRINGS[pairing];
  const count = countOf(shape, settings);
  // A fresh server per run, so each run's peak memory is its own.
  await using server = await ServerProcess.start(
    `Server of ${info.label}`,
    info.server,
  );
  const sampler = new MemorySampler(server.pid, 250);
  try {
    const limitSeconds = info.client === "baseline_client.ts"
      ? settings.limitSeconds
      : Math.max(settings.limitSeconds, 120);
    const result = await runClient(
      info.client,
      [
        shape,
        server.address,
        "--count",
        String(count),
        "--limit",
        String(limitSeconds),
        ...info.extraArgs(settings),
      ],
      {
        permissions: info.clientPermissions,
        hardLimitMs: (limitSeconds + 60) * 1000,
      },
    );
    // A server that fails on the client's goodbye does so within moments of it.
    await sampler.sample();
    await delay(300);
    await sampler.sample();
    const run: ThroughputRun = { result, serverPeakKb: sampler.peakKb };
    const exit = server.describeExit();
    if (exit !== undefined) run.serverExit = exit;
    return run;
  } finally {
    await sampler.stop();
  }
}

/** Whether a run failed, rather than stalled as plain grpc-js may. */
export function isFailure(result: ClientResult): boolean {
  return !result.ok && !(result.stalled && result.error === undefined);
}

function summarizeCell(
  { shape, pairing, count }: CellKey & { count: number },
  runs: ThroughputRun[],
): ThroughputCell {
  const good = runs.filter((run) => run.result.ok);
  const stalledRuns = runs.filter((run) =>
    run.result.stalled && run.result.error === undefined
  );
  const failures = runs.filter((run) => isFailure(run.result));
  const peaks = runs.flatMap((run) =>
    run.serverPeakKb === undefined ? [] : [run.serverPeakKb]
  );
  const cell: ThroughputCell = {
    shape,
    pairing,
    label: PAIRINGS[pairing].label,
    count,
    runs,
    medianRate: median(
      (good.length > 0 ? good : stalledRuns).map((run) => run.result.rate),
    ),
    peakRssKb: peaks.length === 0 ? undefined : Math.max(...peaks),
    stalled: good.length === 0 && stalledRuns.length > 0,
    failed: failures.length > 0,
  };
  if (failures.length > 0) {
    cell.note = `${failures.length} of ${runs.length} runs failed: ${
      failures[0]!.result.error ?? "wrong or missing answers"
    }`;
  }
  return cell;
}

/** One run as the progress and the "every run" list show it. */
export function describeRun(run: ThroughputRun): string {
  const result = run.result;
  let text = isFailure(result)
    ? `FAILED (${result.error ?? "wrong or missing answers"})`
    : `${formatRate(result.rate)} msg/s`;
  if (result.stalled) {
    text += ` ${stallMarker(result)}`;
    const pause = longestPause(result);
    if (pause !== undefined) {
      text += `, no progress for ${pause.seconds.toFixed(0)} s from message ${
        formatCount(pause.at)
      }`;
    }
  }
  if (run.serverExit !== undefined) {
    text += ` (then the server died: ${shortExit(run.serverExit)})`;
  }
  return text;
}

/** "signal SIGABRT" out of "signal SIGABRT: deno: nghttp2/…". */
function shortExit(exit: string): string {
  return exit.split(": ")[0] ?? exit;
}

/** How far a stalled run got, and in how long. */
export function stallMarker(result: ClientResult): string {
  return `stalled/incomplete (${formatCount(result.completed)} of ${
    formatCount(result.expected)
  } in ${result.seconds.toFixed(0)} s)`;
}

/** The longest stretch of a run's progress samples without a new message. */
function longestPause(
  result: ClientResult,
): { seconds: number; at: number } | undefined {
  const samples = result.progress ?? [];
  let best: { seconds: number; at: number } | undefined;
  let since = 0;
  for (let i = 1; i < samples.length; i++) {
    const [time, completed] = samples[i]!;
    const [startTime, startCompleted] = samples[since]!;
    if (completed !== startCompleted) {
      since = i;
      continue;
    }
    const seconds = time - startTime;
    if (seconds > (best?.seconds ?? 0)) best = { seconds, at: completed };
  }
  return best !== undefined && best.seconds >= 2 ? best : undefined;
}

/** Runs the throughput section, every pairing of every shape, `repeat` rounds. */
export async function measureThroughput(
  settings: Settings,
): Promise<ThroughputCell[]> {
  const shapes: Shape[] = ["pow", "sum", "sqrt"];
  const runs = new Map<string, ThroughputRun[]>();
  // Rounds interleave the pairings, so a drift in the machine's speed hits all of them alike.
  for (let round = 1; round <= settings.repeat; round++) {
    for (const shape of shapes) {
      for (const pairing of SHAPE_PAIRINGS[shape]) {
        const key = `${shape}/${pairing}`;
        const previous = runs.get(key) ?? [];
        // A plain grpc-js run that stalled would stall again for the whole limit: one is
        // enough to report it, and the time goes to the runs that still vary.
        if (previous.some((run) => run.result.stalled)) continue;
        const run = await measureThroughputRun({ shape, pairing }, settings);
        runs.set(key, [...previous, run]);
        log(
          `${shape} ${
            PAIRINGS[pairing].label
          }, run ${round}/${settings.repeat}: ${describeRun(run)}`,
        );
      }
    }
  }
  return shapes.flatMap((shape) =>
    SHAPE_PAIRINGS[shape].map((pairing) =>
      summarizeCell(
        { shape, pairing, count: countOf(shape, settings) },
        runs.get(`${shape}/${pairing}`) ?? [],
      )
    )
  );
}
