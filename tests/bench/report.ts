/**
 * What one run found, as the JSON of `--json` holds it: every section's figures, the targets
 * judged against them, the servers that died, and whether anything failed.
 *
 * @module
 */
import type { WarmupCell } from "./warmup.ts";
import type { ArticleCell } from "./article.ts";
import { formatCount, formatMiB, formatRate, formatRatio } from "./figures.ts";
import type { CallsReport } from "./calls.ts";
import type { LimitReport } from "./limit.ts";
import type { Machine } from "./machine.ts";
import type { Settings } from "./settings.ts";
import type { SlowReaderResult } from "./slow_reader.ts";
import type { CellKey, ThroughputCell } from "./throughput.ts";

/** One target of the benchmark, and whether this run met it. */
export interface Target {
  target: string;
  figure: string;
  /** `null` where the run cannot judge it (`--quick` counts). */
  met: boolean | null;
}

/** Everything one run found; `--json` prints it. */
export interface Report {
  machine: Machine;
  settings: Settings;
  throughput: ThroughputCell[];
  slowReader: SlowReaderResult[];
  article: ArticleCell[];
  targets: Target[];
  /** grpc-go side by side with ours and plain grpc-js; each figure names its stacks. */
  limit: LimitReport;
  /** The short-call section, against grpc-go. */
  calls: CallsReport;
  /** A fresh server's first `Sum` and its third, against grpc-go's. */
  warmup: WarmupCell[];
  seconds: number;
}

/** A server process that ended before it was asked to, and where. */
export interface ServerDeath {
  context: string;
  exit: string;
}

/** Every server that died, with the section and run it died in. */
export function collectServerDeaths(
  report: Pick<Report, "throughput" | "slowReader" | "article">,
): ServerDeath[] {
  const deaths: ServerDeath[] = [];
  for (const cell of report.throughput) {
    for (const run of cell.runs) {
      if (run.serverExit !== undefined) {
        deaths.push({
          context: `${cell.shape}, ${cell.label}`,
          exit: run.serverExit,
        });
      }
    }
  }
  for (const result of report.slowReader) {
    if (result.serverExit !== undefined) {
      deaths.push({
        context: `slow reader, ${result.label}`,
        exit: result.serverExit,
      });
    }
  }
  for (const cell of report.article) {
    for (const exit of cell.serverExits) {
      deaths.push({
        context: `${cell.mode}, ${cell.workMs} ms work`,
        exit,
      });
    }
  }
  return deaths;
}

/** The throughput cell of a shape and a pairing. */
export function cellOf(
  report: Pick<Report, "throughput">,
  { shape, pairing }: CellKey,
): ThroughputCell | undefined {
  return report.throughput.find((cell) =>
    cell.shape === shape && cell.pairing === pairing
  );
}

/** a/b, and whether it is only a lower bound because b stalled before it finished. */
export function ratioOf(
  a: ThroughputCell | undefined,
  b: ThroughputCell | undefined,
): { ratio: number | undefined; lowerBound: boolean } {
  if (
    a?.medianRate === undefined || b?.medianRate === undefined || a.failed ||
    b.failed || a.stalled
  ) {
    return { ratio: undefined, lowerBound: false };
  }
  return { ratio: a.medianRate / b.medianRate, lowerBound: b.stalled };
}

/** Judges the figures against the benchmark's targets. */
export function evaluateTargets(
  report: Omit<Report, "targets" | "seconds" | "limit" | "calls" | "warmup">,
): Target[] {
  const targets: Target[] = [];
  const fullCounts = !report.settings.quick;
  const sum = cellOf(report, { shape: "sum", pairing: "ours" });
  targets.push({
    target: "our sum ≥ 50,000 msg/s over the whole million",
    figure: `${formatRate(sum?.medianRate)} msg/s over ${
      formatCount(sum?.count ?? 0)
    }`,
    met: sum?.medianRate === undefined || sum.failed
      ? false
      : fullCounts
      ? sum.medianRate >= 50_000
      : null,
  });
  const sqrt = cellOf(report, { shape: "sqrt", pairing: "ours" });
  targets.push({
    target: "our sqrt ≥ 25,000 answers/s",
    figure: `${formatRate(sqrt?.medianRate)} answers/s`,
    met: sqrt?.medianRate === undefined || sqrt.failed
      ? false
      : sqrt.medianRate >= 25_000,
  });
  const powRatio = ratioOf(
    cellOf(report, { shape: "pow", pairing: "ours" }),
    cellOf(report, { shape: "pow", pairing: "baseline" }),
  );
  targets.push({
    target: "our pow ≥ 1.5× the plain grpc-js baseline",
    figure: formatRatio(powRatio.ratio, powRatio.lowerBound),
    met: powRatio.ratio === undefined ? false : powRatio.ratio >= 1.5,
  });
  for (const shape of ["pow", "sum", "sqrt"] as const) {
    const serverRatio = ratioOf(
      cellOf(report, { shape, pairing: "ours" }),
      cellOf(report, { shape, pairing: "oursOnBaseline" }),
    );
    targets.push({
      target: `our server ≥ 1.0× the grpc-js handlers on ${shape} (a/c)`,
      figure: formatRatio(serverRatio.ratio, serverRatio.lowerBound),
      met: serverRatio.ratio === undefined ? false : serverRatio.ratio >= 1.0,
    });
  }
  const ours = report.slowReader.find((result) => result.server === "ours");
  targets.push({
    target: "slow reader: our server's RSS within 50 MiB of idle",
    figure: `+${formatMiB(ours?.growthKb)}`,
    met: ours?.growthKb === undefined || ours.error !== undefined
      ? false
      : ours.growthKb <= 50 * 1024,
  });
  const baseline = report.slowReader.find((result) =>
    result.server === "baseline"
  );
  targets.push({
    target: "slow reader: the grpc-js handlers are not (for contrast)",
    figure: `+${formatMiB(baseline?.growthKb)}`,
    met: baseline?.growthKb === undefined
      ? null
      : baseline.growthKb > 50 * 1024,
  });
  return targets;
}

/** Whether any run of the main sections gave a wrong answer or failed. */
export function hasFailures(report: Report): boolean {
  return report.throughput.some((cell) => cell.failed) ||
    report.slowReader.some((result) => result.error !== undefined) ||
    report.article.some((cell) => cell.failures.length > 0);
}
