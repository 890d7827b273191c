/**
 * The benchmark's baseline client: one `Pow`, `Sum` or `Sqrt` call through a plain grpc-js
 * client, written the way the grpc-js examples write one, timed and checked, its result
 * printed as one JSON line.
 *
 * - `pow`: `client.Pow({ number: "1", count })`, counting `data` events; each must be `"1"`.
 * - `sum`: `client.Sum(callback)`, then `call.write({ number: String(i) })` in a loop; the sum
 *   must be exact.
 * - `sqrt`: `client.Sqrt()`, writing the numbers while the `data` listener checks each answer.
 *
 * The writing loops wait for `drain` when `write()` returns false (`--no-drain` writes
 * everything at once, as the route_guide example does). Plain grpc-js client streaming is
 * known to stall, so every run has a time limit (`--limit`, seconds): when it runs out the call
 * is cancelled and the result says how far it got. `--retry-buffer BYTES` sets the channel
 * option `grpc.per_rpc_retry_buffer_size`, which decides how long the stall is.
 *
 * Run: `deno run --allow-net=127.0.0.1 --allow-env=GRPC_* tests/bench/baseline_client.ts
 * sum 127.0.0.1:PORT --count 1000000 --limit 60`
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { once } from "node:events";
import { parseArgs } from "node:util";
import { streamPackage } from "./baseline_definitions.ts";
import {
  type ClientResult,
  describeError,
  expectedSum,
  positiveInteger,
  reportResult,
  resultOf,
} from "./common.ts";

/** How one run went, filled in as it goes. */
interface Run {
  /** Messages moved so far (answers read, or requests handed to the transport). */
  completed: number;
  /** Why the run failed, if it did. */
  error?: string;
  /** Set once the time limit has cancelled the call. */
  stalled: boolean;
}

/** Everything a shape needs: its call ends by resolving; `cancel` stops it. */
interface Started {
  done: Promise<void>;
  cancel(): void;
}

function finished(call: grpc.ClientReadableStream<unknown>): Promise<void> {
  return new Promise((resolve) => {
    call.on("status", () => resolve());
    call.on("error", () => resolve());
  });
}

/** What a run asks of the server, and how its client is made. */
interface Plan {
  address: string;
  /** How many messages to move. */
  count: number;
  options: grpc.ClientOptions;
  /** Whether writes wait for 'drain' once grpc-js's buffer is full. */
  waitForDrain: boolean;
}

function startPow(plan: Plan, run: Run): Started {
  const { address, count, options } = plan;
  const client = new streamPackage.ServerStream(
    address,
    grpc.credentials.createInsecure(),
    options,
  );
  const call = client.Pow({ number: "1", count });
  call.on("data", (reply: { number: string }) => {
    if (reply.number !== "1" && run.error === undefined) {
      run.error = `Power ${run.completed} is ${reply.number}, not 1`;
    }
    run.completed++;
  });
  call.on("error", (error: grpc.ServiceError) => {
    if (!run.stalled) run.error ??= describeError(error);
  });
  const done = finished(call).finally(() => client.close());
  return { done, cancel: () => call.cancel() };
}

function startSum(plan: Plan, run: Run): Started {
  const { address, count, options, waitForDrain } = plan;
  const client = new streamPackage.ClientStream(
    address,
    grpc.credentials.createInsecure(),
    options,
  );
  let resolveDone: () => void;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  }).finally(() => client.close());
  const call = client.Sum(
    (error: grpc.ServiceError | null, reply?: { sum: string }) => {
      if (error !== null) {
        if (!run.stalled) run.error ??= describeError(error);
      } else {
        const expected = expectedSum(count);
        if (BigInt(reply?.sum ?? "NaN") !== expected) {
          run.error ??= `Sum is ${reply?.sum}, not ${expected}`;
        }
      }
      resolveDone();
    },
  );
  // A write's callback runs once grpc-js has handed the message to HTTP/2: that is progress.
  function flushed(): void {
    run.completed++;
  }
  async function writeAll(): Promise<void> {
    for (let i = 0; i < count; i++) {
      if (run.stalled) return;
      const accepted = call.write({ number: String(i) }, flushed);
      if (!accepted && waitForDrain) await once(call, "drain");
    }
    call.end();
  }
  // A writer waiting for 'drain' when the time limit cancels the call sees the cancel.
  writeAll().catch((error: unknown) => {
    if (!run.stalled) run.error ??= describeError(error);
  });
  return { done, cancel: () => call.cancel() };
}

