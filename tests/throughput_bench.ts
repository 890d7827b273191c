/**
 * The benchmark of issue 4: how fast this module's client and server move the article's three
 * streams, against what plain grpc-js gives; how much memory a server holds for a slow reader;
 * and what streaming saves per item over unary calls. Every client and server runs as a
 * process of its own on 127.0.0.1, started with `Deno.execPath()`; the programs are in
 * `tests/bench/`.
 *
 * Run it with `deno task bench` (a table on stdout), `deno task bench --json` (JSON on
 * stdout, the tables on stderr after the progress), or `--quick` for smaller counts. Progress goes to stderr. It exits with 1 when a
 * run gives a wrong answer or fails, and with 0 otherwise (a plain grpc-js run that stalls is
 * a measurement, not a failure).
 *
 * Memory is read from `/proc/<pid>/status` (`VmHWM`, `VmRSS`) through `cat`, because Deno
 * asks for `--allow-all` to read `/proc` itself. So the runner needs only `--allow-run`: for
 * `Deno.execPath()` (which names the real binary, so `--allow-run=deno` would not match it),
 * `cat`, and `git` (to name the commit measured); each program it starts gets
 * `--allow-net=127.0.0.1` and the `--allow-env` variables grpc-js reads.
 *
 * @module
 */
import { parseArgs } from "node:util";
import denoConfig from "../deno.json" with { type: "json" };
import type { ClientResult, ServerAnnouncement } from "./bench/common.ts";
import {
  limitHasFailures,
  type LimitReport,
  measureLimit,
  renderLimit,
} from "./bench/limit.ts";

// ---------------------------------------------------------------------------------------------
// Settings

/** What one invocation measures, and how much. */
interface Settings {
  quick: boolean;
  json: boolean;
  /** Repeats of each measured shape; the tables show medians. */
  repeat: number;
  /** Seconds a plain grpc-js run may take before it is cancelled and reported as stalled. */
  limitSeconds: number;
  powCount: number;
  sumCount: number;
  sqrtCount: number;
  /** Values of the slow reader's `pow`, and how long the memory is watched. */
  slowCount: number;
  slowWindowSeconds: number;
  slowReadDelayMs: number;
  /** Items per run of the "what streaming saves" benchmark. */
  articleCount: number;
  articleWorkCount: number;
  /** The `grpc.per_rpc_retry_buffer_size` of the tuned grpc-js client, in bytes. */
  tunedRetryBuffer: number;
  /** `limit`: only the grpc-go limit section (`tests/bench/limit.ts`). */
  only: "limit" | undefined;
  /** Seconds of each short-call figure of the limit section. */
  shortSeconds: number;
}

function readSettings(args: string[]): Settings {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      repeat: { type: "string" },
      limit: { type: "string" },
      window: { type: "string" },
      only: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "Usage: deno task bench [--json] [--quick] [--repeat N] [--limit SECONDS] [--window SECONDS] [--only limit]",
    );
    Deno.exit(0);
  }
  const quick = values.quick;
  if (values.only !== undefined && values.only !== "limit") {
    throw new RangeError(`Only must be limit: ${values.only}`);
  }
  return {
    quick,
    json: values.json,
    repeat: wholeNumber(values.repeat, "Repeat") ?? (quick ? 1 : 3),
    limitSeconds: wholeNumber(values.limit, "Limit") ?? (quick ? 20 : 60),
    powCount: quick ? 200_000 : 1_000_000,
    sumCount: quick ? 200_000 : 1_000_000,
    sqrtCount: quick ? 50_000 : 200_000,
    slowCount: 1_000_000,
    slowWindowSeconds: wholeNumber(values.window, "Window") ?? (quick ? 5 : 15),
    slowReadDelayMs: 1,
    articleCount: quick ? 500 : 2_000,
    articleWorkCount: quick ? 200 : 500,
    tunedRetryBuffer: 16_384,
    only: values.only,
    shortSeconds: quick ? 1 : 3,
  };
}

