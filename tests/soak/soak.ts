/**
 * `deno task soak`: long load runs against a server in its own process, printing figures.
 *
 * - cancels: one client cancels `Pow` calls after their first value, 100 a second, beside one
 *   long `Sqrt` call on the same client; every call must succeed or end as cancelled.
 * - mix: a grpc-go client runs 1,000 concurrent calls of the three kinds over 10 connections
 *   for 45 s, three times, and counts the streams that stopped answering.
 * - never-read: a raw HTTP/2 peer advertises 2^31-1 windows, starts 20 `Pow(1, count
 *   1000000)` calls and reads nothing for 15 s; the server's RSS before and after.
 *
 * Usage: `deno task soak [cancels|mix|never-read ...] [--cancel-seconds N] [--mix-runs N]
 * [--stall 10s] [--deadline 30s]`; `--stall` is how long a mix stream may wait for one answer
 * before it counts as stalled, `--deadline` the deadline of each mix call.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createClient } from "../../mod.ts";

const here = new URL(".", import.meta.url).pathname;
const root = new URL("../../", import.meta.url).pathname;

/** A server in a child process; `rss()` asks it for its resident set size in MiB. */
class ServerProcess implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #lines: AsyncIterator<string>;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  port = 0;

  constructor() {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--v8-flags=--expose-gc",
        "--allow-net=127.0.0.1",
        "--allow-env",
        `${here}serve.ts`,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream())
      .pipeThrough(lineSplitter())[Symbol.asyncIterator]();
  }

  async start(): Promise<this> {
    this.port = Number((await this.#lines.next()).value);
    return this;
  }

  async rss(): Promise<number> {
    await this.#stdin.write(new TextEncoder().encode("\n"));
    return Number((await this.#lines.next()).value);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#stdin.close().catch(() => {});
    await this.#child.status;
  }
}

function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) controller.enqueue(line);
    },
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function cancels(seconds: number): Promise<boolean> {
  await using server = await new ServerProcess().start();
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
  console.log(
    `cancels: ${calls} Pow calls cancelled after their first value in ${seconds} s ` +
      `(${(calls / seconds).toFixed(0)}/s), ${failed} failed; ` +
      `the Sqrt beside them got ${sqrtAnswers} answers${
        sqrtError ? `, then ${sqrtError}` : ""
      }`,
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

async function mix(
  runs: number,
  stall: string,
  deadline: string,
): Promise<boolean> {
  const binary = await buildGoClient();
  let ok = true;
  for (let run = 1; run <= runs; run++) {
    await using server = await new ServerProcess().start();
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

async function neverRead(): Promise<boolean> {
  await using server = await new ServerProcess().start();
  {
    // Warm the server up first, so its RSS before is that of a server that has served.
    using client = createClient(`127.0.0.1:${server.port}`);
    let count = 0;
    for await (const _ of client.pow(1, { count: 1_000_000 })) count++;
    if (count !== 1_000_000) throw new Error(`Warm-up got ${count} powers`);
  }
  const before = await server.rss();
  const peer = new Deno.Command("/usr/bin/python3", {
    args: [
      `${root}tests/fixtures/h2_peer.py`,
      "127.0.0.1",
      String(server.port),
      "never-read",
      "20",
      "1000000",
    ],
    stdin: "piped",
    stdout: "null",
  }).spawn();
  await delay(15_000);
  const after = await server.rss();
  const writer = peer.stdin.getWriter();
  await writer.write(new TextEncoder().encode("\n"));
  await writer.close();
  await peer.status;
  const growth = after - before;
  console.log(
    `never-read: RSS ${before} -> ${after} MiB (+${
      growth.toFixed(1)
    } MiB) with 20 Pow(1, count 1000000) calls unread for 15 s (target: <= 16 MB)`,
  );
  return growth <= 16;
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    "cancel-seconds": { type: "string", default: "120" },
    "mix-runs": { type: "string", default: "3" },
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
    ok = await cancels(Number(values["cancel-seconds"])) && ok;
  } else if (name === "mix") {
    ok = await mix(
      Number(values["mix-runs"]),
      values.stall,
      values.deadline,
    ) && ok;
  } else if (name === "never-read") ok = await neverRead() && ok;
  else throw new Error(`Unknown soak run: ${name}`);
}
Deno.exit(ok ? 0 : 1);