function startSqrt(plan: Plan, run: Run): Started {
  const { address, count, options, waitForDrain } = plan;
  const client = new streamPackage.BidirectionalStreamServer(
    address,
    grpc.credentials.createInsecure(),
    options,
  );
  const call = client.Sqrt();
  call.on("data", (reply: { sqrt: number }) => {
    const index = run.completed;
    if (reply.sqrt !== Math.sqrt(index) && run.error === undefined) {
      run.error = `Answer ${index} is ${reply.sqrt}, not ${Math.sqrt(index)}`;
    }
    run.completed++;
  });
  call.on("error", (error: grpc.ServiceError) => {
    if (!run.stalled) run.error ??= describeError(error);
  });
  async function writeAll(): Promise<void> {
    for (let i = 0; i < count; i++) {
      if (run.stalled) return;
      const accepted = call.write({ number: i });
      if (!accepted && waitForDrain) await once(call, "drain");
    }
    call.end();
  }
  // A writer waiting for 'drain' when the time limit cancels the call sees the cancel.
  writeAll().catch((error: unknown) => {
    if (!run.stalled) run.error ??= describeError(error);
  });
  const done = finished(call).finally(() => client.close());
  return { done, cancel: () => call.cancel() };
}

async function main(): Promise<ClientResult> {
  const { positionals, values } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      count: { type: "string" },
      limit: { type: "string", default: "60" },
      "no-drain": { type: "boolean", default: false },
      "retry-buffer": { type: "string" },
    },
  });
  const [shape, address] = positionals;
  if (address === undefined) {
    throw new TypeError(
      "Usage: baseline_client.ts pow|sum|sqrt HOST:PORT --count N [--limit S]",
    );
  }
  const count = positiveInteger(values.count, "Count");
  const limitMs = positiveInteger(values.limit, "Limit") * 1000;
  const waitForDrain = !values["no-drain"];
  const options: grpc.ClientOptions = {};
  if (values["retry-buffer"] !== undefined) {
    options["grpc.per_rpc_retry_buffer_size"] = positiveInteger(
      values["retry-buffer"],
      "Retry buffer",
    );
  }
  const run: Run = { completed: 0, stalled: false };
  const start = performance.now();
  const samples: [number, number][] = [];
  function sample(): void {
    samples.push([
      Math.round(performance.now() - start) / 1000,
      run.completed,
    ]);
  }
  const sampler = setInterval(sample, 1_000);
  const plan: Plan = { address, count, options, waitForDrain };
  let started: Started;
  switch (shape) {
    case "pow":
      started = startPow(plan, run);
      break;
    case "sum":
      started = startSum(plan, run);
      break;
    case "sqrt":
      started = startSqrt(plan, run);
      break;
    default:
      throw new TypeError(`Unknown shape: ${shape}`);
  }
  const timer = setTimeout(() => {
    run.stalled = true;
    started.cancel();
  }, limitMs);
  await started.done;
  const elapsed = performance.now() - start;
  clearTimeout(timer);
  clearInterval(sampler);
  sample();
  const result = resultOf(
    { expected: count, completed: run.completed, milliseconds: elapsed },
    { error: run.error, stalled: run.stalled },
  );
  result.progress = samples;
  return result;
}

reportResult(await main());
