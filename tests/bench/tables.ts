/**
 * The report as Markdown: the throughput, memory, slow-reader and "what streaming saves"
 * tables, the targets, every run, and the servers that died.
 *
 * @module
 */
import { ARTICLE_MODES } from "./article.ts";
import type { Shape } from "./common.ts";
import {
  formatCount,
  formatMiB,
  formatRate,
  formatRatio,
  table,
} from "./figures.ts";
import { cellOf, collectServerDeaths, ratioOf, type Report } from "./report.ts";
import {
  countOf,
  describeRun,
  stallMarker,
  type ThroughputCell,
} from "./throughput.ts";

function rateCell(cell: ThroughputCell | undefined): string {
  if (cell === undefined) return "";
  if (cell.failed && cell.medianRate === undefined) return "FAILED";
  let text = formatRate(cell.medianRate);
  if (cell.stalled) {
    const run = cell.runs.find((candidate) => candidate.result.stalled)!;
    text += ` ${stallMarker(run.result)}`;
  }
  if (cell.failed) text += " (some runs FAILED)";
  return text;
}

/** The main sections as Markdown, as `deno task bench` prints them. */
export function renderReport(report: Report): string {
  const { machine, settings } = report;
  const out: string[] = [];
  out.push("# grpc-stream benchmark");
  out.push("");
  out.push(
    `Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memory} RAM, ${machine.os}; ` +
      `Deno ${machine.deno} (V8 ${machine.v8}, TypeScript ${machine.typescript}); ` +
      `grpc-js ${machine.grpcJs}. Load average ${machine.loadAtStart} at the start, ` +
      `${machine.loadAtEnd} at the end. Code: ${machine.code}.`,
  );
  out.push(
    `Every client and server is a process of its own on 127.0.0.1, each run with a fresh ` +
      `server; figures are medians of ${settings.repeat} run${
        settings.repeat === 1 ? "" : "s"
      }${settings.quick ? " (--quick: smaller counts)" : ""}. ` +
      `Total time ${(report.seconds / 60).toFixed(1)} min.`,
  );
  out.push("");
  out.push("## Throughput (messages/s)");
  out.push("");
  const shapes: Shape[] = ["pow", "sum", "sqrt"];
  out.push(table(
    [
      "shape",
      "messages",
      "(a) our client → our server",
      "(b) grpc-js client → grpc-js handlers",
      "a/b",
      "(c) our client → grpc-js handlers",
      "server a/c",
      "(d) grpc-js client, 16 KiB retry buffer → grpc-js handlers",
      "(e) our helpers, grpc-js transport → our server",
    ],
    shapes.map((shape) => {
      const a = cellOf(report, { shape, pairing: "ours" });
      const b = cellOf(report, { shape, pairing: "baseline" });
      const c = cellOf(report, { shape, pairing: "oursOnBaseline" });
      const d = cellOf(report, { shape, pairing: "tunedBaseline" });
      const ab = ratioOf(a, b);
      const ac = ratioOf(a, c);
      return [
        shape,
        formatCount(countOf(shape, settings)),
        rateCell(a),
        rateCell(b),
        formatRatio(ab.ratio, ab.lowerBound),
        rateCell(c),
        formatRatio(ac.ratio, ac.lowerBound),
        d === undefined ? "(same as b)" : rateCell(d),
        rateCell(cellOf(report, { shape, pairing: "oursOverGrpcJs" })),
      ];
    }),
  ));
  out.push("");
  out.push(
    `pow: one call, count ${
      formatCount(settings.powCount)
    }, base 1. sum: the numbers 0 … n−1 on one call, the exact sum checked. ` +
      `sqrt: ${
        formatCount(settings.sqrtCount)
      } numbers on one bidirectional call, written as fast as flow control allows while ` +
      `the answers are read, each answer checked. (b) is grpc-js used as its examples use ` +
      `it; its runs are cancelled after ${settings.limitSeconds} s (--limit), and a run that ` +
      `stalls is not repeated. (d) is (b) with the channel option ` +
      `"grpc.per_rpc_retry_buffer_size": ${settings.tunedRetryBuffer}. ` +
      `"≥" marks a ratio over a baseline that did not finish.`,
  );
  out.push("");
  out.push("## Peak RSS of the server process (VmHWM, highest over the runs)");
  out.push("");
  out.push(table(
    ["shape", "(a) our server", "(b) grpc-js handlers", "(c) grpc-js handlers"],
    shapes.map((shape) => [
      shape,
      formatMiB(cellOf(report, { shape, pairing: "ours" })?.peakRssKb),
      formatMiB(cellOf(report, { shape, pairing: "baseline" })?.peakRssKb),
      formatMiB(
        cellOf(report, { shape, pairing: "oursOnBaseline" })?.peakRssKb,
      ),
    ]),
  ));
  out.push("");
  out.push(
    `## Memory under a slow reader (${settings.slowReadDelayMs} ms per value, a ` +
      `${settings.slowWindowSeconds} s window)`,
  );
  out.push("");
  out.push(table(
    ["server", "values read", "idle RSS", "peak RSS", "peak − idle"],
    report.slowReader.map((result) => [
      result.label,
      formatCount(result.valuesRead),
      formatMiB(result.idleRssKb),
      formatMiB(result.peakRssKb),
      `${formatMiB(result.growthKb)}${
        result.error === undefined ? "" : ` (FAILED: ${result.error})`
      }`,
    ]),
  ));
  out.push("");
  out.push(
    `Our client reads a ${
      formatCount(settings.slowCount)
    }-value pow at ${settings.slowReadDelayMs} ms per value; the whole call would take ` +
      `about ${
        Math.round(settings.slowCount * settings.slowReadDelayMs / 60_000)
      } min, so the server's RSS is sampled every 250 ms for a ` +
      `${settings.slowWindowSeconds} s window, after which the client leaves the call.`,
  );
  out.push("");
  out.push("## What streaming saves (µs per item)");
  out.push("");
  const workLevels = [...new Set(report.article.map((cell) => cell.workMs))];
  const header = ["mode"];
  for (const workMs of workLevels) {
    const count = report.article.find((cell) => cell.workMs === workMs)!.count;
    const name = workMs === 0 ? "no work" : `${workMs} ms work`;
    header.push(
      `${name} (n = ${formatCount(count)})`,
      `÷ stream, ${name}`,
    );
  }
  out.push(table(
    header,
    ARTICLE_MODES.map(({ mode, label }) => {
      const row = [label];
      for (const workMs of workLevels) {
        const cell = report.article.find((candidate) =>
          candidate.mode === mode && candidate.workMs === workMs
        )!;
        const stream = report.article.find((candidate) =>
          candidate.mode === "stream-interactive" && candidate.workMs === workMs
        )!;
        const value = cell.medianMicroseconds;
        row.push(
          value === undefined
            ? `FAILED (${cell.failures[0]})`
            : `${value.toFixed(1)}${
              cell.failures.length > 0 ? " (some runs FAILED)" : ""
            }`,
          value === undefined || stream.medianMicroseconds === undefined
            ? "–"
            : formatRatio(value / stream.medianMicroseconds),
        );
      }
      return row;
    }),
  ));
  out.push("");
  out.push(
    "No work: our server. 1 ms work: tests/bench/work_server.ts, whose handlers wait 1 ms " +
      "per number before answering, one number after another. The unary calls are " +
      "sequential; the ratio divides by the interactive stream.",
  );
  out.push("");
  out.push("## Targets");
  out.push("");
  out.push(table(
    ["target", "figure", "met"],
    report.targets.map((target) => [
      target.target,
      target.figure,
      target.met === null ? "n/a" : target.met ? "yes" : "NO",
    ]),
  ));
  out.push("");
  out.push("## Every run");
  out.push("");
  for (const cell of report.throughput) {
    out.push(
      `- ${cell.shape}, ${cell.label}: ${
        cell.runs.map(describeRun).join(" | ")
      }`,
    );
  }
  for (const cell of report.article) {
    out.push(
      `- ${cell.mode}, ${cell.workMs} ms work: ${
        [
          ...cell.runs.map((value) => `${value.toFixed(1)} µs`),
          ...cell.failures.map((failure) => `FAILED (${failure})`),
        ].join(" | ")
      }`,
    );
  }
  const deaths = collectServerDeaths(report);
  out.push("");
  out.push("## Server processes that died");
  out.push("");
  if (deaths.length === 0) {
    out.push("None: every server lived until it was asked to stop.");
  } else {
    const byExit = new Map<string, string[]>();
    for (const death of deaths) {
      byExit.set(death.exit, [
        ...(byExit.get(death.exit) ?? []),
        death.context,
      ]);
    }
    for (const [exit, contexts] of byExit) {
      out.push(`- ${contexts.length}× ${exit}: after ${contexts.join("; ")}`);
    }
  }
  return out.join("\n");
}
