import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { createClient, startServer } from "../../mod.ts";
import { delay, recordingLogger } from "../_util/test_utils.ts";
import {
  RUN_PERMISSIONS,
  startServerProcess,
  unusedPort,
} from "../_util/subprocess.ts";
import { runLoad, startBackend } from "../_util/nginx.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

/** round_robin over every address, and a retry of calls that find a server gone. */
const SERVICE_CONFIG = JSON.stringify({
  loadBalancingConfig: [{ round_robin: {} }],
  methodConfig: [{
    name: [
      { service: "stream.ServerStream" },
      { service: "stream.ClientStream" },
      { service: "stream.BidirectionalStreamServer" },
    ],
    retryPolicy: {
      maxAttempts: 5,
      initialBackoff: "0.01s",
      maxBackoff: "0.2s",
      backoffMultiplier: 2,
      // grpc-js 1.14.7 ends a call whose write meets a dead connection (EPIPE) with INTERNAL.
      retryableStatusCodes: ["UNAVAILABLE", "INTERNAL"],
    },
  }],
});

/** How many Sum calls a server's log lines show it answered. */
function sums(lines: readonly string[]): number {
  return lines.filter((line) => line === "client closed").length;
}

Deno.test("createClient() over grpc-js spreads calls over three servers and survives losing one", async (t) => {
  const loggers = [recordingLogger(), recordingLogger()] as const;
  await using first = await startServer({ port: 0, logger: loggers[0] });
  await using second = await startServer({ port: 0, logger: loggers[1] });
  // The third runs in a process of its own, so that it can be killed outright.
  await using third = await startServerProcess([
    "run",
    ...RUN_PERMISSIONS,
    CLI,
    "serve",
    "--port",
    "0",
  ]);
  const addresses = [
    first.addresses[0]!,
    second.addresses[0]!,
    ...third.addresses,
  ];
  using client = createClient(`ipv4:${addresses.join(",")}`, {
    transport: "grpc-js",
    channelOptions: { "grpc.service_config": SERVICE_CONFIG },
  });

  function counts(): number[] {
    return [
      sums(loggers[0].lines),
      sums(loggers[1].lines),
      sums(third.process.stdout),
    ];
  }

  /** `calls` calls, `width` at a time, each checked; resolves with how many succeeded. */
  async function run(
    calls: number,
    { width, onCall }: {
      width: number;
      onCall: (index: number) => Promise<void> | void;
    },
  ): Promise<number> {
    let next = 0;
    let succeeded = 0;
    async function worker(): Promise<void> {
      while (next < calls) {
        const index = next++;
        await onCall(index);
        strictEqual(await client.sum([index, 1]), BigInt(index + 1));
        const powers = await Array.fromAsync(client.pow(2, { count: 3 }));
        strictEqual(powers.join(","), "1,2,4");
        succeeded += 1;
      }
    }
    await Promise.all(Array.from({ length: width }, worker));
    return succeeded;
  }

  await t.step("round_robin sends calls to every server", async () => {
    strictEqual(await run(30, { width: 1, onCall: () => {} }), 30);
    // The subprocess prints its lines a moment after it answers.
    await third.process.waitForLine("stdout", /^client closed$/);
    const seen = counts();
    strictEqual(
      seen.every((count) => count > 0),
      true,
      `Sum calls per server: ${seen}`,
    );
  });

  await t.step("a server closed mid-run fails no call", async () => {
    const before = counts();
    let closing: Promise<void> | undefined;
    const succeeded = await run(60, {
      width: 4,
      onCall: (index) => {
        if (index === 20) closing = first.close();
      },
    });
    await closing;
    strictEqual(succeeded, 60);
    const after = counts();
    strictEqual(
      after[1]! > before[1]! && after[2]! >= before[2]!,
      true,
      `Sum calls per server: ${before} then ${after}`,
    );
  });

  await t.step("a server killed mid-run fails no call", async () => {
    // One call at a time, killed between two: a call that has started answering cannot be
    // retried (gRPC commits it), so a kill in the middle of one fails it in any client.
    const before = counts();
    const succeeded = await run(60, {
      width: 1,
      onCall: async (index) => {
        if (index === 20) {
          third.process.kill("SIGKILL");
          await delay(0);
        }
      },
    });
    strictEqual(succeeded, 60);
    const after = counts();
    strictEqual(
      after[1]! - before[1]! >= 40,
      true,
      `Sum calls per server: ${before} then ${after}`,
    );
  });
});

Deno.test("createClient() over grpc-js loses no call while three servers restart in turn", async () => {
  // `serve` processes, stopped as in production: SIGTERM, a drain period, then a graceful
  // close; each is started again on its port before the next one stops.
  const ports = [unusedPort(), unusedPort(), unusedPort()];
  const backends = await Promise.all(ports.map((port) => startBackend(port)));
  try {
    using client = createClient(
      `ipv4:${ports.map((port) => `127.0.0.1:${port}`).join(",")}`,
      {
        transport: "grpc-js",
        channelOptions: { "grpc.service_config": SERVICE_CONFIG },
      },
    );
    const load = runLoad(client, { workers: 4 });
    try {
      for (let index = 0; index < backends.length; index++) {
        const before = load.calls;
        backends[index]!.kill("SIGTERM");
        strictEqual((await backends[index]!.finished()).code, 0);
        backends[index] = await startBackend(ports[index]!);
        // The restarted server is back in the rotation before the next one stops.
        await backends[index]!.waitForLine("stdout", /^client closed$/);
        ok(load.calls > before, "Calls went on during the restart");
      }
    } finally {
      await load.stop();
    }
    ok(load.calls > 0);
    deepStrictEqual(load.failures, []);
  } finally {
    await Promise.all(
      backends.map((backend) => backend[Symbol.asyncDispose]()),
    );
  }
});
