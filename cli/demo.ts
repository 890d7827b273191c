/**
 * `grpc-stream demo`: the article's three demos, against a server of their own or another.
 *
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import {
  createClient,
  type ServerLogger,
  startServer,
  type StreamClient,
} from "../mod.ts";
import {
  asUsageError,
  DEFAULT_DEMO_INTERVAL_MS,
  DEMO_GRACE_PERIOD_MS,
  DEMO_OPTIONS,
  EXIT_OK,
  parseCommandLine,
  parseMilliseconds,
  rejectPositionals,
  UsageError,
} from "./args.ts";
import { checkServerAddress, clientOptions } from "./connect.ts";
import { DEMO_HELP, DEMO_USAGE, printHelp } from "./help.ts";
import { printLine } from "./stdout.ts";

/** The demo's server log, marked so its lines stand apart from the clients'. */
function prefixedLogger(prefix: string): ServerLogger {
  return {
    info(message: string): void {
      console.log(prefix + message);
    },
    warn(message: string): void {
      console.error(prefix + message);
    },
    error(message: string): void {
      console.error(prefix + message);
    },
  };
}

/** The article's bidirectional client sends 0 … 9 with a pause between the numbers. */
async function* zeroToNine(interval: number): AsyncGenerator<number> {
  for (let number = 0; number < 10; number++) {
    if (number > 0) await delay(interval);
    yield number;
  }
}

/** The three demos of the article, with the lines its Go clients print. */
async function runDemos(
  client: StreamClient,
  interval: number,
): Promise<void> {
  printLine("\n--- Server streaming: Pow(2) streams the powers of 2 ---");
  for await (const power of client.pow(2)) printLine(`Recv data:${power}`);
  printLine("server closed");

  printLine("\n--- Client streaming: Sum(0 … 9) streams ten numbers ---");
  const total = await client.sum([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  printLine(`sum: ${total}`);

  printLine(
    `\n--- Bidirectional streaming: Sqrt(0 … 9), one number every ${interval} ms ---`,
  );
  for await (const root of client.sqrt(zeroToNine(interval))) {
    printLine(`Recv Data:${root}`);
  }
  printLine("Server Closed");
}

/** `grpc-stream demo`: runs the three demos and returns the exit status. */
export async function demo(args: string[]): Promise<number> {
  const { values, positionals } = asUsageError(
    DEMO_USAGE,
    () => parseCommandLine(args, DEMO_OPTIONS),
  );
  if (values.help) return printHelp(DEMO_HELP);
  rejectPositionals(positionals, DEMO_USAGE);
  const interval = values.interval === undefined
    ? DEFAULT_DEMO_INTERVAL_MS
    : asUsageError(
      DEMO_USAGE,
      () => parseMilliseconds(values.interval!, "Interval"),
    );
  const options = await clientOptions(values, DEMO_USAGE);
  if (options.tls !== undefined && values.address === undefined) {
    throw new UsageError(
      "TLS options need --address: the demo's own server speaks plaintext",
      DEMO_USAGE,
    );
  }
  if (values.address !== undefined) {
    using client = createClient(
      await checkServerAddress(values.address, DEMO_USAGE),
      options,
    );
    await runDemos(client, interval);
    return EXIT_OK;
  }
  await using server = await startServer({
    port: 0,
    gracePeriod: DEMO_GRACE_PERIOD_MS,
    logger: prefixedLogger("[server] "),
  });
  printLine(`Serving gRPC on ${server.addresses[0]}`);
  using client = createClient(server.addresses[0]!);
  await runDemos(client, interval);
  return EXIT_OK;
}
