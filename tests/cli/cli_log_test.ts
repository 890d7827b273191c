import { deepStrictEqual, match, ok, rejects, strictEqual } from "node:assert";
import { createClient, GrpcError } from "../../mod.ts";
import {
  CLI,
  RUN_PERMISSIONS,
  runDeno,
  startCliServer,
} from "../_util/subprocess.ts";

/** The numbers 0 … count-1. */
function upTo(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index);
}

Deno.test("cli serve --log chooses what the server prints", async (t) => {
  await t.step(
    "messages (the default) prints every number, none lost or reordered",
    async () => {
      await using server = await startCliServer(["--port", "0"]);
      using client = createClient(server.addresses[0]!);
      const count = 20_000;
      strictEqual(
        await client.sum(upTo(count)),
        BigInt(count * (count - 1) / 2),
      );
      await server.process.waitForLine("stdout", /^client closed$/);
      deepStrictEqual(
        server.process.stdout.filter((line) => line.startsWith("Recved ")),
        upTo(count).map((number) => `Recved ${number}`),
      );
      deepStrictEqual(await Array.fromAsync(client.sqrt([4, 9])), [2, 3]);
      await server.process.waitForLine("stdout", /^Recv Data:9$/);
      const last = server.process.stdout.slice(-3);
      deepStrictEqual(last, ["client closed", "Recv Data:4", "Recv Data:9"]);
    },
  );

  await t.step(
    "calls prints where each call starts and how it ends, not messages",
    async () => {
      await using server = await startCliServer([
        "--port",
        "0",
        "--log",
        "calls",
      ]);
      using client = createClient(server.addresses[0]!);
      strictEqual(await client.sum([1, 2, 3]), 6n);
      strictEqual((await Array.fromAsync(client.pow(2))).length, 10);
      deepStrictEqual(await Array.fromAsync(client.sqrt([4, 9])), [2, 3]);
      await server.process.waitForLine("stdout", /^Sqrt completed/);
      const peer = /^Sum called by (127\.0\.0\.1:\d+)$/.exec(
        server.process.stdout[1] ?? "",
      )?.[1];
      ok(peer !== undefined, server.process.stdout.join("\n"));
      deepStrictEqual(server.process.stdout.slice(1), [
        `Sum called by ${peer}`,
        "client closed",
        "Sum completed: 6",
        `Pow called by ${peer}`,
        "Recv Client Data 2",
        "Pow(2) completed: 10 powers",
        `Sqrt called by ${peer}`,
        "Sqrt completed after 2 numbers",
      ]);
    },
  );

  await t.step("none prints nothing about calls", async () => {
    await using server = await startCliServer(["--port", "0", "--log", "none"]);
    using client = createClient(server.addresses[0]!);
    strictEqual(await client.sum([1, 2, 3]), 6n);
    await rejects(
      Array.fromAsync(client.sqrt([1, -1])),
      (error) =>
        error instanceof GrpcError && error.codeName === "INVALID_ARGUMENT",
    );
    server.process.kill("SIGTERM");
    const finished = await server.process.finished();
    strictEqual(finished.code, 0);
    deepStrictEqual(finished.stdout.slice(1), []);
    deepStrictEqual(finished.stderr, [
      "Received SIGTERM: letting calls in flight finish for up to 5000 ms",
      "Server stopped",
    ]);
  });

  await t.step("anything else is a usage error", async () => {
    const result = await runDeno([
      "run",
      ...RUN_PERMISSIONS,
      CLI,
      "serve",
      "--port",
      "0",
      "--log",
      "everything",
    ]);
    strictEqual(result.code, 2);
    match(result.stderr[0]!, /^error: Log must be messages, calls or none: /);
    match(result.stderr[1]!, /^Usage: grpc-stream serve /);
  });
});

Deno.test("cli serve goes on serving when the reader of its output goes away", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...RUN_PERMISSIONS, CLI, "serve", "--port", "0"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  try {
    // Read up to the first line, as `serve | head -1` does, then close the pipe.
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    await reader.cancel();
    const address = /^Serving gRPC on (\S+)$/m.exec(text)?.[1];
    ok(address !== undefined, text);
    using client = createClient(address);
    // Enough lines to fill a pipe's buffer many times over once nobody reads it.
    for (let round = 0; round < 3; round++) {
      strictEqual(await client.sum(upTo(20_000)), 199_990_000n);
    }
    deepStrictEqual(await Array.fromAsync(client.sqrt([16])), [4]);
  } finally {
    child.kill("SIGTERM");
  }
  const status = await child.status;
  strictEqual(status.code, 0, await stderr);
  match(await stderr, /Server stopped\n$/);
});
