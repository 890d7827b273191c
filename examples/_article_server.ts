/**
 * What the article's three servers share: under this module each one is the same server,
 * hosting all three services, on its own default port.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { listenForShutdown, startServer, type StreamServer } from "../mod.ts";

function parsePort(args: string[], defaultPort: number): number {
  const { values } = parseArgs({
    args,
    options: { port: { type: "string", default: String(defaultPort) } },
  });
  const port = /^\d+$/.test(values.port) ? Number(values.port) : Number.NaN;
  if (!(port <= 65_535)) {
    throw new RangeError(
      `Port must be an integer from 0 to 65535: ${values.port}`,
    );
  }
  return port;
}

/**
 * Runs one of the article's servers: listens on `--port` (default `defaultPort`), prints the
 * article's log lines, and closes gracefully on SIGINT or SIGTERM.
 *
 * @param program The program's file name, for its usage line.
 * @param defaultPort The article's port for this server.
 * @returns The exit status: 0 after a graceful close, 1 if it cannot listen, 2 on bad usage.
 */
export async function runArticleServer(
  program: string,
  defaultPort: number,
): Promise<number> {
  const args = Deno.args;
  const usage = `Usage: ${program} [--port PORT]`;
  let port: number;
  try {
    port = parsePort(args, defaultPort);
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    console.error(usage);
    return 2;
  }
  // Listening before binding lets a signal that arrives meanwhile still close gracefully.
  using shutdown = listenForShutdown();
  let server: StreamServer;
  try {
    // `console` prints what the Go server logs: info to stdout, failures to stderr.
    server = await startServer({ port, logger: console });
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    return 1;
  }
  console.log(`Serving gRPC on ${server.addresses[0]}`);
  await shutdown.signal;
  await server.close();
  return 0;
}
