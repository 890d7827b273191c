/**
 * The benchmark's "our client": one `pow`, `sum` or `sqrt` call through `createClient` from
 * `mod.ts`, timed and checked, its result printed as one JSON line.
 *
 * - `pow`: one call for `--count` powers of 1, each must be `1n`.
 * - `sum`: the numbers 0 … count-1 from a generator; the sum must be exact.
 * - `sqrt`: the numbers 0 … count-1 on one call, written as fast as flow control allows while
 *   the answers are read; each answer must be `Math.sqrt` of its number.
 * - `slow-pow`: reads a `--count` `pow` at `--read-delay` ms per value for `--window` seconds,
 *   then leaves the call (which cancels it), so the runner can watch the server's memory.
 *
 * Run: `deno run --allow-net=127.0.0.1 --allow-env=GRPC_* tests/bench/our_client.ts sum
 * 127.0.0.1:PORT --count 1000000`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createClient, type StreamClient } from "../../mod.ts";
import {
  type ClientResult,
  describeError,
  expectedSum,
  positiveInteger,
  reportResult,
  resultOf,
} from "./common.ts";

/** Counts what a run has moved, and samples it once a second. */
class Progress {
  completed = 0;
  readonly samples: [number, number][] = [];
  readonly #start = performance.now();
  readonly #timer: ReturnType<typeof setInterval>;

  constructor() {
    this.#timer = setInterval(() => this.sample(), 1_000);
  }

  get elapsedMs(): number {
    return performance.now() - this.#start;
  }

  sample(): void {
    this.samples.push([
      Math.round(this.elapsedMs) / 1000,
      this.completed,
    ]);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

function* countingNumbers(
  count: number,
  progress: Progress,
): Generator<number> {
  for (let i = 0; i < count; i++) {
    progress.completed = i;
    yield i;
  }
  progress.completed = count;
}

/** One timed run of a call. */
interface Run {
  /** How many messages to move. */
  count: number;
  progress: Progress;
  /** Aborts the call at the time limit. */
  signal: AbortSignal;
}

async function runPow(
  client: StreamClient,
  { count, progress, signal }: Run,
): Promise<string | undefined> {
  for await (const power of client.pow(1, { count, signal })) {
    if (power !== 1n) return `Power ${progress.completed} is ${power}, not 1`;
    progress.completed++;
  }
  return undefined;
}

async function runSum(
  client: StreamClient,
  { count, progress, signal }: Run,
): Promise<string | undefined> {
  const total = await client.sum(countingNumbers(count, progress), { signal });
  const expected = expectedSum(count);
  return total === expected ? undefined : `Sum is ${total}, not ${expected}`;
}

async function runSqrt(
  client: StreamClient,
  { count, progress, signal }: Run,
): Promise<string | undefined> {
  // `completed` counts answers here, so the numbers come from a plain generator.
  function* numbers(): Generator<number> {
    for (let i = 0; i < count; i++) yield i;
  }
  for await (const root of client.sqrt(numbers(), { signal })) {
    const index = progress.completed;
    if (root !== Math.sqrt(index)) {
      return `Answer ${index} is ${root}, not ${Math.sqrt(index)}`;
    }
    progress.completed++;
  }
  return undefined;
}

function delay(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/** A `Pow` read slowly for a window of time. */
interface SlowRun {
  /** How many powers to ask for. */
  count: number;
  progress: Progress;
  /** The pause after each power read. */
  readDelayMs: number;
  /** How long to read before leaving the call. */
  windowMs: number;
}

async function runSlowPow(
  client: StreamClient,
  { count, progress, readDelayMs, windowMs }: SlowRun,
): Promise<string | undefined> {
  for await (const power of client.pow(1, { count })) {
    if (power !== 1n) return `Power ${progress.completed} is ${power}, not 1`;
    progress.completed++;
    // Leaving the loop cancels the call: the window is over.
    if (progress.elapsedMs >= windowMs) break;
    await delay(readDelayMs);
  }
  return undefined;
}

async function main(): Promise<ClientResult> {
  const { positionals, values } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      count: { type: "string" },
      limit: { type: "string", default: "120" },
      "read-delay": { type: "string", default: "1" },
      window: { type: "string", default: "15" },
      transport: { type: "string", default: "http2" },
    },
  });
  const [shape, address] = positionals;
  if (address === undefined) {
    throw new TypeError(
      "Usage: our_client.ts pow|sum|sqrt|slow-pow HOST:PORT --count N",
    );
  }
  const count = positiveInteger(values.count, "Count");
  const limitMs = positiveInteger(values.limit, "Limit") * 1000;
  using client = createClient(address, {
    transport: values.transport === "grpc-js" ? "grpc-js" : "http2",
  });
  const controller = new AbortController();
  const progress = new Progress();
  const timer = setTimeout(() => controller.abort(), limitMs);
  let error: string | undefined;
  const run: Run = { count, progress, signal: controller.signal };
  try {
    switch (shape) {
      case "pow":
        error = await runPow(client, run);
        break;
      case "sum":
        error = await runSum(client, run);
        break;
      case "sqrt":
        error = await runSqrt(client, run);
        break;
      case "slow-pow": {
        const windowMs = positiveInteger(values.window, "Window") * 1000;
        const readDelayMs = positiveInteger(values["read-delay"], "Read delay");
        error = await runSlowPow(client, {
          count,
          progress,
          readDelayMs,
          windowMs,
        });
        const result = resultOf({
          expected: count,
          completed: progress.completed,
          milliseconds: progress.elapsedMs,
        }, { error });
        // A window reads only part of the call by design; it is not a failure.
        result.ok = error === undefined;
        return result;
      }
      default:
        throw new TypeError(`Unknown shape: ${shape}`);
    }
  } catch (caught) {
    if (!controller.signal.aborted) error = describeError(caught);
  } finally {
    clearTimeout(timer);
    progress.stop();
  }
  progress.sample();
  const result = resultOf({
    expected: count,
    completed: progress.completed,
    milliseconds: progress.elapsedMs,
  }, { error, stalled: controller.signal.aborted });
  result.progress = progress.samples;
  return result;
}

reportResult(await main());
