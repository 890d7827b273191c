/**
 * `deno task soak`: long load runs against a server in its own process, printing figures.
 *
 * - cancels: one client cancels `Pow` calls after their first value, 100 a second, beside one
 *   long `Sqrt` call on the same client; every call must succeed or end as cancelled. Two
 *   cancellers: ours (`createClient`, which holds its resets back a little), and a raw HTTP/2
 *   peer (tests/fixtures/h2_peer.py `cancel-rate`) that sends RST_STREAM(CANCEL) as soon as a
 *   call's first value arrives, as grpc-go, grpc-js and C-core do, with a `Sqrt` beside its
 *   cancels on the same connection; it must end with the connection open, no GOAWAY, and the
 *   `Sqrt` answering.
 * - mix: a grpc-go client runs 1,000 concurrent calls of the three kinds over 10 connections
 *   for 45 s, three times, and counts the streams that stopped answering.
 * - never-read: a raw HTTP/2 peer (tests/fixtures/slow_reader.py) starts `Pow(1, count
 *   1000000)` calls and reads nothing for 15 s: 20 then 100 calls held by the protocol's
 *   default windows (the baseline), then with 2^31-1 windows 20 calls, 100 calls on one
 *   connection, and 5 connections x 20 calls; the server's memory before and after, per
 *   connection, and the most bytes of replies one connection held. The target: <= 16 MB per
 *   connection.
 *
 * - restart: `Sum` callers, ours and grpc-go's, by default and with wait-for-ready, call
 *   every 10 ms through SIGKILL and SIGTERM restarts of `grpc-stream serve` (see restart.ts).
 *
 * Usage: `deno task soak [cancels|mix|never-read|restart ...] [--cancel-seconds N]
 * [--canceller ours|raw|both] [--mix-runs N] [--never-read-seconds N] [--restart-runs N]
 * [--down-seconds N] [--stall 10s] [--deadline 30s]`; `--stall` is how long a mix stream
 * may wait for one answer before it counts as stalled, `--deadline` the deadline of each mix
 * call.
 *
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import { createClient } from "../../mod.ts";
import { DenoProcess } from "../_util/subprocess.ts";
import { restarts } from "./restart.ts";

const here = new URL(".", import.meta.url).pathname;
const root = new URL("../../", import.meta.url).pathname;

/** What a server process holds, in MiB (see serve.ts). */
interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  /** The most bytes of replies one connection held since the figure before, in KiB. */
  peakConnectionKiB: number;
}

/** A server in a child process; `memory()` asks it what it holds, `rss()` its RSS in MiB. */
class SoakServer implements AsyncDisposable {
  readonly port: number;
  readonly #process: DenoProcess;
  #figures = 0;

  private constructor(process: DenoProcess, port: number) {
    this.#process = process;
    this.port = port;
  }

  static async start(): Promise<SoakServer> {
    const process = DenoProcess.spawn([
      "run",
      "--v8-flags=--expose-gc",
      "--allow-net=127.0.0.1",
      "--allow-env",
      `${here}serve.ts`,
    ], { stdin: true });
    try {
      const [, port] = await process.waitForLine("stdout", /^(\d+)$/);
      return new SoakServer(process, Number(port));
    } catch (error) {
      await process[Symbol.asyncDispose]();
      throw error;
    }
  }

  async memory(): Promise<Memory> {
    await this.#process.write("\n");
    const figures = await this.#process.waitForLines(
      "stdout",
      /^[\d.]+(?: [\d.]+){4}$/,
      { count: ++this.#figures },
    );
    const [rss, heapUsed, heapTotal, external, peak] = figures.at(-1)![0]
      .split(" ").map(Number);
    return {
      rss: rss!,
      heapUsed: heapUsed!,
      heapTotal: heapTotal!,
      external: external!,
      peakConnectionKiB: peak!,
    };
  }

  async rss(): Promise<number> {
    return (await this.memory()).rss;
  }

  /** Whether every kind of call is answered right. */
  async answers(): Promise<boolean> {
    using client = createClient(`127.0.0.1:${this.port}`);
    const powers = await Array.fromAsync(client.pow(2, { count: 3 }));
    const roots = await Array.fromAsync(client.sqrt([9, 16]));
    return powers.join() === "1,2,4" && await client.sum([1, 2, 3]) === 6n &&
      roots.join() === "3,4";
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#process.closeStdin();
    const { stderr } = await this.#process.finished();
    if (stderr.some((line) => line !== "")) console.error(stderr.join("\n"));
  }
}

