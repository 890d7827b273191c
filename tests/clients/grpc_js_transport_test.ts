import { deepStrictEqual, strictEqual, throws } from "node:assert";
import * as grpc from "@grpc/grpc-js";
import { createClient, type GrpcError, startServer } from "../../mod.ts";
import { Buffer } from "node:buffer";
import { testCertificates } from "../_util/certificates.ts";
import { DenoProcess } from "../_util/subprocess.ts";
import { grpcJsSumServer } from "../_util/test_utils.ts";

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
      // deno-lint-ignore grpc-stream/max-required-params -- grpc-js's Requester.start signature
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

Deno.test("createClient() over grpc-js dials a unix: target", async () => {
  const directory = await Deno.makeTempDir();
  try {
    await using program = DenoProcess.spawn([
      "run",
      "--allow-net",
      `--allow-read=${directory}`,
      `--allow-write=${directory}`,
      "--allow-env",
      new URL("../fixtures/unix_target.ts", import.meta.url).pathname,
      `${directory}/grpc.sock`,
    ]);
    const finished = await program.finished();
    strictEqual(finished.code, 0, finished.stderr.join("\n"));
    deepStrictEqual(finished.stdout, ["sum 42"]);
  } finally {
    await Deno.remove(directory, { recursive: true });
  }
});

Deno.test("createClient() over grpc-js speaks TLS and sends call credentials", async (t) => {
  const certificates = await testCertificates();
  await t.step("tls with the CA, by host name", async () => {
    await using server = await startServer({
      port: 0,
      tls: { cert: certificates.serverCert, key: certificates.serverKey },
    });
    using client = createClient(`localhost:${server.port}`, {
      transport: "grpc-js",
      tls: { ca: certificates.ca },
    });
    strictEqual(await client.sum([20, 22]), 42n);
  });

  await t.step(
    "credentials with call credentials reach the server",
    async () => {
      // A grpc-js server whose Sum answers with the length of the authorization it received.
      const server = grpcJsSumServer(({ metadata }) =>
        metadata.get("authorization")[0] === "Bearer token" ? 1n : -1n
      );
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(
          "127.0.0.1:0",
          // An empty CA list, as startServer passes: see docs/tls.md, "Why TLS failed against a
          // grpc-js server under Deno".
          grpc.ServerCredentials.createSsl(Buffer.alloc(0), [{
            private_key: Buffer.from(certificates.serverKey),
            cert_chain: Buffer.from(certificates.serverCert),
          }]),
          (error, port) => error ? reject(error) : resolve(port),
        )
      );
      try {
        const callCredentials = grpc.credentials.createFromMetadataGenerator(
          (_options, callback) => {
            const metadata = new grpc.Metadata();
            metadata.set("authorization", "Bearer token");
            callback(null, metadata);
          },
        );
        using client = createClient(`localhost:${port}`, {
          transport: "grpc-js",
          credentials: grpc.credentials.combineChannelCredentials(
            grpc.credentials.createSsl(Buffer.from(certificates.ca)),
            callCredentials,
          ),
        });
        strictEqual(await client.sum([5]), 1n);
      } finally {
        await new Promise<void>((resolve) =>
          server.tryShutdown(() => resolve())
        );
      }
    },
  );
});
