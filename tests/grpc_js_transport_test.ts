import { deepStrictEqual, strictEqual, throws } from "node:assert";
import * as grpc from "@grpc/grpc-js";
import { createClient, type GrpcError, startServer } from "../mod.ts";
import { DenoProcess, RUN_PERMISSIONS } from "./subprocess.ts";

Deno.test("createClient() takes grpc-js options only with the grpc-js transport", () => {
  throws(
    () => createClient("127.0.0.1:1", { transport: "h2" as "http2" }),
    TypeError,
  );
  for (
    const options of [
      { channelOptions: {} },
      { credentials: grpc.credentials.createInsecure() },
      { interceptors: [] },
    ]
  ) {
    throws(() => createClient("127.0.0.1:1", options), TypeError);
  }
  throws(
    () =>
      createClient("127.0.0.1:1", {
        transport: "grpc-js",
        tls: true,
        credentials: grpc.credentials.createSsl(),
      }),
    TypeError,
  );
  throws(
    () =>
      createClient("127.0.0.1:1", {
        transport: "grpc-js",
        interceptors: ["x"] as unknown as grpc.Interceptor[],
      }),
    TypeError,
  );
});

Deno.test("createClient() over grpc-js runs interceptors and passes channel options", async (t) => {
  await using server = await startServer({ port: 0 });
  const seen: string[] = [];
  const interceptor: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        seen.push(`start ${options.method_definition.path}`);
        next(metadata, {
          onReceiveMessage(message, nextMessage) {
            seen.push("message");
            nextMessage(message);
          },
        });
      },
    });

  await t.step("an interceptor sees every call and message", async () => {
    using client = createClient(server.addresses[0]!, {
      transport: "grpc-js",
      interceptors: [interceptor],
    });
    deepStrictEqual(await Array.fromAsync(client.pow(3, { count: 2 })), [
      1n,
      3n,
    ]);
    deepStrictEqual(seen, [
      "start /stream.ServerStream/Pow",
      "message",
      "message",
    ]);
  });

  await t.step("grpc.max_receive_message_length applies", async () => {
    using client = createClient(server.addresses[0]!, {
      transport: "grpc-js",
      channelOptions: { "grpc.max_receive_message_length": 4 },
    });
    let failure: unknown;
    try {
      await Array.fromAsync(client.pow(2n ** 40n, { count: 2 }));
    } catch (error) {
      failure = error;
    }
    strictEqual((failure as GrpcError).codeName, "RESOURCE_EXHAUSTED");
  });
});

Deno.test("createClient() over grpc-js survives a server that shuts down while the connection idles", async () => {
  // grpc-js closes its session from its own goaway listener, and Deno closes it again: both
  // must wait until nghttp2 is done with the frame (denoland/deno#36788). MALLOC_PERTURB_
  // made an unguarded grpc-js client crash on every run.
  const server = await startServer({ port: 0 });
  let serverClosed = false;
  try {
    await using client = DenoProcess.spawn([
      "run",
      ...RUN_PERMISSIONS,
      // grpc-js reads the proxy variables when it creates a channel.
      "--allow-env=grpc_proxy,https_proxy,http_proxy,no_grpc_proxy,no_proxy",
      new URL("./fixtures/idle_client.ts", import.meta.url).pathname,
      server.addresses[0]!,
      "grpc-js",
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
