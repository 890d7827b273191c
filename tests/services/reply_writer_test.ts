import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert";
import * as grpc from "@grpc/grpc-js";
import { createClient, GrpcError, startServer } from "../../mod.ts";
import type { StreamServer } from "../../mod.ts";
import { streamServices } from "../../proto/definitions.ts";
import { createHandlers } from "../../services/handlers.ts";
import { CONNECTION_BUFFER_LIMIT } from "../../services/reply_budget.ts";
import { probeServer, type ServerProbe } from "../../services/_testing.ts";
import { POWERS_OF_TWO } from "../_util/article_lines.ts";
import { fastPathsSwitchedOff } from "../_util/fast_paths_switch.ts";
import {
  assertServes,
  delay,
  type GrpcJsServer,
  listenOnFreePort,
  numbersUpTo,
} from "../_util/test_utils.ts";

const SLOW_READER = new URL("../fixtures/slow_reader.py", import.meta.url)
  .pathname;

/**
 * A grpc-js server whose calls reach the handlers through an interceptor, which hides the
 * HTTP/2 stream: the handlers must then fall back to one `call.write` per reply.
 */
async function startInterceptedServer(): Promise<GrpcJsServer> {
  function passThrough(
    _method: grpc.ServerMethodDefinition<unknown, unknown>,
    call: grpc.ServerInterceptingCallInterface,
  ): grpc.ServerInterceptingCall {
    return new grpc.ServerInterceptingCall(call);
  }
  const server = new grpc.Server({ interceptors: [passThrough] });
  const handlers = createHandlers({
    maxPowCount: 1_000_000,
    logger: undefined,
  });
  server.addService(streamServices.serverStream, handlers.serverStream);
  server.addService(
    streamServices.bidirectionalStream,
    handlers.bidirectionalStream,
  );
  return await listenOnFreePort(server);
}

Deno.test("createHandlers() answers the same when grpc-js does not expose the HTTP/2 stream", async (t) => {
  await using server = await startInterceptedServer();
  using client = createClient(server.address);

  await t.step(
    "pow() streams exact powers, then OUT_OF_RANGE after the last that fits",
    async () => {
      deepStrictEqual(
        (await Array.fromAsync(client.pow(2))).map(String),
        POWERS_OF_TWO,
      );
      const seen: bigint[] = [];
      await rejects(
        (async () => {
          for await (const power of client.pow(10, { count: 25 })) {
            seen.push(power);
          }
        })(),
        (error) =>
          error instanceof GrpcError && error.codeName === "OUT_OF_RANGE",
      );
      strictEqual(seen.length, 19);
    },
  );

  await t.step(
    "a long pow() honours flow control and arrives whole",
    async () => {
      let count = 0;
      for await (const power of client.pow(1, { count: 50_000 })) {
        strictEqual(power, 1n);
        count++;
      }
      strictEqual(count, 50_000);
    },
  );

  await t.step("sqrt() answers in order, then INVALID_ARGUMENT", async () => {
    const roots: number[] = [];
    await rejects(
      (async () => {
        for await (const root of client.sqrt([4, 9, -1])) roots.push(root);
      })(),
      (error) =>
        error instanceof GrpcError && error.codeName === "INVALID_ARGUMENT",
    );
    deepStrictEqual(roots, [2, 3]);
  });
});

