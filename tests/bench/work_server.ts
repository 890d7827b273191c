/**
 * A grpc-js server for the "what streaming saves" benchmark: the unary `stream.Single/Sqrt`
 * and the bidirectional `stream.BidirectionalStreamServer/Sqrt`, each spending a simulated
 * `--work` milliseconds on every number before answering it, on a free port of 127.0.0.1,
 * serving until its stdin ends.
 *
 * The work is a busy wait on `performance.now()`, like a computation: a timer would not do,
 * because Deno's `setTimeout(fn, 1)` takes about 2.3 ms on average. The numbers of a stream
 * are worked on one after another, so its answers stay in order. With `--work 0` the numbers
 * are answered at once.
 *
 * Run: `deno run --allow-net=127.0.0.1 --allow-env=GRPC_* tests/bench/work_server.ts
 * --work 1`
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { parseArgs } from "node:util";
import {
  type SqrtReply,
  type SqrtRequest,
  streamServices,
} from "../../proto/definitions.ts";
import { announcePort, stdinClosed } from "./common.ts";

function work(milliseconds: number): void {
  const end = performance.now() + milliseconds;
  while (performance.now() < end) {
    // Working.
  }
}

function createWorkHandlers(workMs: number): {
  single: grpc.UntypedServiceImplementation;
  bidirectional: grpc.UntypedServiceImplementation;
} {
  function unarySqrt(
    call: grpc.ServerUnaryCall<SqrtRequest, SqrtReply>,
    callback: grpc.sendUnaryData<SqrtReply>,
  ): void {
    work(workMs);
    callback(null, { sqrt: Math.sqrt(call.request.number) });
  }

  function streamingSqrt(
    call: grpc.ServerDuplexStream<SqrtRequest, SqrtReply>,
  ): void {
    call.on("data", (request: SqrtRequest) => {
      work(workMs);
      call.write({ sqrt: Math.sqrt(request.number) });
    });
    call.on("end", () => call.end());
  }

  return {
    single: { Sqrt: unarySqrt },
    bidirectional: { Sqrt: streamingSqrt },
  };
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

const { values } = parseArgs({
  args: Deno.args,
  options: { work: { type: "string", default: "1" } },
});
const workMs = Number(values.work);
if (!Number.isFinite(workMs) || workMs < 0) {
  throw new RangeError(`Work must be a number of ms >= 0: ${values.work}`);
}
const handlers = createWorkHandlers(workMs);
const server = new grpc.Server();
server.addService(streamServices.single, handlers.single);
server.addService(streamServices.bidirectionalStream, handlers.bidirectional);
try {
  announcePort(await bind(server));
  await stdinClosed();
} finally {
  server.forceShutdown();
}
