/**
 * The short-call section's tables (`calls.ts`): calls/s with latency and the server's CPU
 * time per call for each server, and the two clients against grpc-go's server.
 *
 * @module
 */
import {
  CALL_MESSAGES,
  CALL_SERVERS,
  CALLS_IN_FLIGHT,
  type CallsCell,
  type CallShape,
  type CallsReport,
} from "./calls.ts";
import { formatRate, formatRatio, median, table } from "./figures.ts";
import { BENCH_WORKERS, type ServerKind } from "./limit_servers.ts";

const SERVER_HEADERS: Partial<Record<ServerKind, string>> = {
  ours: "our server",
  oursNodeHttp2: "our server on node:http2",
  serveWorkers: `serve --workers ${BENCH_WORKERS}`,
  shortFloor: "bare node:http2 (floor)",
  rawFloor: "hand-written HTTP/2 over node:net",
  grpcGo: "grpc-go",
};

const SHAPE_NAMES: Record<CallShape, string> = {
  pow: `Pow, ${CALL_MESSAGES.pow} replies`,
  sum: `Sum of ${CALL_MESSAGES.sum}`,
  sqrt: `Sqrt, ${CALL_MESSAGES.sqrt} round trip`,
};

function medianRate(cell: CallsCell | undefined): number | undefined {
  return cell === undefined
    ? undefined
    : median(cell.results.map((result) => result.rate));
}

/** calls/s (p50 / p99 ms), CPU µs per call, or why there is no figure. */
function describe(cell: CallsCell | undefined, withCpu: boolean): string {
  if (cell === undefined) return "–";
  if (cell.results.length === 0) {
    return `failed: ${cell.failures[0] ?? "no run"}`;
  }
  const p50 = median(cell.results.map((result) => result.p50Ms)) ?? 0;
  const p99 = median(cell.results.map((result) => result.p99Ms)) ?? 0;
  const cpu = median(cell.cpuMicrosPerCall);
  return `${formatRate(medianRate(cell))} (${p50.toFixed(1)} / ${
    p99.toFixed(1)
  })${withCpu && cpu !== undefined ? `, ${cpu.toFixed(0)} µs` : ""}${
    cell.failures.length > 0 ? ` (${cell.failures.length} failed)` : ""
  }`;
}

function ratio(
  cells: readonly CallsCell[],
  { of, over }: { of: ServerKind; over: ServerKind },
): string {
  const ours = medianRate(cells.find((cell) => cell.server === of));
  const other = medianRate(cells.find((cell) => cell.server === over));
  return formatRatio(
    ours === undefined || other === undefined ? undefined : ours / other,
  );
}

/**
 * Renders the section.
 *
 * @param report Its figures.
 * @returns Markdown tables, or what to install.
 */
export function renderCalls(report: CallsReport): string {
  if (report.goMissing !== undefined) {
    return `Short calls against grpc-go: skipped: ${report.goMissing}`;
  }
  const serverRows: string[][] = [];
  const groups = new Map<string, CallsCell[]>();
  for (const cell of report.servers) {
    const key = `${cell.shape} ${cell.connections}`;
    groups.set(key, [...(groups.get(key) ?? []), cell]);
  }
  for (const cells of groups.values()) {
    const first = cells[0]!;
    serverRows.push([
      `${SHAPE_NAMES[first.shape]}, ${first.connections} conn.`,
      ...CALL_SERVERS.map((server) =>
        describe(cells.find((cell) => cell.server === server), true)
      ),
      ratio(cells, { of: "ours", over: "grpcGo" }),
      ratio(cells, { of: "oursNodeHttp2", over: "grpcGo" }),
      ratio(cells, { of: "serveWorkers", over: "grpcGo" }),
      ratio(cells, { of: "ours", over: "shortFloor" }),
      ratio(cells, { of: "rawFloor", over: "grpcGo" }),
    ]);
  }
  const clientRows = (["pow", "sum", "sqrt"] as const).map((shape) => {
    const [ours, oursNode, floor, go] =
      (["ours", "oursNode", "floor", "go"] as const)
        .map((client) =>
          report.clients.find((cell) =>
            cell.shape === shape && cell.client === client
          )
        );
    const oursRate = medianRate(ours);
    function over(other: CallsCell | undefined): string {
      const rate = medianRate(other);
      return formatRatio(
        oursRate === undefined || rate === undefined
          ? undefined
          : oursRate / rate,
      );
    }
    const nodeRate = medianRate(oursNode);
    const goRate = medianRate(go);
    return [
      SHAPE_NAMES[shape],
      describe(ours, false),
      describe(oursNode, false),
      describe(floor, false),
      describe(go, false),
      over(go),
      formatRatio(
        nodeRate === undefined || goRate === undefined
          ? undefined
          : nodeRate / goRate,
      ),
      over(oursNode),
    ];
  });
  return [
    `Short calls, ${CALLS_IN_FLIGHT} in flight, grpc-go's load client: calls/s (p50 / p99 ms), server CPU per call`,
    "",
    table(
      [
        "call",
        ...CALL_SERVERS.map((server) => SERVER_HEADERS[server] ?? server),
        "ours ÷ grpc-go",
        "ours on node:http2 ÷ grpc-go",
        "workers ÷ grpc-go",
        "ours ÷ floor",
        "hand-written HTTP/2 ÷ grpc-go",
      ],
      serverRows,
    ),
    "",
    `Clients against grpc-go's server, ${CALLS_IN_FLIGHT} in flight on one connection: calls/s (p50 / p99 ms)`,
    "",
    table(
      [
        "call",
        "createClient",
        "createClient on node:http2",
        "bare node:http2 client",
        "grpc-go client",
        "ours ÷ grpc-go",
        "ours on node:http2 ÷ grpc-go",
        "ours ÷ ours on node:http2",
      ],
      clientRows,
    ),
  ].join("\n");
}
