/**
 * What one short call costs a server in CPU time, ours beside grpc-go's: each server pinned to
 * core 0 (grpc-go's with `GOMAXPROCS=1`), grpc-go's load client on core 1, and the server's
 * user + system time from `/proc/<pid>/stat` over a timed run divided by the calls it answered.
 * CPU per call decides what `serve --workers` = cores can reach on any host, and it varies
 * less than calls/s with the machine's speed of the moment. Rounds alternate the two servers.
 *
 * Run: `deno run --allow-all tests/bench/call_cost.ts [--shapes pow,sum,sqrt] [--rounds 3]
 * [--seconds 3] [--connections 1] [--messages 2] [--ours-only] [--server our_server.ts]` (another
 * server program of `tests/bench/` in place of ours, such as the HTTP/2 floor
 * `raw_h2_floor_server.ts`) after building grpc-go's
 * programs into `/tmp/gob` (`--go` changes that; see `limit_servers.ts`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import type { ShortResult } from "./common.ts";
import { runLoad, shortLoadArgs } from "./limit_servers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    shapes: { type: "string", default: "pow,sum,sqrt" },
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "3" },
    connections: { type: "string", default: "1" },
    inflight: { type: "string", default: "100" },
    messages: { type: "string", default: "2" },
    go: { type: "string", default: "/tmp/gob" },
    "ours-only": { type: "boolean", default: false },
    server: { type: "string", default: "our_server.ts" },
  },
});

const CLOCK_TICKS_PER_SECOND = 100;

interface Server {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

async function start(kind: "ours" | "grpc-go"): Promise<Server> {
  const command = kind === "ours"
    ? [
      Deno.execPath(),
      "run",
      "--allow-net=127.0.0.1",
      "--allow-env=GRPC_*",
      fileURLToPath(new URL(`./${values.server}`, import.meta.url)),
    ]
    : [`${values.go}/server`];
  const child = new Deno.Command("taskset", {
    args: ["-c", "0", ...command],
    env: { GOMAXPROCS: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`The ${kind} server ended before it listened`);
    text += value;
  }
  return {
    pid: child.pid,
    port: JSON.parse(text.split("\n")[0]!).port,
    async stop() {
      await child.stdin.close();
      await reader.cancel();
      await child.status;
    },
  };
}

async function cpuTicks(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are the 14th and 15th fields, counted from the pid.
  return Number(fields[11]) + Number(fields[12]);
}

async function load(
  { shape, port, seconds }: { shape: string; port: number; seconds: string },
): Promise<ShortResult> {
  const result = await runLoad<ShortResult>("taskset", [
    "-c",
    "1",
    `${values.go}/load`,
    ...shortLoadArgs({
      shape,
      address: `127.0.0.1:${port}`,
      inflight: values.inflight,
      connections: values.connections,
      seconds,
      messages: values.messages,
    }),
  ]);
  if (typeof result === "string" || !result.ok) {
    throw new Error(
      `The load failed: ${typeof result === "string" ? result : result.error}`,
    );
  }
  return result;
}

async function measure(
  kind: "ours" | "grpc-go",
  shape: string,
): Promise<string> {
  const server = await start(kind);
  try {
    await load({ shape, port: server.port, seconds: "1" });
    const before = await cpuTicks(server.pid);
    const result = await load({
      shape,
      port: server.port,
      seconds: values.seconds,
    });
    const ticks = await cpuTicks(server.pid) - before;
    const micros = ticks / CLOCK_TICKS_PER_SECOND * 1e6 / result.calls;
    return `${kind.padEnd(7)} ${shape.padEnd(4)} ${
      micros.toFixed(1).padStart(6)
    } µs CPU/call  ${
      Math.round(result.rate).toString().padStart(7)
    } calls/s  p99 ${result.p99Ms.toFixed(1)} ms`;
  } finally {
    await server.stop();
  }
}

for (let round = 1; round <= Number(values.rounds); round++) {
  for (const shape of values.shapes.split(",")) {
    console.log(`round ${round}  ${await measure("ours", shape)}`);
    if (!values["ours-only"]) {
      console.log(`round ${round}  ${await measure("grpc-go", shape)}`);
    }
  }
}
