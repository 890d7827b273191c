/**
 * The benchmark's limit section: grpc-go, the article's own stack, measured side by side with
 * this module and plain grpc-js in the same run.
 *
 * - **Streams through one load client**: the grpc-go load client (`go/src/streambench/load`)
 *   drives our server, the plain grpc-js server under Deno and the grpc-go server
 *   (`go/src/streambench/server`) in turn, round after round, so the server is the only thing
 *   that differs. It adds `Sum` through `grpc-stream serve` with its default log and with
 *   `--log none`, and what Deno's `node:http2` costs per frame: a bare `node:http2` `Sum`
 *   server (`floor_server.ts`) that takes each DATA frame from its stream handle's `onread`.
 * - **Short calls**: `Pow(2)`, a 10-number `Sum`, a 10-number `Sqrt`, at 1, 10 and 100 calls
 *   in flight over 1 and 10 connections, for each stack's own client and server (ours, plain
 *   grpc-js under Deno, grpc-go), and the grpc-go client against our server.
 *
 * The Go programs are built when the section starts, in GOPATH mode against Debian's
 * `golang-google-grpc-dev` (grpc-go 1.33 in `/usr/share/gocode`); with no Go the section says
 * what to install and is skipped. This is a module of the runner, not a program.
 *
 * @module
 */
import type { Shape, ShortResult } from "./common.ts";
import { median } from "./figures.ts";
import {
  bench,
  BENCH_WORKERS,
  buildGoPrograms,
  runLoad,
  runStreamLoad,
  Server,
  SERVER_LABELS,
  type ServerKind,
  stackOf,
} from "./limit_servers.ts";
import { log } from "./processes.ts";

/** What the limit section measures, and how much. */
export interface LimitSettings {
  quick: boolean;
  /** Rounds of the stream runs; the tables show medians. */
  repeat: number;
  powCount: number;
  sumCount: number;
  sqrtCount: number;
  /** Seconds of each short-call run. */
  shortSeconds: number;
}

/** A stream run's figures, and which stacks they came from. */
export interface LimitStreamCell {
  shape: Shape;
  server: ServerKind;
  /** The stack of the server and of the load client, as measured. */
  stack: { server: string; client: string };
  count: number;
  rates: number[];
  medianRate: number | undefined;
  failures: string[];
}

/** A short-call run's figures. */
export interface LimitShortCell {
  shape: Shape;
  pairing: ShortPairing;
  stack: { server: string; client: string };
  inflight: number;
  connections: number;
  result: ShortResult;
}

/** What the limit section found. */
export interface LimitReport {
  /** `undefined` when the Go programs were built; else what to install. */
  goMissing?: string;
  streams: LimitStreamCell[];
  short: LimitShortCell[];
}

/** A client and a server of the short-call figures. */
export type ShortPairing =
  | "ours"
  | "grpcJs"
  | "grpcGo"
  | "goOnOurs"
  | "goOnWorkers";

/** What each short-call pairing runs, and how it is named. */
export const SHORT_PAIRINGS: Record<
  ShortPairing,
  { server: ServerKind; client: "ours" | "grpc-js" | "go"; label: string }
> = {
  ours: { server: "ours", client: "ours", label: "ours → ours" },
  grpcJs: {
    server: "grpcJs",
    client: "grpc-js",
    label: "grpc-js → grpc-js (Deno)",
  },
  grpcGo: { server: "grpcGo", client: "go", label: "grpc-go → grpc-go" },
  goOnOurs: { server: "ours", client: "go", label: "grpc-go → ours" },
  goOnWorkers: {
    server: "serveWorkers",
    client: "go",
    label: `grpc-go → serve --workers ${BENCH_WORKERS}`,
  },
};

