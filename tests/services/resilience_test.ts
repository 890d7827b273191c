import { deepStrictEqual, rejects, strictEqual } from "node:assert";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import { encodePowRequest } from "../../proto/codec.ts";
import { createClient, GrpcError, startServer, Status } from "../../mod.ts";
import {
  delay,
  forever,
  guardedGrpcJsClient,
  recordingLogger,
} from "../_util/test_utils.ts";
import { DenoProcess, RUN_PERMISSIONS } from "../_util/subprocess.ts";
import { test } from "../_util/transports.ts";

const STALLED_CLIENT = new URL(
  "../fixtures/stalled_client.ts",
  import.meta.url,
);

async function waitForLine(
  stream: ReadableStream<Uint8Array>,
  line: string,
): Promise<void> {
  let seen = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    seen += chunk;
    if (seen.split("\n").includes(line)) return;
  }
  throw new Error(`Process ended without printing ${line}: ${seen}`);
}

Deno.test("startServer() keeps serving after a client process is killed mid-stream", async (t) => {
  const logger = recordingLogger();
  await using server = await startServer({ port: 0, logger });
  using client = createClient(server.addresses[0]!);
  const cancelled: Record<string, RegExp> = {
    pow: /^Pow\(1\) cancelled after \d+ of 1000000 powers$/,
    sum: /^Sum cancelled by the client$/,
    sqrt: /^Sqrt cancelled by the client after 1 numbers$/,
  };

  for (const method of ["pow", "sum", "sqrt"]) {
    await t.step(`killed during ${method}`, async () => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-net=127.0.0.1",
          "--allow-env=GRPC_*",
          STALLED_CLIENT.pathname,
          server.addresses[0]!,
          method,
        ],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      try {
        await waitForLine(child.stdout, "streaming");
        if (method === "sum") await logger.waitFor(/^Recved 7777$/);
      } finally {
        child.kill("SIGKILL");
        await child.status;
      }
      await logger.waitFor(cancelled[method]!);
      deepStrictEqual(await Array.fromAsync(client.pow(2, { count: 3 })), [
        1n,
        2n,
        4n,
      ]);
      strictEqual(await client.sum([1, 2, 3]), 6n);
      deepStrictEqual(await Array.fromAsync(client.sqrt([9])), [3]);
    });
  }
});

Deno.test("startServer() turns a failure inside a handler into INTERNAL on that call alone", async (t) => {
  const lines: string[] = [];
  let failing = false;
  await using server = await startServer({
    port: 0,
    logger: {
      info(line) {
        if (failing) throw new Error("Logger broke");
        lines.push(line);
      },
      warn: (line) => lines.push(line),
      error: (line) => lines.push(`error: ${line}`),
    },
  });
  using client = createClient(server.addresses[0]!);

  async function codeOf(call: Promise<unknown>): Promise<number | undefined> {
    try {
      await call;
    } catch (error) {
      if (error instanceof GrpcError) return error.code;
      throw error;
    }
    return undefined;
  }

  for (
    const [method, call] of [
      ["Pow", () => Array.fromAsync(client.pow(2))],
      ["Sum", () => client.sum([1, 2])],
      ["Sqrt", () => Array.fromAsync(client.sqrt([4]))],
    ] as const
  ) {
    await t.step(`${method}`, async () => {
      failing = true;
      strictEqual(await codeOf(call()), Status.INTERNAL);
      failing = false;
      strictEqual(
        lines.some((line) =>
          line.startsWith(`error: ${method} failed inside the server`)
        ),
        true,
        lines.join(" | "),
      );
      strictEqual(await codeOf(call()), undefined);
    });
  }
});

