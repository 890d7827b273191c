/**
 * The article's bidirectional-streaming server (`bidirectional_stream_server.go`): answers
 * `stream.BidirectionalStreamServer/Sqrt` on 127.0.0.1:8083, logging `Recv Data:X` for each
 * number and sending its square root at once. Like every server of this module it also
 * answers `Pow` and `Sum`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env=GRPC_* examples/bidirectional_stream_server.ts [--port 8083]
 * ```
 *
 * It prints `Serving gRPC on 127.0.0.1:PORT` once it listens (`--port 0` picks a free port),
 * and on SIGINT (Ctrl-C) or SIGTERM lets calls in flight finish, then exits 0.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { startServer, type StreamServer } from "../mod.ts";

const USAGE = "Usage: bidirectional_stream_server.ts [--port PORT]";
const DEFAULT_PORT = 8083;

function parsePort(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: { port: { type: "string", default: String(DEFAULT_PORT) } },
  });
  const port = /^\d+$/.test(values.port) ? Number(values.port) : Number.NaN;
  if (!(port <= 65_535)) {
    throw new RangeError(
      `Port must be an integer from 0 to 65535: ${values.port}`,
    );
  }
  return port;
}

function waitForShutdownSignal(): Promise<void> {
  return new Promise((resolve) => {
    Deno.addSignalListener("SIGINT", resolve);
    if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", resolve);
  });
}

async function main(args: string[]): Promise<number> {
  let port: number;
  try {
    port = parsePort(args);
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    console.error(USAGE);
    return 2;
  }
  let server: StreamServer;
  try {
    // `console` prints what the Go server logs: info to stdout, failures to stderr.
    server = await startServer({ port, logger: console });
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    return 1;
  }
  console.log(`Serving gRPC on ${server.addresses[0]}`);
  await waitForShutdownSignal();
  await server.close();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
