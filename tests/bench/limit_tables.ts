/**
 * The limit section (`limit.ts`) as Markdown: streams through one grpc-go load client, `Sum`
 * through `serve` and the bare `node:http2` floor, and the short calls of each stack.
 *
 * @module
 */
import type { Shape, ShortResult } from "./common.ts";
import {
  type LimitReport,
  type LimitSettings,
  SHORT_PAIRINGS,
  type ShortPairing,
} from "./limit.ts";
import { SERVER_LABELS, type ServerKind } from "./limit_servers.ts";

function rate(value: number | undefined): string {
  return value === undefined ? "failed" : Math.round(value).toLocaleString(
    "en-US",
  );
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || b === 0
    ? "–"
    : `${(a / b).toFixed(2)}×`;
}

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => i === 0 ? "---" : "--:").join("|")}|`,
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ].join("\n");
}

/**
 * Renders the section as Markdown tables.
 *
 * @param report The figures.
 * @param settings What was measured.
 * @returns The text.
 */
export function renderLimit(
  report: LimitReport,
  settings: LimitSettings,
): string {
  const out: string[] = ["## The limit: grpc-go, side by side", ""];
  if (report.goMissing !== undefined) {
    out.push(`Skipped: ${report.goMissing}`);
    return out.join("\n");
  }
  out.push(
    `Messages/s, the same grpc-go load client against each server, servers taken in turn ` +
      `round after round (median of ${settings.repeat}).`,
    "",
  );
  const cell = (shape: Shape, server: ServerKind) =>
    report.streams.find((c) => c.shape === shape && c.server === server);
  const rows = (["pow", "sum", "sqrt"] as const).map((shape) => {
    const ours = cell(shape, "ours");
    const grpcJs = cell(shape, "grpcJs");
    const grpcGo = cell(shape, "grpcGo");
    return [
      `${shape[0]!.toUpperCase()}${shape.slice(1)}, ${
        ours?.count.toLocaleString("en-US")
      }`,
      rate(ours?.medianRate),
      rate(grpcJs?.medianRate),
      rate(grpcGo?.medianRate),
      ratio(ours?.medianRate, grpcGo?.medianRate),
      ratio(ours?.medianRate, grpcJs?.medianRate),
    ];
  });
  out.push(table([
    "messages/s",
    "our server",
    "plain grpc-js (Deno)",
    "grpc-go",
    "ours ÷ grpc-go",
    "ours ÷ grpc-js",
  ], rows));
  const logged = cell("sum", "serveLogged");
  const quiet = cell("sum", "serveQuiet");
  out.push(
    "",
    table(["Sum through `serve`", "messages/s", "÷ --log none"], [
      [
        "--log messages (default)",
        rate(logged?.medianRate),
        ratio(
          logged?.medianRate,
          quiet?.medianRate,
        ),
      ],
      ["--log none", rate(quiet?.medianRate), "1.00×"],
    ]),
  );
  const floor = cell("sum", "floor");
  out.push(
    "",
    "What Deno's `node:http2` costs for one DATA frame per message: a bare `node:http2` " +
      "server that takes each frame from its stream handle's `onread` and only adds the " +
      "numbers. Our server reads the frames from the socket's bytes before nghttp2 instead, " +
      "which spares it that per-frame cost.",
    "",
    table(["Sum", "messages/s", "÷ grpc-go", "our server ÷ this"], [
      [
        "bare node:http2 (floor_server.ts)",
        rate(floor?.medianRate),
        ratio(floor?.medianRate, cell("sum", "grpcGo")?.medianRate),
        ratio(cell("sum", "ours")?.medianRate, floor?.medianRate),
      ],
    ]),
  );
  for (const streamCell of report.streams) {
    for (const failure of streamCell.failures) {
      out.push(
        `- FAILED ${streamCell.shape} → ${
          SERVER_LABELS[streamCell.server]
        }: ${failure}`,
      );
    }
  }
  out.push(
    "",
    `Short calls: calls/s (p50 / p99 ms), ${settings.shortSeconds} s per figure, each stack's ` +
      "own client and server, plus the grpc-go client against our server.",
    "",
  );
  const shortRows: string[][] = [];
  for (const shape of ["pow", "sum", "sqrt"] as const) {
    for (const connections of [1, 10]) {
      for (const inflight of [1, 10, 100]) {
        const of = (pairing: ShortPairing) =>
          report.short.find((c) =>
            c.shape === shape && c.pairing === pairing &&
            c.connections === connections && c.inflight === inflight
          )?.result;
        const show = (result: ShortResult | undefined) =>
          result === undefined || !result.ok
            ? `failed${result?.error ? `: ${result.error}` : ""}`
            : `${rate(result.rate)} (${result.p50Ms.toFixed(1)} / ${
              result.p99Ms.toFixed(1)
            })`;
        const ours = of("ours");
        const grpcJs = of("grpcJs");
        const grpcGo = of("grpcGo");
        const workers = of("goOnWorkers");
        shortRows.push([
          `${
            shape === "pow" ? "Pow(2)" : shape === "sum" ? "Sum×10" : "Sqrt×10"
          }, ${inflight} in flight, ${connections} conn.`,
          show(ours),
          show(grpcJs),
          show(grpcGo),
          show(of("goOnOurs")),
          show(workers),
          ratio(ours?.ok ? ours.rate : undefined, grpcJs?.rate),
          ratio(ours?.ok ? ours.rate : undefined, grpcGo?.rate),
          ratio(workers?.ok ? workers.rate : undefined, grpcGo?.rate),
        ]);
      }
    }
  }
  out.push(table([
    "short calls",
    "ours → ours",
    "grpc-js → grpc-js (Deno)",
    "grpc-go → grpc-go",
    "grpc-go → ours",
    SHORT_PAIRINGS.goOnWorkers.label,
    "ours ÷ grpc-js",
    "ours ÷ grpc-go",
    "workers ÷ grpc-go",
  ], shortRows));
  return out.join("\n");
}
