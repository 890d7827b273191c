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
import type { ClientResult, Shape, ShortResult } from "./common.ts";

/** Where the Go sources are (a GOPATH of their own). */
const GO_PATH = new URL("./go/", import.meta.url).pathname;
const DEBIAN_GOCODE = "/usr/share/gocode";
const BENCH_DIRECTORY = new URL("./", import.meta.url);
const PROJECT_DIRECTORY = new URL("../../", import.meta.url);
const CLI = new URL("../../cli.ts", import.meta.url).href;
const RUN_PERMISSIONS = ["--allow-net=127.0.0.1", "--allow-env=GRPC_*"];
const INSTALL_HINT =
  "apt-get install golang-go golang-google-grpc-dev (grpc-go in GOPATH mode)";

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

/** The built Go programs, or why there are none. */
type GoPrograms = { server: string; load: string } | { missing: string };

/** One server of the section, and the stack it is. */
type ServerKind =
  | "ours"
  | "grpcJs"
  | "grpcGo"
  | "serveLogged"
  | "serveQuiet"
  | "floor";

const SERVER_LABELS: Record<ServerKind, string> = {
  ours: "our server (startServer)",
  grpcJs: "plain grpc-js server under Deno",
  grpcGo: "grpc-go server",
  serveLogged: "grpc-stream serve (default --log messages)",
  serveQuiet: "grpc-stream serve --log none",
  floor:
    "bare node:http2 Sum server under Deno, frames from onread (floor_server.ts)",
};

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

type ShortPairing = "ours" | "grpcJs" | "grpcGo" | "goOnOurs";

const SHORT_PAIRINGS: Record<
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
};

function log(message: string): void {
  console.error(message);
}

