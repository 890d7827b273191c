/**
 * What the OpenTelemetry instrumentation costs: the throughput benchmark's `pow`, `sum` and
 * `sqrt` runs (tests/bench/our_client.ts against tests/bench/our_server.ts, each a process of
 * its own) for three variants, side by side in one run:
 *
 * - **before**: a checkout of an earlier commit (`--base`, default `HEAD~1`), extracted with
 *   `git archive` into a temporary directory;
 * - **off**: this checkout, with no OpenTelemetry configured (`OTEL_DENO=false`);
 * - **on**: this checkout under `OTEL_DENO=true`, both processes exporting OTLP/HTTP to a
 *   receiver in this process that accepts and drops everything.
 *
 * Variants take turns within each round, so that a busy machine slows them alike; the table
 * shows the median rate over `--repeat` rounds and each variant's ratio to **before**.
 *
 * Run: `deno run --allow-run --allow-net=127.0.0.1 --allow-read --allow-write
 * tests/telemetry_bench.ts [--base COMMIT] [--repeat N] [--quick]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { ClientResult, ServerAnnouncement } from "./bench/common.ts";

type Shape = "pow" | "sum" | "sqrt";
type Variant = "before" | "off" | "on";

const SHAPES: readonly Shape[] = ["pow", "sum", "sqrt"];
const VARIANTS: readonly Variant[] = ["before", "off", "on"];
const HERE = decodeURIComponent(new URL("../", import.meta.url).pathname);
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
  return variant === "on"
    ? {
      NO_COLOR: "1",
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink.addr.port}`,
    }
    : { NO_COLOR: "1", OTEL_DENO: "false" };
}

function spawn(
  root: string,
  variant: Variant,
  program: string,
  args: string[],
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMISSIONS, `tests/bench/${program}`, ...args],
    cwd: root,
    env: environment(variant),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** One run: a fresh server, one call of `shape`, the client's rate in messages/s. */
async function measure(
  root: string,
  variant: Variant,
  shape: Shape,
): Promise<number> {
  const server = spawn(root, variant, "our_server.ts", []);
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
    const client = spawn(root, variant, "our_client.ts", [
      shape,
      `127.0.0.1:${port}`,
      "--count",
      String(counts[shape]),
    ]);
    await client.stdin.close();
    const output = new TextDecoder().decode((await client.output()).stdout);
    const result = JSON.parse(
      output.trim().split("\n").at(-1)!,
    ) as ClientResult;
    if (!result.ok) {
      throw new Error(`${variant} ${shape} failed: ${result.error}`);
    }
    return result.rate;
  } finally {
    await server.stdin.close().catch(() => {});
    await server.status;
  }
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
};
const rates = new Map<string, number[]>();
try {
  for (let round = 1; round <= repeat; round++) {
    for (const shape of SHAPES) {
      for (const variant of VARIANTS) {
        const rate = await measure(roots[variant], variant, shape);
        const key = `${shape} ${variant}`;
        rates.set(key, [...(rates.get(key) ?? []), rate]);
        console.error(
          `round ${round}/${repeat}: ${shape} ${variant}: ${
            Math.round(rate).toLocaleString("en-US")
          } msg/s`,
        );
      }
    }
  }
} finally {
  await Deno.remove(baseRoot, { recursive: true });
  await sink.shutdown();
}

const cpus = (await run("nproc", [])).trim();
// Deno asks for --allow-all to read /proc itself.
const load = (await run("cat", ["/proc/loadavg"])).split(" ").slice(0, 3)
  .join(" ");
console.log(
  `Median msg/s of ${repeat} rounds; before = ${baseCommit}, off/on = ${headCommit} (working tree) without/with OTEL_DENO=true; ${cpus} CPUs, load ${load} at the end`,
);
console.log(
  "| shape | count | before | off | off/before | on | on/before |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const shape of SHAPES) {
  const [before, off, on] = VARIANTS.map((variant) =>
    median(rates.get(`${shape} ${variant}`)!)
  ) as [number, number, number];
  const format = (rate: number): string =>
    Math.round(rate).toLocaleString("en-US");
  const ratio = (rate: number): string => `${(rate / before).toFixed(3)}`;
  console.log(
    `| ${shape} | ${counts[shape].toLocaleString("en-US")} | ${
      format(before)
    } | ${format(off)} | ${ratio(off)} | ${format(on)} | ${ratio(on)} |`,
  );
}