/** The raw HTTP/2 canceller: 100 cancels a second and a `Sqrt` beside them, on one connection. */
async function rawCancels(seconds: number): Promise<boolean> {
  await using server = await SoakServer.start();
  const before = await server.memory();
  const started = performance.now();
  const { stdout, success } = await new Deno.Command("/usr/bin/python3", {
    args: [
      `${root}tests/fixtures/h2_peer.py`,
      "127.0.0.1",
      String(server.port),
      "cancel-rate",
      "100",
      String(seconds),
      "1",
    ],
    stderr: "inherit",
  }).output();
  const elapsed = (performance.now() - started) / 1000;
  const line = new TextDecoder().decode(stdout).trim();
  const after = await server.memory();
  const answers = await server.answers();
  const [, state, count, answered, sent] =
    line.match(/^(\S+(?: \d+)?) (\d+) sqrt (\d+)\/(\d+) open$/) ?? [];
  console.log(
    `cancels (raw HTTP/2 peer): ${
      count ?? "?"
    } Pow calls cancelled after their first value in ${elapsed.toFixed(0)} s ` +
      `(${(Number(count) / elapsed).toFixed(0)}/s); the connection ended ${
        state === "open" ? "open, no GOAWAY" : `as "${line}"`
      }; the Sqrt beside them got ${answered ?? "?"} of ${
        sent ?? "?"
      } answers; ` +
      `server RSS ${before.rss} -> ${after.rss} MiB (V8 heap used ${before.heapUsed} -> ${after.heapUsed}, external ${before.external} -> ${after.external}); answers afterwards ${
        answers ? "right" : "WRONG"
      }`,
  );
  return success && state === "open" && answers &&
    Number(answered) >= Number(sent) - 1;
}

async function cancels(seconds: number): Promise<boolean> {
  await using server = await SoakServer.start();
  const before = await server.memory();
  using client = createClient(`127.0.0.1:${server.port}`);
  const failures = new Map<string, number>();
  let calls = 0;
  let sqrtAnswers = 0;
  const end = performance.now() + seconds * 1000;
  // One long call on the same client: it must outlive every retired connection it started on.
  const numbers = (async function* () {
    for (let i = 1; performance.now() < end; i++) {
      yield i * i;
      await delay(1000);
    }
  })();
  const sqrt = (async () => {
    for await (const root of client.sqrt(numbers)) {
      sqrtAnswers++;
      if (root !== sqrtAnswers) throw new Error(`Sqrt answered ${root}`);
    }
  })();
  const pending = new Set<Promise<void>>();
  for (let next = performance.now(); performance.now() < end; next += 10) {
    const call = (async () => {
      try {
        for await (const _ of client.pow(1, { count: 1_000_000 })) break;
        calls++;
      } catch (error) {
        const key = String(error).slice(0, 120);
        failures.set(key, (failures.get(key) ?? 0) + 1);
      }
    })();
    pending.add(call);
    call.finally(() => pending.delete(call));
    await delay(Math.max(0, next + 10 - performance.now()));
  }
  await Promise.all(pending);
  let sqrtError = "";
  await sqrt.catch((error) => sqrtError = String(error));
  const failed = [...failures.values()].reduce((a, b) => a + b, 0);
  const after = await server.memory();
  console.log(
    `cancels: ${calls} Pow calls cancelled after their first value in ${seconds} s ` +
      `(${(calls / seconds).toFixed(0)}/s), ${failed} failed; ` +
      `the Sqrt beside them got ${sqrtAnswers} answers${
        sqrtError ? `, then ${sqrtError}` : ""
      }; server RSS ${before.rss} -> ${after.rss} MiB (V8 heap used ${before.heapUsed} -> ${after.heapUsed})`,
  );
  for (const [error, count] of failures) console.log(`  ${count} x ${error}`);
  return failed === 0 && sqrtError === "";
}

async function buildGoClient(): Promise<string> {
  const out = await Deno.makeTempDir();
  const build = await new Deno.Command("go", {
    args: ["build", "-o", `${out}/soakclient`, "soakclient"],
    env: {
      GOPATH: `${here}go:/usr/share/gocode`,
      GO111MODULE: "off",
      GOCACHE: `${out}/cache`,
    },
    cwd: root,
  }).output();
  if (!build.success) {
    throw new Error(new TextDecoder().decode(build.stderr));
  }
  return `${out}/soakclient`;
}

/** How long a mix stream may wait for one answer, and each mix call's deadline (Go durations). */
interface MixTimes {
  stall: string;
  deadline: string;
}

async function mix(
  runs: number,
  { stall, deadline }: MixTimes,
): Promise<boolean> {
  const binary = await buildGoClient();
  let ok = true;
  for (let run = 1; run <= runs; run++) {
    await using server = await SoakServer.start();
    const before = await server.rss();
    const result = await new Deno.Command(binary, {
      args: [
        "-address",
        `127.0.0.1:${server.port}`,
        "-duration",
        "45s",
        "-stall",
        stall,
        "-deadline",
        deadline,
      ],
    }).output();
    const after = await server.rss();
    const text = new TextDecoder().decode(result.stdout).trim();
    console.log(
      `mix run ${run}: ${
        text.split("\n").join("; ")
      }; RSS ${before} -> ${after} MiB`,
    );
    ok &&= result.success;
  }
  await Deno.remove(binary.replace(/\/soakclient$/, ""), { recursive: true });
  return ok;
}