Deno.test("startServer() answers malformed, oversized and unknown calls with a status and goes on", async (t) => {
  await using server = await startServer({ port: 0 });
  const raw = guardedGrpcJsClient(server.addresses[0]!);
  using client = createClient(server.addresses[0]!);

  function unary(
    path: string,
    body: Buffer,
  ): Promise<grpc.ServiceError | undefined> {
    return new Promise((resolve) => {
      const call = raw.makeServerStreamRequest(
        path,
        (value: Buffer) => value,
        (value: Buffer) => value,
        body,
      );
      call.on("data", () => {});
      call.on("error", (error: grpc.ServiceError) => resolve(error));
      call.on("end", () => resolve(undefined));
    });
  }

  try {
    await t.step("an unknown method is UNIMPLEMENTED", async () => {
      const error = await unary(
        "/stream.ServerStream/Cube",
        Buffer.from([8, 2]),
      );
      strictEqual(error?.code, grpc.status.UNIMPLEMENTED);
    });

    await t.step("a message that is not protobuf is INTERNAL", async () => {
      const error = await unary(
        "/stream.ServerStream/Pow",
        Buffer.from([0xff, 0xff, 0xff]),
      );
      strictEqual(error?.code, grpc.status.INTERNAL);
    });

    await t.step(
      "a message over the receive limit is RESOURCE_EXHAUSTED",
      async () => {
        const error = await unary(
          "/stream.ServerStream/Pow",
          Buffer.alloc(5 * 1024 * 1024),
        );
        strictEqual(error?.code, grpc.status.RESOURCE_EXHAUSTED);
      },
    );

    await t.step("the server still answers", async () => {
      strictEqual(await client.sum([20, 22]), 42n);
    });
  } finally {
    raw.close();
  }
});

Deno.test("sum() rejects with UNAVAILABLE when no server listens", async () => {
  const server = await startServer({ port: 0 });
  const address = server.addresses[0]!;
  await server.close();
  using client = createClient(address);
  let failure: unknown;
  try {
    await client.sum([1]);
  } catch (error) {
    failure = error;
  }
  strictEqual((failure as GrpcError).codeName, "UNAVAILABLE", String(failure));
  strictEqual((failure as GrpcError).details.includes(address), true);
});

Deno.test("startServer() survives our client closing after a long stream", async () => {
  // Before the client stopped sending GOAWAY on close, this aborted the server's process
  // inside Deno's nghttp2 (denoland/deno#36788) nearly every time.
  await using server = DenoProcess.spawn([
    "run",
    ...RUN_PERMISSIONS,
    new URL("../../cli.ts", import.meta.url).pathname,
    "serve",
    "--port",
    "0",
  ]);
  const [, address] = await server.waitForLine(
    "stdout",
    /^Serving gRPC on (\S+)$/,
  );
  for (let round = 0; round < 3; round++) {
    const client = createClient(address!);
    let received = 0;
    for await (const _ of client.pow(1, { count: 5_000 })) received++;
    strictEqual(received, 5_000);
    client.close();
    await delay(300);
    strictEqual(server.exited, false, server.stderr.join("\n"));
  }
  using client = createClient(address!);
  strictEqual(await client.sum([1, 2, 3]), 6n);
  server.kill("SIGTERM");
  strictEqual((await server.finished()).code, 0);
});

/** Calls Pow(1, count) over a plain HTTP/2 session and closes it with a GOAWAY, as grpc-js does. */
async function powThenGoaway(address: string, count: number): Promise<number> {
  const session = http2.connect(`http://${address}`);
  session.on("error", () => {});
  const stream = session.request({
    ":method": "POST",
    ":path": "/stream.ServerStream/Pow",
    "content-type": "application/grpc",
    "te": "trailers",
  });
  const request = encodePowRequest({ number: 1n, count });
  const frame = new Uint8Array(5 + request.length);
  new DataView(frame.buffer).setUint32(1, request.length);
  frame.set(request, 5);
  stream.end(frame);
  let bytes = 0;
  const status = await new Promise<string>((resolve, reject) => {
    stream.on("data", (chunk: Uint8Array) => bytes += chunk.length);
    stream.on(
      "trailers",
      (trailers) => resolve(String(trailers["grpc-status"])),
    );
    stream.on("error", reject);
  });
  strictEqual(status, "0");
  await new Promise<void>((resolve) => session.close(() => resolve()));
  return bytes;
}