async function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ success: boolean; text: string }> {
  try {
    const output = await new Deno.Command(command, {
      args,
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      success: output.success,
      text: decoder.decode(output.stdout) + decoder.decode(output.stderr),
    };
  } catch (error) {
    return { success: false, text: String(error) };
  }
}

/** Builds the grpc-go server and load client, or says what is missing. */
async function buildGoPrograms(): Promise<GoPrograms> {
  const version = await run("go", ["version"]);
  if (!version.success) return { missing: `No go command: ${INSTALL_HINT}` };
  const directory = (await run("mktemp", ["-d"])).text.trim();
  if (directory === "") return { missing: "mktemp -d failed" };
  const env = {
    GOPATH: `${GO_PATH}:${DEBIAN_GOCODE}`,
    GO111MODULE: "off",
    GOFLAGS: "",
  };
  const programs = {
    server: `${directory}/streambench-server`,
    load: `${directory}/streambench-load`,
  };
  for (const [name, output] of Object.entries(programs)) {
    const built = await run(
      "go",
      ["build", "-o", output, `streambench/${name}`],
      env,
    );
    if (!built.success) {
      return {
        missing: `Building the grpc-go ${name} failed (${INSTALL_HINT}): ${
          built.text.trim().split("\n").slice(0, 3).join(" ")
        }`,
      };
    }
  }
  return programs;
}

/** A server process of the section. */
class Server implements AsyncDisposable {
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  readonly #drained: Promise<unknown>;

  private constructor(
    child: Deno.ChildProcess,
    { port, drained }: { port: number; drained: Promise<unknown> },
  ) {
    this.#child = child;
    this.port = port;
    this.#drained = drained;
  }

  static async start(kind: ServerKind, go: GoPrograms): Promise<Server> {
    let command = Deno.execPath();
    let args: string[];
    switch (kind) {
      case "ours":
        args = ["run", "--quiet", ...RUN_PERMISSIONS, bench("our_server.ts")];
        break;
      case "grpcJs":
        args = [
          "run",
          "--quiet",
          ...RUN_PERMISSIONS,
          bench("baseline_server.ts"),
        ];
        break;
      case "floor":
        args = ["run", "--quiet", ...RUN_PERMISSIONS, bench("floor_server.ts")];
        break;
      case "grpcGo":
        if ("missing" in go) throw new Error(go.missing);
        command = go.server;
        args = [];
        break;
      case "serveLogged":
      case "serveQuiet":
        args = [
          "run",
          "--quiet",
          ...RUN_PERMISSIONS,
          CLI,
          "serve",
          "--port",
          "0",
          "--grace-period",
          "0",
          ...(kind === "serveQuiet" ? ["--log", "none"] : []),
        ];
        break;
    }
    const child = new Deno.Command(command, {
      args,
      cwd: PROJECT_DIRECTORY,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      env: { NO_COLOR: "1" },
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    while (!text.includes("\n")) {
      const { done, value } = await reader.read();
      if (done) break;
      text += value;
    }
    clearTimeout(timer);
    const first = text.split("\n")[0] ?? "";
    const port = Number(
      /"port":(\d+)/.exec(first)?.[1] ?? /:(\d+)$/.exec(first)?.[1],
    );
    // Read the rest as a terminal would, so a logging server writes to a live reader.
    const drained = (async () => {
      while (!(await reader.read()).done) {
        // Discarded.
      }
    })();
    if (!Number.isInteger(port)) {
      child.kill("SIGKILL");
      await child.status;
      throw new Error(`${SERVER_LABELS[kind]} did not start: ${first}`);
    }
    return new Server(child, { port, drained });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#child.stdin.close().catch(() => {});
    if (this.#child.pid !== undefined) {
      // `serve` stops on a signal, the others when their stdin ends.
      try {
        this.#child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 5_000);
    await this.#child.status;
    clearTimeout(timer);
    await this.#drained;
  }
}

function bench(program: string): string {
  return new URL(program, BENCH_DIRECTORY).href;
}

/** How long a load client may run. */
interface LoadOptions {
  /**
   * When to kill it, in ms.
   *
   * @default {120_000}
   */
  limitMs?: number;
}

/** Runs a load client and parses the JSON line it prints. */
async function runLoad<Result>(
  command: string,
  args: string[],
  options: LoadOptions = {},
): Promise<Result | string> {
  const { limitMs = 120_000 } = options;
  const output = await new Deno.Command(command, {
    args,
    cwd: PROJECT_DIRECTORY,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(limitMs),
  }).output().catch((error: unknown) => error);
  if (output instanceof Error || !(output as Deno.CommandOutput).stdout) {
    return `Load client failed: ${String(output)}`;
  }
  const { stdout, stderr } = output as Deno.CommandOutput;
  const lines = new TextDecoder().decode(stdout).trim().split("\n");
  const last = lines.at(-1) ?? "";
  if (!last.startsWith("{")) {
    return `Load client printed no result: ${
      new TextDecoder().decode(stderr).trim().split("\n").at(-1)
    }`;
  }
  return JSON.parse(last) as Result;
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function stackOf(server: ServerKind): string {
  return server === "grpcGo"
    ? "grpc-go 1.33 (Debian), Go"
    : server === "grpcJs"
    ? "grpc-js handlers under Deno"
    : server === "floor"
    ? "bare node:http2 under Deno, no gRPC library"
    : "grpc-stream on grpc-js under Deno";
}

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
        const result = await runLoad<ClientResult>(go.load, [
          "stream",
          shape,
          server.address,
          "-count",
          String(count),
          "-limit",
          "120",
        ], { limitMs: 180_000 });
        if (typeof result === "string") cell.failures.push(result);
        else if (!result.ok) {
          cell.failures.push(result.error ?? "stalled or incomplete");
        } else cell.rates.push(result.rate);
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
    for (const kind of ["ours", "grpcJs", "grpcGo"] as const) {
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
        shortRows.push([
          `${
            shape === "pow" ? "Pow(2)" : shape === "sum" ? "Sum×10" : "Sqrt×10"
          }, ${inflight} in flight, ${connections} conn.`,
          show(ours),
          show(grpcJs),
          show(grpcGo),
          show(of("goOnOurs")),
          ratio(ours?.ok ? ours.rate : undefined, grpcJs?.rate),
          ratio(ours?.ok ? ours.rate : undefined, grpcGo?.rate),
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
    "ours ÷ grpc-js",
    "ours ÷ grpc-go",
  ], shortRows));
  return out.join("\n");
}