/** One never-read case: how many connections, calls on each, and the window the peer claims. */
interface NeverReadCase {
  connections: number;
  streams: number;
  window: number;
}

const NEVER_READ_CASES: readonly NeverReadCase[] = [
  // The baseline: the same calls, held by HTTP/2 flow control (the protocol's default windows).
  { connections: 1, streams: 20, window: 65_535 },
  { connections: 1, streams: 100, window: 65_535 },
  // The issue's case, then more calls per connection, then more connections.
  { connections: 1, streams: 20, window: 2 ** 31 - 1 },
  { connections: 1, streams: 100, window: 2 ** 31 - 1 },
  { connections: 5, streams: 20, window: 2 ** 31 - 1 },
];

/** Runs one never-read case in a fresh server and prints its figures. */
async function neverReadCase(
  { connections, streams, window }: NeverReadCase,
  seconds: number,
): Promise<boolean> {
  await using server = await SoakServer.start();
  {
    // Warm the server up first, so its RSS before is that of a server that has served.
    using client = createClient(`127.0.0.1:${server.port}`);
    let count = 0;
    for await (const _ of client.pow(1, { count: 1_000_000 })) count++;
    if (count !== 1_000_000) throw new Error(`Warm-up got ${count} powers`);
  }
  const before = await server.memory();
  await using peer = DenoProcess.spawn([
    `${root}tests/fixtures/slow_reader.py`,
    "127.0.0.1",
    String(server.port),
    String(connections),
    String(streams),
    "1000000",
    String(window),
  ], { program: "/usr/bin/python3", stdin: true });
  await peer.waitForLine("stdout", /^started$/);
  await delay(seconds * 1000);
  const after = await server.memory();
  await peer.write("reset\n");
  await peer.closeStdin();
  await peer.finished(60_000);
  const answers = await server.answers();
  const growth = after.rss - before.rss;
  const perConnection = growth / connections;
  const change = (from: number, to: number): string =>
    `${to - from >= 0 ? "+" : ""}${(to - from).toFixed(1)}`;
  console.log(
    `never-read ${connections} connection(s) x ${streams} calls, window ${window}, ` +
      `${seconds} s: RSS ${before.rss} -> ${after.rss} MiB, ${
        change(0, growth)
      } = ` +
      `${change(0, perConnection)} MiB per connection (V8 heap used ` +
      `${change(before.heapUsed, after.heapUsed)}, V8 heap reserved ` +
      `${change(before.heapTotal, after.heapTotal)}, external ` +
      `${
        change(before.external, after.external)
      }); replies held by one connection ` +
      `at most ${after.peakConnectionKiB} KiB; answers afterwards ${
        answers ? "right" : "WRONG"
      }`,
  );
  // The target is in MB (10^6 bytes); the figures are in MiB.
  return answers && perConnection * 2 ** 20 <= 16e6;
}

async function neverRead(seconds: number): Promise<boolean> {
  let ok = true;
  for (const each of NEVER_READ_CASES) {
    ok = await neverReadCase(each, seconds) && ok;
  }
  return ok;
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    "cancel-seconds": { type: "string", default: "120" },
    canceller: { type: "string", default: "both" },
    "mix-runs": { type: "string", default: "3" },
    "never-read-seconds": { type: "string", default: "15" },
    "restart-runs": { type: "string", default: "3" },
    "down-seconds": { type: "string", default: "10" },
    stall: { type: "string", default: "10s" },
    deadline: { type: "string", default: "30s" },
  },
});
const chosen = positionals.length > 0
  ? positionals
  : ["never-read", "cancels", "mix"];
console.log(
  `soak on ${Deno.build.os}/${Deno.build.arch}, Deno ${Deno.version.deno}, ` +
    `${navigator.hardwareConcurrency} cores`,
);
let ok = true;
for (const name of chosen) {
  if (name === "cancels") {
    const seconds = Number(values["cancel-seconds"]);
    if (!["ours", "raw", "both"].includes(values.canceller)) {
      throw new Error(`Unknown canceller: ${values.canceller}`);
    }
    if (values.canceller !== "raw") ok = await cancels(seconds) && ok;
    if (values.canceller !== "ours") ok = await rawCancels(seconds) && ok;
  } else if (name === "mix") {
    const { stall, deadline } = values;
    ok = await mix(Number(values["mix-runs"]), { stall, deadline }) && ok;
  } else if (name === "never-read") {
    ok = await neverRead(Number(values["never-read-seconds"])) && ok;
  } else if (name === "restart") {
    ok = await restarts(
      Number(values["restart-runs"]),
      Number(values["down-seconds"]),
    ) && ok;
  } else throw new Error(`Unknown soak run: ${name}`);
}
Deno.exit(ok ? 0 : 1);
