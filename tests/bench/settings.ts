/**
 * What one run of `deno task bench` measures, and how much: the command line read into
 * settings (`--json`, `--quick`, `--repeat`, `--limit`, `--window`, `--only limit`).
 *
 * @module
 */
import { parseArgs } from "node:util";

/** What one invocation measures, and how much. */
export interface Settings {
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
  /**
   * `limit`: only the grpc-go limit section (`tests/bench/limit.ts`); `calls`: only the
   * short-call section (`tests/bench/calls.ts`); `warmup`: only the warm-up section
   * (`tests/bench/warmup.ts`).
   */
  only: "limit" | "calls" | "warmup" | undefined;
  /** Seconds of each short-call figure of the limit section. */
  shortSeconds: number;
}

/**
 * Reads the command line; prints the usage and exits on `--help`.
 *
 * @param args The arguments after the program's name.
 * @returns What to measure.
 * @throws {RangeError} When an option's value is out of range.
 */
export function readSettings(args: string[]): Settings {
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
      "Usage: deno task bench [--json] [--quick] [--repeat N] [--limit SECONDS] [--window SECONDS] [--only limit|calls|warmup]",
    );
    Deno.exit(0);
  }
  const quick = values.quick;
  const only = values.only;
  if (
    only !== undefined && only !== "limit" && only !== "calls" &&
    only !== "warmup"
  ) {
    throw new RangeError(`Only must be limit, calls or warmup: ${only}`);
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
    only,
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