/** `value` as a positive integer, or `undefined` when the option was not given. */
function wholeNumber(
  value: string | undefined,
  name: string,
): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) {
    throw new RangeError(`${name} must be a positive integer: ${value}`);
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// Processes

const BENCH_DIRECTORY = new URL("./bench/", import.meta.url);
const PROJECT_DIRECTORY = new URL("../", import.meta.url);

/** What the module's programs need: loopback and grpc-js's tuning variables. */
const RUN_PERMISSIONS = ["--allow-net=127.0.0.1", "--allow-env=GRPC_*"];

/** The grpc-js client also reads the proxy variables when it creates a channel. */
const GRPC_JS_CLIENT_PERMISSIONS = [
  "--allow-net=127.0.0.1",
  "--allow-env=GRPC_*,grpc_proxy,http_proxy,https_proxy,no_grpc_proxy,no_proxy",
];

/** Every child still running, so an interrupted run can end them all. */
const liveChildren = new Set<Deno.ChildProcess>();

/** How a benchmark program runs. */
interface SpawnOptions {
  /**
   * Its `deno run` permission flags.
   *
   * @default {RUN_PERMISSIONS}
   */
  permissions?: readonly string[];
  /**
   * Kills it when aborted.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

function spawnDeno(
  program: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Deno.ChildProcess {
  const { permissions = RUN_PERMISSIONS, signal } = options;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...permissions,
      new URL(program, BENCH_DIRECTORY).href,
      ...args,
    ],
    cwd: PROJECT_DIRECTORY,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    ...(signal === undefined ? {} : { signal }),
  }).spawn();
  liveChildren.add(child);
  child.status.finally(() => liveChildren.delete(child));
  return child;
}

/** Keeps the last part of a stream's text, for error messages. */
async function collectTail(
  stream: ReadableStream<Uint8Array>,
  sink: { text: string },
  limit = 4_096,
): Promise<void> {
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    sink.text = (sink.text + chunk).slice(-limit);
  }
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1)?.trim() ?? "";
}

/** A process's memory as `/proc/<pid>/status` reports it, in kB. */
interface Memory {
  rssKb: number;
  peakKb: number;
}

