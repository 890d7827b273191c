import { deepStrictEqual, rejects, strictEqual } from "node:assert";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { createClient, GrpcError, Status } from "../../mod.ts";
import {
  type GrpcJsServer,
  grpcJsSumServer,
  listenOnFreePort,
} from "../_util/test_utils.ts";
import { test } from "../_util/transports.ts";

/** A grpc-js server whose Sum answers with what the request's metadata says, to observe it. */
async function startEchoServer(): Promise<GrpcJsServer> {
  return await listenOnFreePort(grpcJsSumServer(({ metadata }) => {
    const id = metadata.get("x-request-id");
    const bytes = metadata.get("x-trace-bin")[0] as Buffer | undefined;
    if (id[0] === "fail") {
      const trailers = new grpc.Metadata();
      trailers.set("x-reason", "asked to fail");
      trailers.set("x-code-bin", Buffer.from([7, 8]));
      return {
        code: grpc.status.FAILED_PRECONDITION,
        details: "As asked",
        metadata: trailers,
      };
    }
    return BigInt(Number(id[0] ?? 0) * 1000 + (bytes?.[2] ?? 0));
  }));
}

test("createClient() sends metadata and reports trailers with a failure", async (t) => {
  await using server = await startEchoServer();
  using client = createClient(server.address, { transport: t.transport });

  await t.step("text and binary metadata reach the server", async () => {
    strictEqual(
      await client.sum([1], {
        metadata: {
          "X-Request-Id": "42",
          "x-trace-bin": new Uint8Array([1, 2, 3]),
        },
      }),
      42_003n,
    );
  });

  await t.step(
    "a failure is a GrpcError with code, name, details and trailers",
    async () => {
      let failure: unknown;
      try {
        await client.sum([1], { metadata: { "x-request-id": "fail" } });
      } catch (error) {
        failure = error;
      }
      if (!(failure instanceof GrpcError)) throw failure;
      strictEqual(failure.name, "GrpcError");
      strictEqual(failure.code, Status.FAILED_PRECONDITION);
      strictEqual(failure.codeName, "FAILED_PRECONDITION");
      strictEqual(failure.details, "As asked");
      strictEqual(failure.message, "FAILED_PRECONDITION: As asked");
      deepStrictEqual(failure.trailers["x-reason"], ["asked to fail"]);
      deepStrictEqual(failure.trailers["x-code-bin"], [new Uint8Array([7, 8])]);
    },
  );

  await t.step(
    "a method the server does not host is UNIMPLEMENTED",
    async () => {
      await rejects(
        Array.fromAsync(client.pow(2)),
        (error) =>
          error instanceof GrpcError && error.codeName === "UNIMPLEMENTED",
      );
    },
  );

  await t.step(
    "reserved, malformed or mistyped metadata is a TypeError",
    async () => {
      await rejects(
        client.sum([1], { metadata: { "grpc-timeout": "1S" } }),
        TypeError,
      );
      await rejects(
        client.sum([1], { metadata: { "bad key": "x" } }),
        TypeError,
      );
      await rejects(
        client.sum([1], { metadata: { "x-data-bin": "text" } }),
        TypeError,
      );
      await rejects(
        client.sum([1], { metadata: { "x-text": "line\nbreak" } }),
        TypeError,
      );
      // Connection-specific headers are forbidden in HTTP/2.
      for (
        const key of [
          "connection",
          "keep-alive",
          "transfer-encoding",
          "upgrade",
        ]
      ) {
        await rejects(
          client.sum([1], { metadata: { [key]: "x" } }),
          TypeError,
          key,
        );
      }
    },
  );
});

test("createClient() refuses addresses it cannot dial", (t) => {
  const grpcJs = t.transport === "grpc-js";
  for (
    const address of [
      "127.0.0.1",
      "127.0.0.1:99999",
      ...(grpcJs
        ? ["dns:", "ipv4:notanip:1", "ipv4:127.0.0.1:1,[::1]:2", "unix:"]
        : ["dns:///127.0.0.1:1"]),
      "",
      "a b:1",
    ]
  ) {
    let thrown: unknown;
    try {
      createClient(address, { transport: t.transport }).close();
    } catch (error) {
      thrown = error;
    }
    strictEqual(thrown instanceof TypeError, true, address);
  }
  for (
    const address of [
      "localhost:8082",
      "[::1]:8082",
      "example.com:443",
      ...(grpcJs
        ? [
          "dns:///localhost:8082",
          "ipv4:127.0.0.1:1,127.0.0.1:2",
          "ipv6:[::1]:1",
          "unix:/tmp/grpc-stream.sock",
        ]
        : []),
    ]
  ) {
    createClient(address, { transport: t.transport }).close();
  }
});

test("sum() keeps the cause of a connection failure", async (t) => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const address = `127.0.0.1:${listener.addr.port}`;
  listener.close();
  using client = createClient(address, { transport: t.transport });
  let failure: unknown;
  try {
    await client.sum([1]);
  } catch (error) {
    failure = error;
  }
  strictEqual((failure as GrpcError).codeName, "UNAVAILABLE");
  strictEqual(
    (failure as GrpcError).cause instanceof Error,
    true,
    String(failure),
  );
});

Deno.test("GrpcError() names codes and keeps its cause", () => {
  const cause = new Error("Underneath");
  const error = new GrpcError(Status.OUT_OF_RANGE, "Too big", { cause });
  strictEqual(error.message, "OUT_OF_RANGE: Too big");
  strictEqual(error.cause, cause);
  // A code from untyped code that gRPC does not know reads as UNKNOWN, code and name alike.
  const unknown = new GrpcError(99 as Status, "");
  strictEqual(unknown.codeName, "UNKNOWN");
  strictEqual(unknown.code, Status.UNKNOWN);
  strictEqual(error instanceof Error, true);
});
