import { deepStrictEqual, rejects, strictEqual } from "node:assert";
import * as grpc from "@grpc/grpc-js";
import { createClient, GrpcError } from "../mod.ts";
import { streamServices } from "../proto/definitions.ts";
import { createHandlers } from "../services/handlers.ts";
import { POWERS_OF_TWO } from "./article_lines.ts";
import { type GrpcJsServer, listenOnFreePort } from "./test_utils.ts";

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