async function readMemory(pid: number): Promise<Memory | undefined> {
  try {
    const { success, stdout } = await new Deno.Command("cat", {
      args: [`/proc/${pid}/status`],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!success) return undefined;
    const status = new TextDecoder().decode(stdout);
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
    const peak = /^VmHWM:\s+(\d+) kB/m.exec(status);
    if (rss === null || peak === null) return undefined;
    return { rssKb: Number(rss[1]), peakKb: Number(peak[1]) };
  } catch {
    return undefined;
  }
}

async function readProcFile(name: string): Promise<string> {
  try {
    const { stdout } = await new Deno.Command("cat", {
      args: [`/proc/${name}`],
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(stdout);
  } catch {
    return "";
  }
}

/** A server program in a process of its own, announcing its port on stdout. */
class ServerProcess implements AsyncDisposable {
  readonly label: string;
  readonly pid: number;
  readonly port: number;
  /** How the process ended, once it has. */
  exit: Deno.CommandStatus | undefined;
  readonly #child: Deno.ChildProcess;
  readonly #stderr: { text: string };
  readonly #drained: Promise<unknown>;

  private constructor(
    child: Deno.ChildProcess,
    { label, port, stderr, drained }: {
      label: string;
      port: number;
      stderr: { text: string };
      drained: Promise<unknown>;
    },
  ) {
    this.label = label;
    this.#child = child;
    this.pid = child.pid;
    this.port = port;
    this.#stderr = stderr;
    this.#drained = drained;
    child.status.then((status) => {
      this.exit = status;
    });
  }

  /** Starts `program` and waits for its port. */
  static async start(
    label: string,
    program: string,
    args: readonly string[] = [],
  ): Promise<ServerProcess> {
    const child = spawnDeno(program, args);
    const stderr = { text: "" };
    const stderrDone = collectTail(child.stderr, stderr);
    const lines = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let buffered = "";
    try {
      const timeout = setTimeout(() => child.kill("SIGKILL"), 60_000);
      try {
        while (!buffered.includes("\n")) {
          const { done, value } = await lines.read();
          if (done) break;
          buffered += value;
        }
      } finally {
        clearTimeout(timeout);
      }
      const firstLine = buffered.split("\n")[0] ?? "";
      let announcement: ServerAnnouncement;
      try {
        announcement = JSON.parse(firstLine) as ServerAnnouncement;
      } catch {
        await child.status;
        await stderrDone;
        throw new Error(
          `${label} did not start: ${lastLine(stderr.text) || firstLine}`,
        );
      }
      // Keep reading stdout so a chatty server never blocks on a full pipe.
      const stdoutDone = (async () => {
        while (!(await lines.read()).done) {
          // Discarded.
        }
      })();
      return new ServerProcess(child, {
        label,
        port: announcement.port,
        stderr,
        drained: Promise.all([stdoutDone, stderrDone]),
      });
    } catch (error) {
      killQuietly(child);
      await child.status;
      throw error;
    }
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Why the process ended, if it ended on its own. */
  describeExit(): string | undefined {
    if (this.exit === undefined) return undefined;
    const how = this.exit.signal === null
      ? `exit code ${this.exit.code}`
      : `signal ${this.exit.signal}`;
    const message = lastLine(this.#stderr.text);
    return message === "" ? how : `${how}: ${message}`;
  }

  /** Asks the server to stop by closing its stdin, then kills it if it does not. */
  async stop(): Promise<void> {
    if (this.alive) {
      try {
        await this.#child.stdin.close();
      } catch {
        // Already closed because the process is gone.
      }
      const timer = setTimeout(() => killQuietly(this.#child), 5_000);
      await this.#child.status;
      clearTimeout(timer);
    } else {
      await this.#child.stdin.close().catch(() => {});
    }
    await this.#drained;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

function killQuietly(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // It has already exited.
  }
}

/** Samples a process's memory at a fixed interval. */
class MemorySampler {
  readonly samples: { seconds: number; memory: Memory }[] = [];
  readonly #pid: number;
  readonly #start = performance.now();
  #running = true;
  readonly #loop: Promise<void>;

  constructor(pid: number, intervalMs: number) {
    this.#pid = pid;
    this.#loop = this.#run(intervalMs);
  }

  async #run(intervalMs: number): Promise<void> {
    while (this.#running) {
      await this.sample();
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }

  /** Takes one sample now. */
  async sample(): Promise<void> {
    const memory = await readMemory(this.#pid);
    if (memory !== undefined) {
      this.samples.push({
        seconds: (performance.now() - this.#start) / 1000,
        memory,
      });
    }
  }

  /** The highest peak seen (`VmHWM` never falls, so the last sample is the highest). */
  get peakKb(): number | undefined {
    return this.samples.length === 0
      ? undefined
      : Math.max(...this.samples.map((sample) => sample.memory.peakKb));
  }

  get maxRssKb(): number | undefined {
    return this.samples.length === 0
      ? undefined
      : Math.max(...this.samples.map((sample) => sample.memory.rssKb));
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

/** Runs a client program to its end and returns the result it printed. */
/** How a client program runs, and for how long at most. */
interface ClientRunOptions {
  /**
   * Its `deno run` permission flags.
   *
   * @default {RUN_PERMISSIONS}
   */
  permissions?: readonly string[];
  /**
   * When to kill it, in ms: past its own limit, for a client that hangs.
   *
   * @default {120_000}
   */
  hardLimitMs?: number;
}

async function runClient(
  program: string,
  args: readonly string[],
  options: ClientRunOptions = {},
): Promise<ClientResult> {
  const { permissions = RUN_PERMISSIONS, hardLimitMs = 120_000 } = options;
  const signal = AbortSignal.timeout(hardLimitMs);
  const child = spawnDeno(program, args, { permissions, signal });
  await child.stdin.close();
  const stdout = { text: "" };
  const stderr = { text: "" };
  const [status] = await Promise.all([
    child.status,
    collectTail(child.stdout, stdout, 1_000_000),
    collectTail(child.stderr, stderr),
  ]);
  const line = lastLine(stdout.text);
  if (line.startsWith("{")) return JSON.parse(line) as ClientResult;
  const reason = signal.aborted
    ? `Client killed after ${hardLimitMs / 1000} s`
    : `Client exited with ${status.signal ?? status.code}: ${
      lastLine(stderr.text)
    }`;
  return {
    expected: 0,
    completed: 0,
    seconds: 0,
    rate: 0,
    ok: false,
    stalled: false,
    error: reason,
  };
}

// ---------------------------------------------------------------------------------------------
// Measurements

type Shape = "pow" | "sum" | "sqrt";
type Pairing =
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

const PAIRINGS: Record<Pairing, PairingInfo> = {
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

interface ThroughputRun {
  result: ClientResult;
  /** The server's `VmHWM` at the end of the run, in kB. */
  serverPeakKb: number | undefined;
  /** Set when the server process ended during or right after the run. */
  serverExit?: string;
}

interface ThroughputCell {
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

function countOf(shape: Shape, settings: Settings): number {
  return shape === "pow"
    ? settings.powCount
    : shape === "sum"
    ? settings.sumCount
    : settings.sqrtCount;
}

function log(message: string): void {
  console.error(message);
}

function delay(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Which cell of the throughput table: a shape through a pairing of client and server. */
interface CellKey {
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

function isFailure(result: ClientResult): boolean {
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

function describeRun(run: ThroughputRun): string {
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

/** A server process that ended before it was asked to, and where. */
interface ServerDeath {
  context: string;
  exit: string;
}

function collectServerDeaths(
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

function stallMarker(result: ClientResult): string {
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

async function measureThroughput(
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

interface SlowReaderResult {
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

async function measureSlowReader(
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

type ArticleMode =
  | "connection-per-call"
  | "shared-unary"
  | "stream-interactive"
  | "stream-pipelined";

const ARTICLE_MODES: { mode: ArticleMode; label: string }[] = [
  { mode: "connection-per-call", label: "new connection per unary call" },
  { mode: "shared-unary", label: "unary calls on one shared connection" },
  {
    mode: "stream-interactive",
    label: "one bidirectional stream, send after each answer",
  },
  {
    mode: "stream-pipelined",
    label: "one bidirectional stream, pipelined",
  },
];

interface ArticleCell {
  mode: ArticleMode;
  label: string;
  workMs: number;
  count: number;
  /** Microseconds per item, one per run that answered everything correctly. */
  runs: number[];
  medianMicroseconds: number | undefined;
  failures: string[];
  /** How the server ended when it died during or after this mode's runs. */
  serverExits: string[];
}

async function measureArticle(settings: Settings): Promise<ArticleCell[]> {
  const conditions = [
    { workMs: 0, count: settings.articleCount },
    { workMs: 1, count: settings.articleWorkCount },
  ];
  const cells = conditions.flatMap(({ workMs, count }) =>
    ARTICLE_MODES.map(({ mode, label }): ArticleCell => ({
      mode,
      label,
      workMs,
      count,
      runs: [],
      medianMicroseconds: undefined,
      failures: [],
      serverExits: [],
    }))
  );
  for (let round = 1; round <= settings.repeat; round++) {
    for (const { workMs, count } of conditions) {
      let server: ServerProcess | undefined;
      try {
        for (const { mode } of ARTICLE_MODES) {
          if (server === undefined || !server.alive) {
            server = workMs === 0
              ? await ServerProcess.start("Our server", "our_server.ts")
              : await ServerProcess.start("Work server", "work_server.ts", [
                "--work",
                String(workMs),
              ]);
          }
          const result = await runClient(
            "article_client.ts",
            [mode, server.address, "--count", String(count)],
          );
          const cell = cells.find((candidate) =>
            candidate.mode === mode && candidate.workMs === workMs
          )!;
          if (result.ok) {
            cell.runs.push(result.seconds * 1e6 / count);
          } else {
            cell.failures.push(result.error ?? "Wrong answers");
          }
          // A server that died is replaced before the next mode; the death is reported.
          await delay(300);
          const exit = server.describeExit();
          if (exit !== undefined) {
            cell.serverExits.push(exit);
            await server.stop();
          }
          log(
            `Article run ${round}/${settings.repeat}, ${mode}, ${workMs} ms work: ${
              result.ok
                ? `${(result.seconds * 1e6 / count).toFixed(1)} µs per item`
                : `FAILED (${result.error})`
            }`,
          );
        }
      } finally {
        await server?.stop();
      }
    }
  }
  for (const cell of cells) cell.medianMicroseconds = median(cell.runs);
  return cells;
}

// ---------------------------------------------------------------------------------------------
// Report

interface Machine {
  cores: number;
  cpu: string;
  memory: string;
  os: string;
  deno: string;
  v8: string;
  typescript: string;
  grpcJs: string;
  /** The 1-minute load average when the run started and when it ended. */
  loadAtStart: string;
  loadAtEnd: string;
  /** The code measured. */
  code: string;
}

/** The commit measured, and the files that differ from it, so figures can be traced. */
async function describeCode(): Promise<string> {
  async function git(...args: string[]): Promise<string> {
    try {
      const { success, stdout } = await new Deno.Command("git", {
        args: ["-C", new URL(PROJECT_DIRECTORY).pathname, ...args],
        stdout: "piped",
        stderr: "null",
      }).output();
      return success ? new TextDecoder().decode(stdout).trimEnd() : "";
    } catch {
      return "";
    }
  }
  const commit = await git("rev-parse", "--short", "HEAD");
  if (commit === "") return "unknown (not a git checkout)";
  const changed = (await git("status", "--porcelain", "--untracked-files=no"))
    .split("\n")
    .map((line) => line.slice(3))
    .filter((path) => path !== "");
  return changed.length === 0
    ? `commit ${commit}`
    : `commit ${commit} with uncommitted changes to ${changed.join(", ")}`;
}

async function loadAverage(): Promise<string> {
  return (await readProcFile("loadavg")).split(" ")[0] ?? "unknown";
}

async function describeMachine(): Promise<Machine> {
  const cpuInfo = await readProcFile("cpuinfo");
  const memInfo = await readProcFile("meminfo");
  const release = (await readProcFile("sys/kernel/osrelease")).trim();
  const totalKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(memInfo)?.[1] ?? NaN);
  const grpcJs = denoConfig.imports["@grpc/grpc-js"] ?? "";
  return {
    cores: navigator.hardwareConcurrency,
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuInfo)?.[1]?.trim() ?? "unknown",
    memory: Number.isNaN(totalKb)
      ? "unknown"
      : `${(totalKb / 1024 / 1024).toFixed(1)} GiB`,
    os: `${Deno.build.os} ${Deno.build.arch}${
      release === "" ? "" : ` (kernel ${release})`
    }`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    grpcJs: grpcJs.replace(/^npm:@grpc\/grpc-js@/, ""),
    loadAtStart: await loadAverage(),
    loadAtEnd: "",
    code: await describeCode(),
  };
}

interface Target {
  target: string;
  figure: string;
  /** `null` where the run cannot judge it (`--quick` counts). */
  met: boolean | null;
}

interface Report {
  machine: Machine;
  settings: Settings;
  throughput: ThroughputCell[];
  slowReader: SlowReaderResult[];
  article: ArticleCell[];
  targets: Target[];
  /** grpc-go side by side with ours and plain grpc-js; each figure names its stacks. */
  limit: LimitReport;
  seconds: number;
}

function formatCount(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

function formatRate(value: number | undefined): string {
  return value === undefined ? "–" : formatCount(value);
}

function formatMiB(kb: number | undefined): string {
  return kb === undefined ? "–" : `${(kb / 1024).toFixed(1)} MiB`;
}

function formatRatio(ratio: number | undefined, lowerBound = false): string {
  if (ratio === undefined || !Number.isFinite(ratio)) return "–";
  return `${lowerBound ? "≥ " : ""}${ratio.toFixed(2)}×`;
}

function cellOf(
  report: Pick<Report, "throughput">,
  { shape, pairing }: CellKey,
): ThroughputCell | undefined {
  return report.throughput.find((cell) =>
    cell.shape === shape && cell.pairing === pairing
  );
}

/** a/b, and whether it is only a lower bound because b stalled before it finished. */
function ratioOf(
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

function evaluateTargets(
  report: Omit<Report, "targets" | "seconds" | "limit">,
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

function table(header: string[], rows: string[][]): string {
  const lines = [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ];
  return lines.join("\n");
}

function renderReport(report: Report): string {
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

function hasFailures(report: Report): boolean {
  return report.throughput.some((cell) => cell.failed) ||
    report.slowReader.some((result) => result.error !== undefined) ||
    report.article.some((cell) => cell.failures.length > 0);
}

async function main(): Promise<number> {
  const settings = readSettings(Deno.args);
  const started = performance.now();
  const machine = await describeMachine();
  log(
    `Benchmarking on ${machine.cores} cores, Deno ${machine.deno}, ${machine.os}`,
  );
  const all = settings.only === undefined;
  const throughput = all ? await measureThroughput(settings) : [];
  const slowReader = all
    ? [
      await measureSlowReader("ours", settings),
      await measureSlowReader("baseline", settings),
    ]
    : [];
  const article = all ? await measureArticle(settings) : [];
  const limit = await measureLimit({
    quick: settings.quick,
    repeat: settings.repeat,
    powCount: settings.quick ? 200_000 : 1_000_000,
    sumCount: settings.quick ? 200_000 : 1_000_000,
    sqrtCount: settings.quick ? 50_000 : 200_000,
    shortSeconds: settings.shortSeconds,
  });
  machine.loadAtEnd = await loadAverage();
  const codeAtEnd = await describeCode();
  if (codeAtEnd !== machine.code) {
    machine.code += `; WARNING: by the end it was ${codeAtEnd}`;
  }
  const partial = { machine, settings, throughput, slowReader, article };
  const report: Report = {
    ...partial,
    targets: all ? evaluateTargets(partial) : [],
    limit,
    seconds: (performance.now() - started) / 1000,
  };
  const tables = [
    ...(all ? [renderReport(report)] : []),
    renderLimit(limit, {
      quick: settings.quick,
      repeat: settings.repeat,
      powCount: 0,
      sumCount: 0,
      sqrtCount: 0,
      shortSeconds: settings.shortSeconds,
    }),
  ].join("\n\n");
  if (settings.json) {
    console.log(JSON.stringify(report, null, 2));
    // One run gives both: the JSON to keep, and the tables to read after the progress lines.
    console.error(tables);
  } else console.log(tables);
  return hasFailures(report) || limitHasFailures(limit) ? 1 : 0;
}

function endChildren(): void {
  for (const child of liveChildren) killQuietly(child);
}

// An interrupted benchmark must not leave servers behind.
function onInterrupt(): void {
  endChildren();
  Deno.exit(130);
}

if (import.meta.main) {
  Deno.addSignalListener("SIGINT", onInterrupt);
  let code = 1;
  try {
    code = await main();
  } finally {
    endChildren();
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
  Deno.exit(code);
}