async function measureStreams(
  settings: LimitSettings,
  go: { server: string; load: string },
): Promise<LimitStreamCell[]> {
  const cells: LimitStreamCell[] = [];
  const plan: [Shape, ServerKind[], number][] = [
    ["pow", ["ours", "grpcJs", "grpcGo"], settings.powCount],
    [
      "sum",
      ["ours", "grpcJs", "grpcGo", "serveLogged", "serveQuiet", "floor"],
      settings
        .sumCount,
    ],
    ["sqrt", ["ours", "grpcJs", "grpcGo"], settings.sqrtCount],
  ];
  for (const [shape, servers, count] of plan) {
    const row = servers.map((server): LimitStreamCell => ({
      shape,
      server,
      stack: { server: stackOf(server), client: "grpc-go load client" },
      count,
      rates: [],
      medianRate: undefined,
      failures: [],
    }));
    // Round after round, each server in turn: noise on a shared machine hits them alike.
    for (let round = 0; round < settings.repeat; round++) {
      for (const cell of row) {
        log(
          `limit: ${shape} × ${count} → ${SERVER_LABELS[cell.server]} (round ${
            round + 1
          })`,
        );
        await using server = await Server.start(cell.server, go);
        const result = await runStreamLoad(go.load, {
          shape,
          address: server.address,
          count,
        });
        if ("failure" in result) cell.failures.push(result.failure);
        else cell.rates.push(result.rate);
      }
    }
    for (const cell of row) cell.medianRate = median(cell.rates);
    cells.push(...row);
  }
  return cells;
}

async function measureShort(
  settings: LimitSettings,
  go: { server: string; load: string },
): Promise<LimitShortCell[]> {
  const cells: LimitShortCell[] = [];
  const servers = new Map<ServerKind, Server>();
  try {
    for (
      const kind of ["ours", "grpcJs", "grpcGo", "serveWorkers"] as const
    ) {
      servers.set(kind, await Server.start(kind, go));
    }
    for (const shape of ["pow", "sum", "sqrt"] as const) {
      for (const connections of [1, 10]) {
        for (const inflight of [1, 10, 100]) {
          for (
            const pairing of Object.keys(SHORT_PAIRINGS) as ShortPairing[]
          ) {
            const info = SHORT_PAIRINGS[pairing];
            const address = servers.get(info.server)!.address;
            log(
              `limit: short ${shape}, ${inflight} in flight over ${connections} → ${info.label}`,
            );
            const common = [
              String(settings.shortSeconds),
            ];
            const result = info.client === "go"
              ? await runLoad<ShortResult>(go.load, [
                "short",
                shape,
                address,
                "-inflight",
                String(inflight),
                "-connections",
                String(connections),
                "-seconds",
                ...common,
              ])
              : await runLoad<ShortResult>(Deno.execPath(), [
                "run",
                "--quiet",
                "--allow-net=127.0.0.1",
                "--allow-env",
                bench("short_client.ts"),
                shape,
                address,
                "--transport",
                info.client,
                "--inflight",
                String(inflight),
                "--connections",
                String(connections),
                "--seconds",
                ...common,
              ]);
            cells.push({
              shape,
              pairing,
              stack: {
                server: stackOf(info.server),
                client: info.client === "go"
                  ? "grpc-go 1.33 (Debian), Go"
                  : info.client === "grpc-js"
                  ? "grpc-js client under Deno"
                  : "grpc-stream client under Deno",
              },
              inflight,
              connections,
              result: typeof result === "string"
                ? {
                  calls: 0,
                  seconds: 0,
                  rate: 0,
                  p50Ms: 0,
                  p99Ms: 0,
                  ok: false,
                  error: result,
                  inflight,
                  connections,
                }
                : result,
            });
          }
        }
      }
    }
  } finally {
    for (const server of servers.values()) {
      await server[Symbol.asyncDispose]();
    }
  }
  return cells;
}

/**
 * Runs the limit section.
 *
 * @param settings How much to measure.
 * @returns The figures, or what to install when Go is missing.
 */
export async function measureLimit(
  settings: LimitSettings,
): Promise<LimitReport> {
  const go = await buildGoPrograms();
  if ("missing" in go) {
    log(`limit: skipped: ${go.missing}`);
    return { goMissing: go.missing, streams: [], short: [] };
  }
  return {
    streams: await measureStreams(settings, go),
    short: await measureShort(settings, go),
  };
}

/** Whether any figure of the section failed its checks. */
export function limitHasFailures(report: LimitReport): boolean {
  return report.streams.some((cell) => cell.failures.length > 0) ||
    report.short.some((cell) => !cell.result.ok);
}
