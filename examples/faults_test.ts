/**
 * How a Deno project tests its code against a server that misbehaves on request
 * (docs/faults.md): a `Sum` that fails half-way, a slow `Pow`, a connection that drops, a
 * service that fails one call in two, each from a rule given to `startServer({ faults })` or
 * swapped in with `server.setFaults`. The sanitizers stay on.
 *
 * In your project: `deno add jsr:@streamrpc/grpc-stream`, copy this file, and run
 *
 * ```sh
 * deno test --allow-net=127.0.0.1 --allow-env=GRPC_*
 * ```
 *
 * @module
 */
import {
  createClient,
  GrpcError,
  type ServerLogger,
  startServer,
  Status,
} from "@streamrpc/grpc-stream";
import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert";

/** A server logger that keeps its lines, to see from the server's side what happened. */
function keptLines(): ServerLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (line) => lines.push(line),
    warn: (line) => lines.push(line),
    error: (line) => lines.push(line),
  };
}

/** Numbers 1 … `count`, written as a client that takes its time would. */
async function* slowly(count: number): AsyncGenerator<number> {
  for (let number = 1; number <= count; number++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    yield number;
  }
}

/** A request stream that stays open until `closed` settles. */
async function* heldOpen(closed: Promise<unknown>): AsyncGenerator<number> {
  yield 4;
  await closed;
}

Deno.test("faults on request: each effect as a client sees it", async (t) => {
  const logger = keptLines();
  await using server = await startServer({
    port: 0,
    logger,
    faults: [{ method: "Sum", after: 3, status: Status.UNAVAILABLE }],
  });
  using client = createClient(server.addresses[0]!);

  await t.step(
    "sum() rejects UNAVAILABLE after exactly 3 numbers were read",
    async () => {
      await rejects(client.sum(slowly(10)), (error: unknown) => {
        ok(error instanceof GrpcError);
        strictEqual(error.code, Status.UNAVAILABLE);
        strictEqual(error.details, "Fault injected by the server");
        return true;
      });
      // The server's own account: it read exactly three numbers, then the fault hit.
      deepStrictEqual(
        logger.lines.filter((line) => line.startsWith("Recved ")),
        ["Recved 1", "Recved 2", "Recved 3"],
      );
      deepStrictEqual(
        logger.lines.filter((line) => line.startsWith("Fault injected")),
        [
          "Fault injected into Sum: rule 1 (Sum:after=3:status=UNAVAILABLE) after 3 requests: status UNAVAILABLE",
        ],
      );
    },
  );

  await t.step("pow() replies arrive no sooner than the delay", async () => {
    server.setFaults([{ method: "Pow", delay: 50 }]);
    const started = performance.now();
    const arrivals: number[] = [];
    for await (const _ of client.pow(2, { count: 4 })) {
      arrivals.push(performance.now() - started);
    }
    strictEqual(arrivals.length, 4);
    // Each reply waits its own delay: the n-th comes no sooner than n delays. (A lower
    // bound only: a busy machine may be slower, never faster.)
    arrivals.forEach((at, index) => ok(at >= 50 * (index + 1) - 1, `${at}`));
  });

  await t.step("drop: stream ends only that call, INTERNAL", async () => {
    server.setFaults([{ method: "Sqrt", after: 1, drop: "stream" }]);
    const roots: number[] = [];
    await rejects(
      (async () => {
        for await (const root of client.sqrt(slowly(5))) roots.push(root);
      })(),
      (error: unknown) =>
        error instanceof GrpcError && error.code === Status.INTERNAL,
    );
    deepStrictEqual(roots, [1]);
    server.setFaults([]);
    // The connection stayed up: the next call goes through.
    strictEqual(await client.sum([1, 2]), 3n);
  });

  await t.step(
    "drop: connection fails every call on it, and the next call reconnects",
    async () => {
      server.setFaults([{ method: "Pow", after: 2, drop: "connection" }]);
      let release!: () => void;
      const released = new Promise<void>((resolve) => release = resolve);
      // A bystander on the same connection, mid-stream when the connection goes.
      const bystander = client.sqrt(heldOpen(released))[Symbol.asyncIterator]();
      deepStrictEqual(await bystander.next(), { done: false, value: 2 });
      const powers: bigint[] = [];
      await rejects(
        (async () => {
          for await (const power of client.pow(2)) powers.push(power);
        })(),
        (error: unknown) =>
          error instanceof GrpcError && error.code === Status.UNAVAILABLE,
      );
      deepStrictEqual(powers, [1n, 2n]);
      await rejects(
        bystander.next(),
        (error: unknown) =>
          error instanceof GrpcError && error.code === Status.UNAVAILABLE,
      );
      release();
      server.setFaults([]);
      strictEqual(await client.sum([1, 2, 3]), 6n);
    },
  );
});

Deno.test("faults on request: a ratio with a fixed seed hits the same calls twice", async () => {
  async function hits(): Promise<boolean[]> {
    await using server = await startServer({
      port: 0,
      faultSeed: 2024,
      faults: [{ method: "Sum", ratio: 0.5, status: Status.UNAVAILABLE }],
    });
    using client = createClient(server.addresses[0]!);
    const hit: boolean[] = [];
    // One call after the other: the n-th call to start is the n-th draw.
    for (let call = 0; call < 200; call++) {
      try {
        await client.sum([call]);
        hit.push(false);
      } catch (error) {
        if (!(error instanceof GrpcError)) throw error;
        strictEqual(error.code, Status.UNAVAILABLE);
        hit.push(true);
      }
    }
    return hit;
  }
  const first = await hits();
  const second = await hits();
  deepStrictEqual(second, first);
  const count = first.filter(Boolean).length;
  // Half of them, near enough: neither none nor all.
  ok(count > 60 && count < 140, `${count} of 200 hit`);
});
