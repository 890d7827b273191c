/**
 * The benchmark's short-call load from Deno: `Pow(2)` (10 replies), a 10-number `Sum` or a
 * 10-number `Sqrt` (`--messages M` for M instead of 10), called back to back by `--inflight` workers over `--connections`
 * connections for `--seconds`, every answer checked. `--transport ours` calls through
 * `createClient` from `mod.ts` (`ours-node`: the same on `node:http2`, not the client's own
 * HTTP/2); `--transport grpc-js` through a plain grpc-js client, written
 * as the grpc-js examples write one; `--transport floor` through a bare `node:http2` client
 * (`short_floor_client.ts`). It prints one JSON line: calls, calls/s, p50 and p99
 * latency in ms, the same shape as the grpc-go load client's `short` mode.
 *
 * Run: `deno run --allow-net=127.0.0.1 --allow-env tests/bench/short_client.ts sum
 * 127.0.0.1:PORT --transport ours --inflight 10 --connections 1 --seconds 3`
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { parseArgs } from "node:util";
import { createClient, type StreamClient } from "../../mod.ts";
import { probeClient } from "../../clients/_testing.ts";
import {
  type PowClient,
  type SqrtClient,
  streamPackage,
  type SumClient,
} from "./baseline_definitions.ts";
import { describeError, positiveInteger } from "./common.ts";
import { floorCall } from "./short_floor_client.ts";
import type { Shape, ShortResult } from "./common.ts";

/** One short call on one connection; resolves once every answer is checked. */
type ShortCall = (seed: number) => Promise<void>;

function powersOfTwo(count: number): bigint[] {
  return Array.from({ length: count }, (_, i) => 2n ** BigInt(i));
}

function numbersFrom(seed: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => seed * count + i);
}

function expectedSumOf(numbers: readonly number[]): bigint {
  return BigInt(numbers.reduce((total, number) => total + number, 0));
}

function ourCall(
  shape: Shape,
  { client, messages }: { client: StreamClient; messages: number },
): ShortCall {
  const powers = powersOfTwo(messages);
  switch (shape) {
    case "pow":
      return async () => {
        let index = 0;
        for await (const power of client.pow(2, { count: messages })) {
          if (power !== powers[index]) {
            throw new Error(`Pow(2) power ${index} is ${power}`);
          }
          index++;
        }
        if (index !== messages) {
          throw new Error(`Pow(2) gave ${index} powers`);
        }
      };
    case "sum":
      return async (seed) => {
        const numbers = numbersFrom(seed, messages);
        const total = await client.sum(numbers);
        if (total !== expectedSumOf(numbers)) {
          throw new Error(`Sum is ${total}, not ${expectedSumOf(numbers)}`);
        }
      };
    case "sqrt":
      return async (seed) => {
        const numbers = numbersFrom(seed, messages);
        let index = 0;
        for await (const root of client.sqrt(numbers)) {
          if (root !== Math.sqrt(numbers[index]!)) {
            throw new Error(`Sqrt answer ${index} is ${root}`);
          }
          index++;
        }
        if (index !== messages) {
          throw new Error(`Sqrt gave ${index} answers`);
        }
      };
  }
}

function grpcJsCall(
  shape: Shape,
  { address, messages }: { address: string; messages: number },
): {
  call: ShortCall;
  close(): void;
} {
  const powers = powersOfTwo(messages);
  // A subchannel pool of its own gives each client a connection of its own.
  const options = { "grpc.use_local_subchannel_pool": 1 };
  const credentials = grpc.credentials.createInsecure();
  switch (shape) {
    case "pow": {
      const client: PowClient = new streamPackage.ServerStream(
        address,
        credentials,
        options,
      );
      return {
        close: () => client.close(),
        call: () =>
          new Promise((resolve, reject) => {
            const call = client.Pow({ number: "2", count: messages });
            let index = 0;
            call.on("data", (reply: { number: string }) => {
              if (BigInt(reply.number) !== powers[index]) {
                reject(new Error(`Pow(2) power ${index} is ${reply.number}`));
              }
              index++;
            });
            call.on("error", reject);
            call.on("end", () =>
              index === messages
                ? resolve()
                : reject(new Error(`Pow(2) gave ${index} powers`)));
          }),
      };
    }
    case "sum": {
      const client: SumClient = new streamPackage.ClientStream(
        address,
        credentials,
        options,
      );
      return {
        close: () => client.close(),
        call: (seed) =>
          new Promise((resolve, reject) => {
            const numbers = numbersFrom(seed, messages);
            const call = client.Sum((error, reply) => {
              if (error !== null) reject(error);
              else if (BigInt(reply?.sum ?? "NaN") !== expectedSumOf(numbers)) {
                reject(new Error(`Sum is ${reply?.sum}`));
              } else resolve();
            });
            for (const number of numbers) {
              call.write({ number: String(number) });
            }
            call.end();
          }),
      };
    }
    case "sqrt": {
      const client: SqrtClient = new streamPackage.BidirectionalStreamServer(
        address,
        credentials,
        options,
      );
      return {
        close: () => client.close(),
        call: (seed) =>
          new Promise((resolve, reject) => {
            const numbers = numbersFrom(seed, messages);
            const call = client.Sqrt();
            let index = 0;
            call.on("data", (reply: { sqrt: number }) => {
              if (reply.sqrt !== Math.sqrt(numbers[index]!)) {
                reject(new Error(`Sqrt answer ${index} is ${reply.sqrt}`));
              }
              index++;
            });
            call.on("error", reject);
            call.on("end", () =>
              index === messages
                ? resolve()
                : reject(new Error(`Sqrt gave ${index} answers`)));
            for (const number of numbers) {
              call.write({ number });
            }
            call.end();
          }),
      };
    }
  }
}

