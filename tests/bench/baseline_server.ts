/**
 * The benchmark's baseline server: plain grpc-js handlers written the way the grpc-js examples
 * (grpc-node's route_guide) write them, on a free port of 127.0.0.1, serving until its stdin
 * ends.
 *
 * `Pow` writes every power in a `for` loop and ignores `write()`'s return value, `Sum` adds up
 * in a `data` listener, and `Sqrt` writes each answer from its `data` listener. This is what a
 * user would otherwise write, so it is what our server is measured against.
 *
 * Run: `deno run --allow-net=127.0.0.1 --allow-env=GRPC_* tests/bench/baseline_server.ts`
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { streamPackage } from "./baseline_definitions.ts";
import { announcePort, stdinClosed } from "./common.ts";

interface PowRequest {
  number: string;
  count: number;
}

function pow(call: grpc.ServerWritableStream<PowRequest, unknown>): void {
  const base = BigInt(call.request.number);
  const count = call.request.count || 10;
  let power = 1n;
  for (let i = 0; i < count; i++) {
    call.write({ number: power.toString() });
    power *= base;
  }
  call.end();
}

function sum(
  call: grpc.ServerReadableStream<{ number: string }, unknown>,
  callback: grpc.sendUnaryData<unknown>,
): void {
  let total = 0n;
  call.on("data", (request: { number: string }) => {
    total += BigInt(request.number);
  });
  call.on("end", () => {
    callback(null, { sum: total.toString() });
  });
}

function sqrt(
  call: grpc.ServerDuplexStream<{ number: number }, unknown>,
): void {
  call.on("data", (request: { number: number }) => {
    call.write({ sqrt: Math.sqrt(request.number) });
  });
  call.on("end", () => {
    call.end();
  });
}

function singleSqrt(
  call: grpc.ServerUnaryCall<{ number: number }, unknown>,
  callback: grpc.sendUnaryData<unknown>,
): void {
  callback(null, { sqrt: Math.sqrt(call.request.number) });
}

function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (error, port) => error ? reject(error) : resolve(port),
    );
  });
}

const server = new grpc.Server();
server.addService(streamPackage.ServerStream.service, { Pow: pow });
server.addService(streamPackage.ClientStream.service, { Sum: sum });
server.addService(streamPackage.BidirectionalStreamServer.service, {
  Sqrt: sqrt,
});
server.addService(streamPackage.Single.service, { Sqrt: singleSqrt });
try {
  announcePort(await bind(server));
  await stdinClosed();
} finally {
  server.forceShutdown();
}