Deno.test("startServer() survives a client's GOAWAY after a long stream", async () => {
  // Deno 2.9.6 frees the nghttp2 session while nghttp2 still handles the GOAWAY
  // (denoland/deno#36788); MALLOC_PERTURB_ makes glibc scribble over freed memory, so an
  // unguarded server dies on the first round instead of only now and then.
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...RUN_PERMISSIONS,
      new URL("../../cli.ts", import.meta.url).pathname,
      "serve",
      "--port",
      "0",
    ],
    env: { MALLOC_PERTURB_: "165" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let seen = "";
    while (!/Serving gRPC on \S+\n/.test(seen)) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`Server ended before listening: ${seen}`);
      seen += value;
    }
    const address = seen.match(/Serving gRPC on (\S+)\n/)![1]!;
    for (const count of [1, 2_000, 2_000]) {
      strictEqual(await powThenGoaway(address, count), count * 7);
      await delay(200);
    }
    using client = createClient(address);
    strictEqual(await client.sum([20, 22]), 42n);
  } finally {
    const alive = await Promise.race([
      child.status.then(() => false),
      delay(0).then(() => true),
    ]);
    if (alive) child.kill("SIGTERM");
    await lines.cancel();
    const status = await child.status;
    strictEqual(
      status.code,
      0,
      `Server exited with ${status.code}: ${await stderr}`,
    );
  }
});

test("createClient() survives a server that shuts down while the connection idles", async (t) => {
  // The mirror of the server's case: the server's GOAWAY reaches the client's idle session
  // (denoland/deno#36788). Over grpc-js, grpc-js closes its session from its own goaway
  // listener and Deno closes it again: both must wait until nghttp2 is done with the frame.
  // MALLOC_PERTURB_ made an unguarded client crash on every run, over either transport.
  const server = await startServer({ port: 0 });
  let serverClosed = false;
  try {
    await using client = DenoProcess.spawn([
      "run",
      // grpc-js reads the proxy variables when it creates a channel. One --allow-env flag
      // holds them all: Deno 2.9.4 refuses a flag given twice, where 2.9.6 merges them.
      ...(t.transport === "grpc-js"
        ? [
          "--allow-net=127.0.0.1",
          "--allow-env=GRPC_*,grpc_proxy,https_proxy,http_proxy,no_grpc_proxy,no_proxy",
        ]
        : RUN_PERMISSIONS),
      new URL("../fixtures/idle_client.ts", import.meta.url).pathname,
      server.addresses[0]!,
      t.transport,
    ], { env: { MALLOC_PERTURB_: "165" } });
    await client.waitForLine("stdout", /^streamed 5000$/);
    await server.close();
    serverClosed = true;
    const finished = await client.finished();
    strictEqual(finished.code, 0, finished.stderr.join("\n"));
    deepStrictEqual(finished.stdout, ["streamed 5000", "survived"]);
  } finally {
    if (!serverClosed) await server.close();
  }
});

Deno.test("startServer() survives a logger that throws on any line", async (t) => {
  let breakOn: RegExp | undefined;
  function line(text: string): void {
    if (breakOn?.test(text)) throw new Error("Logger broke");
  }
  await using server = await startServer({
    port: 0,
    logger: { info: line, warn: line, error: line },
  });
  using client = createClient(server.addresses[0]!);

  async function answered(): Promise<void> {
    breakOn = undefined;
    strictEqual(await client.sum([1, 2]), 3n);
    deepStrictEqual(await Array.fromAsync(client.sqrt([9])), [3]);
  }

  await t.step("at the end of a Sum: INTERNAL on that call", async () => {
    breakOn = /^client closed$/;
    await rejects(
      client.sum([1]),
      (error) => (error as GrpcError).codeName === "INTERNAL",
    );
    await answered();
  });

  await t.step("on a refusal, and on the error line that follows", async () => {
    breakOn = /refused|failed inside/;
    await rejects(client.sum([2n ** 62n, 2n ** 62n]), GrpcError);
    await rejects(Array.fromAsync(client.sqrt([-1])), GrpcError);
    await answered();
  });

  await t.step("on the cancellation lines", async () => {
    breakOn = /cancelled/;
    const controller = new AbortController();
    async function* stalled(): AsyncGenerator<number> {
      yield 1;
      await forever();
    }
    const summing = client.sum(stalled(), { signal: controller.signal });
    const rooting = client.sqrt(stalled(), { signal: controller.signal });
    const first = await rooting.next();
    strictEqual(first.value, 1);
    controller.abort();
    await rejects(summing);
    await rejects(rooting.next());
    for await (const _ of client.pow(1, { count: 100_000 })) break;
    await delay(100);
    await answered();
  });
});
