/**
 * What the tests share: a logger that records a server's lines and waits for one.
 *
 * @module
 */
import { deepStrictEqual, strictEqual } from "node:assert";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import {
  createClient,
  GrpcError,
  type ServerLogger,
  type StreamServer,
} from "../../mod.ts";
import {
  GOAWAY_GUARD_OPTION,
  guardGrpcJsSessions,
} from "../../internals/grpc_js_subchannel_connector.ts";
import {
  streamServices,
  type SumReply,
  type SumRequest,
} from "../../proto/definitions.ts";

/** A logger that keeps every line, for tests to read and wait on. */
export interface RecordingLogger extends ServerLogger {
  /** Every line so far, warnings prefixed with `warn: ` and errors with `error: `. */
  readonly lines: string[];
  /**
   * Resolves with the first line that matches, waiting for it if needed.
   *
   * @param pattern What the line must match.
   * @param limitMs How long to wait before rejecting.
   */
  waitFor(pattern: RegExp, limitMs?: number): Promise<string>;
}

/** Creates a {@linkcode RecordingLogger}. */
export function recordingLogger(): RecordingLogger {
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve(line: string): void }[] = [];
  function record(line: string): void {
    lines.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  }
  return {
    lines,
    info: record,
    warn: (line) => record(`warn: ${line}`),
    error: (line) => record(`error: ${line}`),
    waitFor(pattern: RegExp, limitMs = 5_000): Promise<string> {
      const seen = lines.find((line) => pattern.test(line));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(
            new Error(
              `No log line matched ${pattern} in ${limitMs} ms: ${
                lines.join(" | ")
              }`,
            ),
          );
        }, limitMs);
        const waiter = {
          pattern,
          resolve(line: string): void {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.push(waiter);
      });
    },
  };
}

/**
 * Checks that every kind of call answers correctly, over a client of its own that is closed
 * before it returns.
 *
 * @param server The server to call.
 */
export async function assertServes(server: StreamServer): Promise<void> {
  using client = createClient(server.addresses[0]!);
  deepStrictEqual(await Array.fromAsync(client.pow(2, { count: 3 })), [
    1n,
    2n,
    4n,
  ]);
  strictEqual(await client.sum([1, 2, 3]), 6n);
  deepStrictEqual(await Array.fromAsync(client.sqrt([9, 16])), [3, 4]);
}

/**
 * Waits for a call that must fail with a gRPC status.
 *
 * @returns The call's `GrpcError`.
 * @throws {Error} If the call succeeds or fails with another error.
 */
export async function failure(promise: Promise<unknown>): Promise<GrpcError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GrpcError) return error;
    throw error;
  }
  throw new Error("The call did not fail");
}

/** A promise that never settles and holds no timer, for sources that must stall. */
export function forever(): Promise<never> {
  return new Promise<never>(() => {});
}

/** Resolves after `ms` milliseconds: `node:timers/promises`' `setTimeout`, by its usual name. */
export { setTimeout as delay } from "node:timers/promises";

/**
 * The numbers 0 … count-1, one at a time.
 *
 * @param count How many.
 * @returns A generator of them.
 */
export function* numbersUpTo(count: number): Generator<number> {
  for (let number = 0; number < count; number++) yield number;
}

/** What {@linkcode grpcJsSumServer}'s `answer` learns of a call. */
export interface SumCall {
  /** The call's metadata. */
  metadata: grpc.Metadata;
  /** The sum of the numbers it sent. */
  total: bigint;
}

/**
 * A plain grpc-js server, not yet bound, whose Sum reads every request and then answers with
 * what `answer` makes of the call: a sum, or a status to fail with.
 *
 * @param answer The reply to a call.
 * @returns The server, for `listenOnFreePort` or a `bindAsync` of the test's own.
 */
export function grpcJsSumServer(
  answer: (call: SumCall) => bigint | Partial<grpc.StatusObject>,
): grpc.Server {
  const server = new grpc.Server();
  server.addService(streamServices.clientStream, {
    Sum(
      call: grpc.ServerReadableStream<SumRequest, SumReply>,
      callback: grpc.sendUnaryData<SumReply>,
    ): void {
      let total = 0n;
      call.on("data", (request: SumRequest) => total += request.number);
      call.on("end", () => {
        const reply = answer({ metadata: call.metadata, total });
        if (typeof reply === "bigint") callback(null, { sum: reply });
        else callback(reply);
      });
    },
  });
  return server;
}

/** A plain grpc-js server on a free port of 127.0.0.1, closed by `await using`. */
export interface GrpcJsServer extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  readonly address: string;
}

/**
 * Binds a grpc-js server the test has set up (services added) to a free port.
 *
 * @param server The server, with its services added.
 * @returns Its address, and disposal that shuts it down.
 */
export async function listenOnFreePort(
  server: grpc.Server,
): Promise<GrpcJsServer> {
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (error, port) => {
        if (error) reject(error);
        else resolve(port);
      },
    );
  });
  return {
    address: `127.0.0.1:${port}`,
    [Symbol.asyncDispose]: () =>
      new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

/**
 * A plain grpc-js client for `address`, with the module's guard on its HTTP/2 sessions: under
 * Deno 2.9.6 a grpc-js client that receives a GOAWAY (a server shutting down) can abort the
 * whole process (denoland/deno#36788), and the tests' own process hosts the server too.
 *
 * @param address `host:port` of the server.
 * @returns The client; close it when done.
 */
export function guardedGrpcJsClient(address: string): grpc.Client {
  guardGrpcJsSessions();
  return new grpc.Client(address, grpc.credentials.createInsecure(), {
    [GOAWAY_GUARD_OPTION]: 1,
  });
}

/**
 * The whole server's health, as `grpc.health.v1.Health/Check` answers it through a raw
 * grpc-js client: `HealthCheckResponse.status`, 1 SERVING, 2 NOT_SERVING.
 */
export function healthStatus(raw: grpc.Client): Promise<number> {
  return new Promise((resolve, reject) => {
    raw.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (request: Uint8Array) => Buffer.from(request),
      (reply: Buffer) => reply,
      new Uint8Array(), // HealthCheckRequest for the whole server
      (error: grpc.ServiceError | null, reply?: Buffer) => {
        // HealthCheckResponse.status is field 1, a varint.
        if (error) reject(error);
        else resolve(reply![0] === 0x08 ? reply![1]! : 0);
      },
    );
  });
}
