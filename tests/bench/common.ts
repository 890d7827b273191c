/**
 * What the benchmark's programs share: how a server announces its port and waits to be told
 * to stop, how a client reports its result, and the result's shape.
 *
 * The runner (`tests/bench/main.ts`) starts each program as a process of its own and
 * talks to it through one JSON line on stdout and the end of stdin.
 *
 * @module
 */

/** The three streaming shapes the throughput benchmark drives. */
export type Shape = "pow" | "sum" | "sqrt";

/** What a client program prints, as one JSON line, when its run is over. */
export interface ClientResult {
  /** How many messages the run should move. */
  expected: number;
  /** How many it moved before it ended (all of them, unless it failed or ran out of time). */
  completed: number;
  /** Seconds from the start of the call to its last message or its time limit. */
  seconds: number;
  /** Messages per second over what completed. */
  rate: number;
  /** Whether every message arrived and every answer was right. */
  ok: boolean;
  /** Whether the run hit its time limit before it finished. */
  stalled: boolean;
  /** Why the run is not ok, if it is not. */
  error?: string;
  /** Progress samples `[seconds, completed]`, to show where a run slows down. */
  progress?: [number, number][];
}

/** What a short-call load client prints (`short_client.ts`, or the grpc-go `load short`). */
export interface ShortResult {
  /** Calls that completed, every answer right. */
  calls: number;
  /** Seconds the calls ran. */
  seconds: number;
  /** Calls per second. */
  rate: number;
  /** Median latency of one call, in milliseconds. */
  p50Ms: number;
  /** 99th percentile latency, in milliseconds. */
  p99Ms: number;
  /** Whether every call succeeded with the right answers. */
  ok: boolean;
  /** Why a call failed, if one did. */
  error?: string;
  /** Calls in flight at once. */
  inflight: number;
  /** Connections they shared. */
  connections: number;
}

/** What a server program prints first, as one JSON line, once it listens. */
export interface ServerAnnouncement {
  /** The port it listens on, on 127.0.0.1. */
  port: number;
}

/**
 * Prints the port a server listens on, so the runner can connect to it.
 *
 * @param port The bound port.
 */
export function announcePort(port: number): void {
  const announcement: ServerAnnouncement = { port };
  console.log(JSON.stringify(announcement));
}

/**
 * Resolves when stdin ends: the runner closes a server's stdin to ask it to stop, and a
 * runner that dies closes it too, so no server outlives its runner.
 */
export async function stdinClosed(): Promise<void> {
  const reader = Deno.stdin.readable.getReader();
  try {
    while (!(await reader.read()).done) {
      // Nothing is sent on stdin; only its end matters.
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Listens on 127.0.0.1 (a free port), announces the port, and serves until stdin ends; then
 * exits, since open connections would hold the process and the runner only waits for it to go.
 *
 * @param server A `node:net` (or `node:http2`) server, its handlers set.
 */
export async function serveUntilStdinEnds(server: {
  listen(port: number, host: string, listening: () => void): unknown;
  address(): unknown;
}): Promise<never> {
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    if (
      typeof address === "object" && address !== null && "port" in address &&
      typeof address.port === "number"
    ) {
      announcePort(address.port);
    }
  });
  await stdinClosed();
  Deno.exit(0);
}

/**
 * Prints a client's result as one JSON line.
 *
 * @param result The result.
 */
export function reportResult(result: ClientResult): void {
  console.log(JSON.stringify(result));
}

/** How much a run moved and in what time. */
export interface RunCounts {
  /** How many messages the run should move. */
  expected: number;
  /** How many it moved. */
  completed: number;
  /** How long it took. */
  milliseconds: number;
}

/** How a run ended, beyond its counts. */
export interface ResultOptions {
  /**
   * Why it failed, if it did.
   *
   * @default {undefined}
   */
  error?: string | undefined;
  /**
   * Whether it hit its time limit.
   *
   * @default {false}
   */
  stalled?: boolean;
}

/**
 * Builds a result from a run's counts and timing.
 *
 * @param counts What the run moved, and how long it took.
 * @param options How it ended.
 * @returns The result.
 */
export function resultOf(
  counts: RunCounts,
  options: ResultOptions = {},
): ClientResult {
  const { expected, completed, milliseconds } = counts;
  const { error, stalled = false } = options;
  const seconds = milliseconds / 1000;
  const result: ClientResult = {
    expected,
    completed,
    seconds,
    rate: seconds > 0 ? completed / seconds : 0,
    ok: error === undefined && !stalled && completed === expected,
    stalled,
  };
  if (error !== undefined) result.error = error;
  return result;
}

/**
 * Reads a positive integer command line argument.
 *
 * @param value The argument.
 * @param name What it is, for the error message.
 * @returns The integer.
 */
export function positiveInteger(
  value: string | undefined,
  name: string,
): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) {
    throw new RangeError(`${name} must be a positive integer: ${value}`);
  }
  return parsed;
}

/** The sum of 0 … count-1, the answer a `Sum` of those numbers must give. */
export function expectedSum(count: number): bigint {
  const n = BigInt(count);
  return n * (n - 1n) / 2n;
}

/**
 * Describes an error in one line.
 *
 * @param error What was thrown.
 * @returns Its message.
 */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