/** The raw HTTP/2 peer that starts Pow calls and reads nothing until told (python3-h2). */
class SlowReader implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #lines: AsyncIterator<string>;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;

  constructor(server: StreamServer, args: readonly number[]) {
    this.#child = new Deno.Command("/usr/bin/python3", {
      args: [
        SLOW_READER,
        server.hostname,
        String(server.port),
        ...args.map(String),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream())
      .pipeThrough(
        new TransformStream<string, string>({
          transform(chunk, controller) {
            for (const line of chunk.split("\n")) {
              if (line !== "") controller.enqueue(line);
            }
          },
        }),
      )[Symbol.asyncIterator]();
  }

  /** Sends one command (or none) and returns the next line the peer prints. */
  async next(command?: string): Promise<string> {
    if (command !== undefined) {
      await this.#stdin.write(new TextEncoder().encode(`${command}\n`));
    }
    const { value, done } = await this.#lines.next();
    if (done) throw new Error("The peer ended without a word");
    return value;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#stdin.close().catch(() => {});
    for (let line = await this.#lines.next(); !line.done;) {
      line = await this.#lines.next();
    }
    strictEqual((await this.#child.status).code, 0, "The peer failed");
  }
}

/**
 * Waits until every connection's socket is full (the kernel takes no more: its writers wait
 * for a peer that reads nothing) and what each holds has stopped changing, and returns it.
 * A socket that holds nothing is still taking replies. Bounded: 30 s at most.
 */
async function settledHeldBytes(
  { probe, connections }: { probe: ServerProbe; connections: number },
): Promise<number[]> {
  let last = "";
  let same = 0;
  for (let round = 0; round < 300; round++) {
    await delay(100);
    const held = probe.heldReplyBytes();
    const now = held.join();
    const full = held.length === connections &&
      held.every((bytes) => bytes > 0);
    same = full && now === last ? same + 1 : 0;
    last = now;
    if (same === 5) return held;
  }
  throw new Error(`The connections did not fill up: ${last}`);
}

Deno.test("startServer() holds a bounded amount of replies per connection for a peer that claims huge windows and reads nothing", async (t) => {
  const options = { port: 0 };
  const probe = probeServer(options);
  await using server = await startServer(options);
  // The connection's own bytes only: a byte over would be the HEADERS of the calls.
  const bound = CONNECTION_BUFFER_LIMIT + 16 * 1024;

  for (
    // Enough replies per connection to fill the kernel's send buffer (4 MiB at most with
    // Debian's tcp_wmem) and then the server's. With the fast paths off no bound is measured,
    // and grpc-js sends each 7-byte reply in a DATA frame of its own, which the Python peer
    // reads at about 30,000 a second: a tenth of the replies still shows them all delivered.
    const [connections, streams, count] of fastPathsSwitchedOff()
      ? [[1, 100, 3_000], [5, 20, 5_000]] as const
      : [[1, 100, 30_000], [5, 20, 50_000]] as const
  ) {
    await t.step(
      `${connections} connection(s) x ${streams} calls: ${
        fastPathsSwitchedOff()
          ? "no bound without the reply writer"
          : `at most ${bound} bytes each`
      }, then every call is answered whole`,
      async () => {
        probe.takePeakConnectionBytes();
        // 2^31-1: the largest window HTTP/2 allows, so flow control never stops the server.
        await using peer = new SlowReader(server, [
          connections,
          streams,
          count,
          2 ** 31 - 1,
        ]);
        strictEqual(await peer.next(), "started");
        if (fastPathsSwitchedOff()) {
          // With GRPC_STREAM_FAST_PATHS=off grpc-js writes every reply to Deno's stream,
          // whose writes do not wait for the socket: the per-connection bound is the reply
          // writer's, so none holds; the replies are still all delivered.
          strictEqual(probe.takePeakConnectionBytes(), 0);
        } else {
          const held = await settledHeldBytes({ probe, connections });
          const peak = probe.takePeakConnectionBytes();
          ok(
            peak <= bound,
            `A connection held ${peak} bytes of replies (now ${
              held.join(", ")
            }); the bound is ${bound}`,
          );
        }
        // The peer reads now: every call gets all its powers of 1 and grpc-status 0.
        strictEqual(
          await peer.next("read"),
          `read ${connections * streams} calls ${
            connections * streams * count
          } messages ${connections * streams * count * 7} bytes`,
        );
      },
    );
  }

  await t.step("the server still answers", () => assertServes(server));
});

Deno.test("startServer() gathers the answers to a request frame it cannot send yet without copying them once per answer", async (t) => {
  const options = { port: 0 };
  const probe = probeServer(options);
  await using server = await startServer(options);
  using client = createClient(server.addresses[0]!);
  const count = 100_000;
  // Our client sends a Sqrt's numbers in frames of up to 16 KiB, about 1,100 numbers each:
  // the server answers a whole frame at once, and while the reader does not read, those
  // answers wait in the call's chunk. Growing it to fit each answer would copy the chunk once
  // per answer, and every copy is a new buffer larger than 16 KiB.
  await t.step("every root arrives, in order", async () => {
    let position = 0;
    for await (const root of client.sqrt(numbersUpTo(count))) {
      strictEqual(root, Math.sqrt(position));
      position += 1;
      // Fall behind now and then, so the server's replies back up.
      if (position % 20_000 === 1) await delay(100);
    }
    strictEqual(position, count);
  });
  const growths = probe.largeChunkGrowths;
  await t.step(
    "the chunk grew a few times per frame, not once per answer",
    () => {
      if (fastPathsSwitchedOff()) {
        // With GRPC_STREAM_FAST_PATHS=off grpc-js writes each answer itself: the reply
        // writer's chunk is never made, so it cannot grow.
        strictEqual(growths, 0);
        return;
      }
      ok(
        growths > 0,
        "The replies never backed up, so the test proved nothing",
      );
      ok(
        growths < count / 1_000,
        `The reply chunk grew ${growths} times for ${count} answers`,
      );
    },
  );
  await t.step("the server still answers", () => assertServes(server));
});
