/**
 * What the OpenTelemetry instrumentation costs: the throughput benchmark's `pow`, `sum` and
 * `sqrt` runs (tests/bench/our_client.ts against tests/bench/our_server.ts, each a process of
 * its own) for three variants, side by side in one run:
 *
 * - **before**: a checkout of an earlier commit (`--base`, default `HEAD~1`), extracted with
 *   `git archive` into a temporary directory;
 * - **off**: this checkout, with no OpenTelemetry configured (`OTEL_DENO=false`);
 * - **on**: this checkout under `OTEL_DENO=true`, both processes exporting OTLP/HTTP to a
 *   receiver in this process that accepts and drops everything;
 * - **before, on**: the earlier commit under `OTEL_DENO=true` too, which tells what Deno's own
 *   OpenTelemetry costs (it traces each HTTP/2 request) from what this module adds to it.
 *
 * Variants take turns within each round, so that a busy machine slows them alike; the tables
 * show the median over `--repeat` rounds of the rate and of the CPU time per message (client
 * and server together, from `/usr/bin/time`), and the median of the ratios of each round (a
 * variant against **before** measured moments apart, under the same load).
 *
 * Run: `deno run --allow-run --allow-net=127.0.0.1 --allow-read --allow-write
 * tests/bench/telemetry_bench.ts [--base COMMIT] [--repeat N] [--quick]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { ClientResult, ServerAnnouncement } from "./common.ts";

type Shape = "pow" | "sum" | "sqrt";
type Variant = "before" | "off" | "on" | "beforeOn";

const SHAPES: readonly Shape[] = ["pow", "sum", "sqrt"];
const VARIANTS: readonly Variant[] = ["before", "off", "on", "beforeOn"];
const HERE = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const PERMISSIONS = ["--allow-net=127.0.0.1", "--allow-env=GRPC_*"];

const { values } = parseArgs({
  args: Deno.args,
  options: {
    base: { type: "string", default: "HEAD~1" },
    repeat: { type: "string", default: "5" },
    quick: { type: "boolean", default: false },
  },
});
const repeat = Number(values.repeat);
if (!Number.isSafeInteger(repeat) || repeat < 1) {
  throw new RangeError(`Repeat must be a positive integer: ${values.repeat}`);
}
const counts: Record<Shape, number> = values.quick
  ? { pow: 200_000, sum: 200_000, sqrt: 50_000 }
  : { pow: 1_000_000, sum: 1_000_000, sqrt: 200_000 };

async function run(
  command: string,
  args: string[],
  cwd = HERE,
): Promise<string> {
  const { success, stdout, stderr } = await new Deno.Command(command, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  if (!success) {
    throw new Error(`${command} ${args.join(" ")}: ${text.decode(stderr)}`);
  }
  return text.decode(stdout).trim();
}

/** Extracts `commit` into a temporary directory. */
async function checkout(commit: string): Promise<string> {
  const directory = await Deno.makeTempDir({ prefix: "telemetry_bench_" });
  const archive = new Deno.Command("git", {
    args: ["archive", "--format=tar", commit],
    cwd: HERE,
    stdout: "piped",
  }).spawn();
  const tar = new Deno.Command("tar", {
    args: ["-x", "-C", directory],
    stdin: "piped",
  }).spawn();
  await archive.stdout.pipeTo(tar.stdin);
  const [archived, extracted] = await Promise.all([archive.status, tar.status]);
  if (!archived.success || !extracted.success) {
    throw new Error(`Cannot extract ${commit}`);
  }
  return directory;
}

/** A receiver of OTLP/HTTP exports that keeps nothing. */
const sink = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  async (request) => {
    await request.arrayBuffer();
    return Response.json({});
  },
);

