/**
 * The benchmark's warm-up section: a `Sum` of 200,000 and of 1,000,000 numbers from the grpc-go
 * load client, on a server process started for it (the first call it answers, as the limit
 * section measures every stream) and on the same process once warm (its third call of that
 * size), for our server and grpc-go's, side by side round after round. grpc-go's code is
 * compiled ahead of time; ours runs in V8, which compiles the hot paths (the frame tap, the
 * deframer, the handler) as they run, so a fresh process's first call pays for that once.
 * This is a module of the runner, not a program.
 *
 * @module
 */
import { median } from "./figures.ts";
import {
  type GoPrograms,
  runStreamLoad,
  Server,
  SERVER_LABELS,
} from "./limit_servers.ts";
import { log } from "./processes.ts";

/** The sizes of `Sum` measured. */
const COUNTS = [200_000, 1_000_000] as const;

/** The servers compared. */
const SERVERS = ["ours", "grpcGo"] as const;

/** Which call of a fresh process counts as warm. */
const WARM_CALL = 3;

/** The figures of one server for one size of `Sum`. */
export interface WarmupCell {
  server: (typeof SERVERS)[number];
  count: number;
  /** Messages/s of the first call of each fresh process. */
  coldRates: number[];
  /** Messages/s of the {@linkcode WARM_CALL}rd call of the same process. */
  warmRates: number[];
  failures: string[];
}

/**
 * Runs the section.
 *
 * @param settings How many rounds.
 * @param go The built grpc-go programs.
 * @returns One cell per server and size.
 */
export async function measureWarmup(
  settings: { repeat: number },
  go: Exclude<GoPrograms, { missing: string }>,
): Promise<WarmupCell[]> {
  const cells: WarmupCell[] = [];
  for (const count of COUNTS) {
    const row = SERVERS.map((server): WarmupCell => ({
      server,
      count,
      coldRates: [],
      warmRates: [],
      failures: [],
    }));
    for (let round = 0; round < settings.repeat; round++) {
      for (const cell of row) {
        log(
          `warm-up: sum × ${count} → ${SERVER_LABELS[cell.server]} (round ${
            round + 1
          })`,
        );
        await using server = await Server.start(cell.server, go);
        for (let call = 1; call <= WARM_CALL; call++) {
          const result = await runStreamLoad(go.load, {
            shape: "sum",
            address: server.address,
            count,
          });
          if ("failure" in result) cell.failures.push(result.failure);
          else if (call === 1) cell.coldRates.push(result.rate);
          else if (call === WARM_CALL) cell.warmRates.push(result.rate);
        }
      }
    }
    cells.push(...row);
  }
  return cells;
}

/**
 * Renders the section as a Markdown table.
 *
 * @param cells The figures.
 * @param repeat How many rounds were run.
 * @returns The text.
 */
export function renderWarmup(cells: WarmupCell[], repeat: number): string {
  const rate = (values: number[]): number | undefined => median(values);
  const text = (value: number | undefined): string =>
    value === undefined ? "failed" : Math.round(value).toLocaleString("en-US");
  const ratio = (a: number | undefined, b: number | undefined): string =>
    a === undefined || b === undefined ? "–" : `${(a / b).toFixed(2)}×`;
  const rows = COUNTS.map((count) => {
    const ours = cells.find((c) => c.server === "ours" && c.count === count);
    const go = cells.find((c) => c.server === "grpcGo" && c.count === count);
    const [oursCold, goCold, oursWarm, goWarm] = [
      rate(ours?.coldRates ?? []),
      rate(go?.coldRates ?? []),
      rate(ours?.warmRates ?? []),
      rate(go?.warmRates ?? []),
    ];
    return `| Sum × ${count.toLocaleString("en-US")} | ${text(oursCold)} | ${
      text(goCold)
    } | ${ratio(oursCold, goCold)} | ${text(oursWarm)} | ${text(goWarm)} | ${
      ratio(oursWarm, goWarm)
    } |`;
  });
  return [
    "## Warm-up: a fresh process's first call and its third",
    "",
    `Messages/s, grpc-go's load client; each round starts each server afresh and makes ` +
    `${WARM_CALL} calls of the size (median of ${repeat}).`,
    "",
    "| call | ours, first call | grpc-go, first call | ratio | ours, third call | grpc-go, third call | ratio |",
    "|---|--:|--:|--:|--:|--:|--:|",
    ...rows,
  ].join("\n");
}

/** Whether any figure of the section failed. */
export function warmupHasFailures(cells: WarmupCell[]): boolean {
  return cells.some((cell) => cell.failures.length > 0);
}