async function main(): Promise<ShortResult> {
  const { positionals, values } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      transport: { type: "string", default: "ours" },
      inflight: { type: "string", default: "1" },
      connections: { type: "string", default: "1" },
      seconds: { type: "string", default: "3" },
      messages: { type: "string", default: "10" },
    },
  });
  const [shape, address] = positionals as [Shape | undefined, string?];
  if (
    address === undefined ||
    (shape !== "pow" && shape !== "sum" && shape !== "sqrt")
  ) {
    throw new TypeError(
      "Usage: short_client.ts pow|sum|sqrt HOST:PORT [--transport ours|ours-node|grpc-js|floor] [--inflight K] [--connections C] [--seconds S] [--messages M]",
    );
  }
  const inflight = positiveInteger(values.inflight, "Inflight");
  const connections = positiveInteger(values.connections, "Connections");
  const seconds = Number(values.seconds);
  const messages = positiveInteger(values.messages, "Messages");
  const calls: ShortCall[] = [];
  const closers: (() => void)[] = [];
  for (let i = 0; i < connections; i++) {
    if (values.transport === "floor") {
      const { call, close } = floorCall(shape, { address, messages });
      calls.push(call);
      closers.push(close);
    } else if (values.transport === "grpc-js") {
      const { call, close } = grpcJsCall(shape, { address, messages });
      calls.push(call);
      closers.push(close);
    } else {
      // `ours-node`: the same client on `node:http2` rather than its own HTTP/2.
      const options = {};
      probeClient(options).ownHttp2 = values.transport !== "ours-node";
      const client = createClient(address, options);
      calls.push(ourCall(shape, { client, messages }));
      closers.push(() => client.close());
    }
  }
  const result: ShortResult = {
    calls: 0,
    seconds: 0,
    rate: 0,
    p50Ms: 0,
    p99Ms: 0,
    ok: false,
    inflight,
    connections,
  };
  try {
    // One call on each connection first, so connecting is not measured.
    await Promise.all(calls.map((call) => call(0)));
    const latencies: number[] = [];
    const start = performance.now();
    const deadline = start + seconds * 1000;
    let failure: unknown;
    await Promise.all(
      Array.from({ length: inflight }, async (_, worker) => {
        const call = calls[worker % connections]!;
        for (let n = 0; performance.now() < deadline && !failure; n++) {
          const began = performance.now();
          try {
            await call((worker * 7919 + n) % 100_000);
          } catch (error) {
            failure ??= error;
            return;
          }
          latencies.push(performance.now() - began);
        }
      }),
    );
    const elapsed = (performance.now() - start) / 1000;
    latencies.sort((a, b) => a - b);
    result.calls = latencies.length;
    result.seconds = elapsed;
    result.rate = latencies.length / elapsed;
    result.p50Ms = latencies[Math.floor(latencies.length / 2)] ?? 0;
    result.p99Ms = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
    result.ok = failure === undefined && latencies.length > 0;
    if (failure !== undefined) result.error = describeError(failure);
  } catch (error) {
    result.error = describeError(error);
  } finally {
    for (const close of closers) close();
  }
  return result;
}

console.log(JSON.stringify(await main()));
Deno.exit(0);