function environment(variant: Variant): Record<string, string> {
  return variant === "on" || variant === "beforeOn"
    ? {
      NO_COLOR: "1",
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink.addr.port}`,
    }
    : { NO_COLOR: "1", OTEL_DENO: "false" };
}

/**
 * A program of tests/bench/, in the checkout of `variant`, under `/usr/bin/time`, which
 * writes its CPU seconds to `cpuFile`.
 */
function spawn(
  variant: Variant,
  command: { program: string; args: string[]; cpuFile: string },
): Deno.ChildProcess {
  return new Deno.Command("/usr/bin/time", {
    args: [
      "--format=%U %S",
      `--output=${command.cpuFile}`,
      Deno.execPath(),
      "run",
      "--quiet",
      ...PERMISSIONS,
      `tests/bench/${command.program}`,
      ...command.args,
    ],
    cwd: roots[variant],
    env: environment(variant),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

async function cpuSeconds(file: string): Promise<number> {
  const [user, system] = (await Deno.readTextFile(file)).trim().split(/\s+/)
    .map(Number);
  return user! + system!;
}

/** What one run measured. */
interface Measurement {
  /** Messages per second, as the client timed its call. */
  rate: number;
  /** CPU time of the client and the server together, per message, in microseconds. */
  cpuMicros: number;
}

/** One run: a fresh server, one call of `shape`. */
async function measure(
  variant: Variant,
  shape: Shape,
): Promise<Measurement> {
  const serverCpu = `${scratch}/server`;
  const clientCpu = `${scratch}/client`;
  const server = spawn(variant, {
    program: "our_server.ts",
    args: [],
    cpuFile: serverCpu,
  });
  let result: ClientResult;
  try {
    const reader = server.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let buffered = "";
    while (!buffered.includes("\n")) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`Server of ${variant} did not start`);
      buffered += value;
    }
    const { port } = JSON.parse(buffered.split("\n")[0]!) as ServerAnnouncement;
    reader.cancel().catch(() => {});
    const client = spawn(variant, {
      program: "our_client.ts",
      args: [shape, `127.0.0.1:${port}`, "--count", String(counts[shape])],
      cpuFile: clientCpu,
    });
    await client.stdin.close();
    const output = new TextDecoder().decode((await client.output()).stdout);
    result = JSON.parse(output.trim().split("\n").at(-1)!) as ClientResult;
    if (!result.ok) {
      throw new Error(`${variant} ${shape} failed: ${result.error}`);
    }
  } finally {
    await server.stdin.close().catch(() => {});
    await server.status;
  }
  const cpu = (await cpuSeconds(serverCpu)) + (await cpuSeconds(clientCpu));
  return { rate: result.rate, cpuMicros: cpu / counts[shape] * 1e6 };
}

function median(list: readonly number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[middle]!
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const baseCommit = await run("git", ["rev-parse", "--short", values.base]);
const headCommit = await run("git", ["rev-parse", "--short", "HEAD"]);
const baseRoot = await checkout(baseCommit);
const roots: Record<Variant, string> = {
  before: baseRoot,
  off: HERE,
  on: HERE,
  beforeOn: baseRoot,
};
const scratch = await Deno.makeTempDir({ prefix: "telemetry_bench_cpu_" });
const runs = new Map<string, Measurement[]>();
const started = performance.now();
try {
  for (let round = 1; round <= repeat; round++) {
    // Each round starts with another variant, so that none always runs first or last.
    const order = VARIANTS.map((_, index) =>
      VARIANTS[(index + round) % VARIANTS.length]!
    );
    for (const shape of SHAPES) {
      for (const variant of order) {
        const measured = await measure(variant, shape);
        const key = `${shape} ${variant}`;
        runs.set(key, [...(runs.get(key) ?? []), measured]);
        console.error(
          `round ${round}/${repeat}: ${shape} ${variant}: ${
            Math.round(measured.rate).toLocaleString("en-US")
          } msg/s, ${measured.cpuMicros.toFixed(2)} CPU µs/msg`,
        );
      }
    }
  }
} finally {
  await Deno.remove(baseRoot, { recursive: true });
  await Deno.remove(scratch, { recursive: true });
  await sink.shutdown();
}

const cpus = (await run("nproc", [])).trim();
// Deno asks for --allow-all to read /proc itself.
const load = (await run("cat", ["/proc/loadavg"])).split(" ").slice(0, 3)
  .join(" ");
console.log(
  `Medians of ${repeat} rounds (${
    Math.round((performance.now() - started) / 1000)
  } s); before = ${baseCommit}, off and on = ${headCommit} (and the working tree) without and with OTEL_DENO=true; ${cpus} CPUs, load ${load} at the end`,
);

/**
 * One table row: the median of each variant, and the median over the rounds of each ratio
 * taken within a round, where the two runs met the same load.
 */
/** Which figure of a run a table shows, and how. */
interface Column {
  pick: (measured: Measurement) => number;
  format: (value: number) => string;
}

function row(shape: Shape, { pick, format }: Column): string {
  const values = (variant: Variant): number[] =>
    runs.get(`${shape} ${variant}`)!.map(pick);
  const ratio = (variant: Variant, to: Variant = "before"): string => {
    const of = values(variant);
    const base = values(to);
    return median(of.map((value, round) => value / base[round]!)).toFixed(3);
  };
  const show = (variant: Variant): string => format(median(values(variant)));
  return `| ${shape} | ${counts[shape].toLocaleString("en-US")} | ${
    show("before")
  } | ${show("off")} | ${ratio("off")} | ${show("on")} | ${ratio("on")} | ${
    show("beforeOn")
  } | ${ratio("on", "beforeOn")} |`;
}

const HEADER =
  "| shape | count | before | off | off/before | on | on/before | before, on | on/(before, on) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|";
console.log("\nThroughput, messages/s (the client's timing of its call):\n");
console.log(HEADER);
for (const shape of SHAPES) {
  console.log(
    row(shape, {
      pick: (measured) => measured.rate,
      format: (rate) => Math.round(rate).toLocaleString("en-US"),
    }),
  );
}
console.log(
  "\nCPU time of client and server together, µs per message (less swayed by a busy machine):\n",
);
console.log(HEADER);
for (const shape of SHAPES) {
  console.log(
    row(shape, {
      pick: (measured) => measured.cpuMicros,
      format: (cpu) => cpu.toFixed(2),
    }),
  );
}
