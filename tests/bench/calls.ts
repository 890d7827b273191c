/**
 * The short-call section: many small calls at once, the way most services are used, measured
 * against grpc-go on the same host, side by side in one run.
 *
 * - **Servers**: grpc-go's load client keeps 100 calls in flight over 1 and over 4
 *   connections against each server in turn, round after round: our server (`startServer`,
 *   on its own HTTP/2, and on `node:http2` with `GRPC_STREAM_HTTP2=node`),
 *   `serve --workers` with one worker per core, a bare `node:http2` server answering the same
 *   calls the plain way (the floor: what any server on Deno's `node:http2` pays per call), a
 *   hand-written HTTP/2 layer over `node:net` answering them (`raw_h2_floor_server.ts`: what
 *   Deno itself costs per call, without `node:http2`), and grpc-go's server. The calls are a
 *   `Pow` of 2 replies, a `Sum` of 3 numbers and one `Sqrt` round trip, every answer
 *   checked. Besides calls/s and latency, each figure has the server's CPU time per call
 *   (its process and its children, from `/proc`), which a busy machine disturbs less than a
 *   rate.
 * - **Clients**: against grpc-go's server, `createClient` making the same calls (on its own
 *   HTTP/2, and on `node:http2`) beside a bare `node:http2` client (the floor of a client on
 *   `node:http2`, `short_floor_client.ts`) and grpc-go's own client, 100 in flight on one
 *   connection.
 *
 * @module
 */
import type { ShortResult } from "./common.ts";
import {
  bench,
  type GoPrograms,
  runLoad,
  Server,
  type ServerKind,
} from "./limit_servers.ts";
import { log } from "./processes.ts";

/** The three shapes of short call. */
export type CallShape = "pow" | "sum" | "sqrt";

/** The messages of each shape's call: `Pow` replies, `Sum` numbers, `Sqrt` numbers. */
export const CALL_MESSAGES: Record<CallShape, number> = {
  pow: 2,
  sum: 3,
  sqrt: 1,
};

/** Calls in flight in every figure. */
export const CALLS_IN_FLIGHT = 100;

/** The servers the section compares, in the order the tables show them. */
export const CALL_SERVERS: readonly ServerKind[] = [
  "ours",
  "oursNodeHttp2",
  "serveWorkers",
  "shortFloor",
  "rawFloor",
  "grpcGo",
];

/** What the section measures, and how much. */
export interface CallsSettings {
  /** Rounds; the tables show medians. */
  repeat: number;
  /** Seconds of each run. */
  seconds: number;
  /** Connections of the server figures. */
  connections: readonly number[];
}

/** One figure, over its rounds. */
export interface CallsCell {
  shape: CallShape;
  /** The server measured (server figures), or grpc-go's (client figures). */
  server: ServerKind;
  /**
   * The client: grpc-go's load client, `createClient` (on its own HTTP/2, or on
   * `node:http2`), or a bare `node:http2` client.
   */
  client: "go" | "ours" | "oursNode" | "floor";
  connections: number;
  results: ShortResult[];
  /** The server's CPU time per call in each round, in microseconds. */
  cpuMicrosPerCall: number[];
  failures: string[];
}

/** What the section found. */
export interface CallsReport {
  /** `undefined` when the Go programs were built; else what to install. */
  goMissing?: string;
  servers: CallsCell[];
  clients: CallsCell[];
}

async function runCalls(
  cell: CallsCell,
  { go, server, seconds }: {
    go: { load: string };
    server: Server;
    seconds: number;
  },
): Promise<void> {
  const messages = String(CALL_MESSAGES[cell.shape]);
  const before = await server.cpuSeconds();
  const result = cell.client === "go"
    ? await runLoad<ShortResult>(go.load, [
      "short",
      cell.shape,
      server.address,
      "-inflight",
      String(CALLS_IN_FLIGHT),
      "-connections",
      String(cell.connections),
      "-seconds",
      String(seconds),
      "-messages",
      messages,
    ])
    : await runLoad<ShortResult>(Deno.execPath(), [
      "run",
      "--quiet",
      "--allow-net=127.0.0.1",
      "--allow-env",
      bench("short_client.ts"),
      cell.shape,
      server.address,
      "--transport",
      cell.client === "oursNode" ? "ours-node" : cell.client,
      "--inflight",
      String(CALLS_IN_FLIGHT),
      "--connections",
      String(cell.connections),
      "--seconds",
      String(seconds),
      "--messages",
      messages,
    ]);
  const used = await server.cpuSeconds() - before;
  if (typeof result === "string") cell.failures.push(result);
  else if (!result.ok) cell.failures.push(result.error ?? "failed");
  else {
    cell.results.push(result);
    // The warm-up call on each connection is outside `calls` and costs next to nothing.
    cell.cpuMicrosPerCall.push(used / result.calls * 1e6);
  }
}

/**
 * Runs the short-call section.
 *
 * @param settings How much to measure.
 * @param go The built Go programs, or why there are none.
 * @returns The figures, or what to install when Go is missing.
 */
export async function measureCalls(
  settings: CallsSettings,
  go: GoPrograms,
): Promise<CallsReport> {
  if ("missing" in go) {
    log(`calls: skipped: ${go.missing}`);
    return { goMissing: go.missing, servers: [], clients: [] };
  }
  const servers: CallsCell[] = [];
  const clients: CallsCell[] = [];
  for (const shape of ["pow", "sum", "sqrt"] as const) {
    const rows: CallsCell[] = [];
    for (const connections of settings.connections) {
      for (const server of CALL_SERVERS) {
        rows.push(emptyCell({ shape, server, client: "go", connections }));
      }
    }
    const clientRow = (["ours", "oursNode", "floor", "go"] as const).map((
      client,
    ) => emptyCell({ shape, server: "grpcGo", client, connections: 1 }));
    // Round after round, each figure in turn: noise on a shared machine hits them alike.
    for (let round = 0; round < settings.repeat; round++) {
      for (const cell of [...rows, ...clientRow]) {
        log(
          `calls: ${shape}, ${CALLS_IN_FLIGHT} in flight over ${cell.connections}, ${cell.client} → ${cell.server} (round ${
            round + 1
          })`,
        );
        await using server = await Server.start(cell.server, go);
        await runCalls(cell, { go, server, seconds: settings.seconds });
      }
    }
    servers.push(...rows);
    clients.push(...clientRow);
  }
  return { servers, clients };
}

function emptyCell(
  { shape, server, client, connections }: Pick<
    CallsCell,
    "shape" | "server" | "client" | "connections"
  >,
): CallsCell {
  return {
    shape,
    server,
    client,
    connections,
    results: [],
    cpuMicrosPerCall: [],
    failures: [],
  };
}

/** Whether any figure of the section failed its checks. */
export function callsHaveFailures(report: CallsReport): boolean {
  return [...report.servers, ...report.clients].some((cell) =>
    cell.failures.length > 0
  );
}
