/**
 * `grpc-stream serve`: the three services on the article's ports until SIGINT or SIGTERM.
 *
 * @module
 */
import {
  DEFAULT_GRACE_PERIOD_MS,
  listenForShutdown,
  MAX_UINT32,
  type ServerLogger,
  startServer,
} from "../mod.ts";
import {
  asUsageError,
  EXIT_OK,
  parseCommandLine,
  parseLogChoice,
  parseMilliseconds,
  parsePort,
  parseWholeNumber,
  rejectPositionals,
  SEED_PORTS,
  SERVE_OPTIONS,
  UsageError,
} from "./args.ts";
import { serverTlsOptions, splitAddress } from "./connect.ts";
import { printHelp, SERVE_HELP, SERVE_USAGE } from "./help.ts";
import { LineWriter } from "./line_writer.ts";
import { tracingIsOn } from "./telemetry.ts";

/** Where `serve` listens. */
export interface ListenPlan {
  /** The host name or address to bind. */
  hostname: string;
  /** The ports, each serving all three services; 0 picks a free one. */
  ports: number[];
}

/**
 * Where `serve` listens, from `--address`, or `--hostname` and `--port`: with none of them,
 * 127.0.0.1 on the article's ports.
 */
export function planListening(
  values: {
    address?: string[] | undefined;
    hostname?: string | undefined;
    port?: string[] | undefined;
  },
  usage: string,
): ListenPlan {
  if (values.address !== undefined) {
    if (values.hostname !== undefined || values.port !== undefined) {
      throw new UsageError(
        "Use either --address or --hostname and --port: not both",
        usage,
      );
    }
    const addresses = values.address.map((address) =>
      splitAddress(address, usage)
    );
    const hostname = addresses[0]!.hostname;
    if (addresses.some((address) => address.hostname !== hostname)) {
      throw new UsageError(
        `Every --address must have the same host: ${values.address.join(", ")}`,
        usage,
      );
    }
    return {
      hostname,
      ports: refuseRepeatedPorts(
        addresses.map((address) => address.port),
        usage,
      ),
    };
  }
  const hostname = values.hostname ?? "127.0.0.1";
  if (hostname === "") {
    throw new UsageError("Hostname must not be empty", usage);
  }
  const ports = values.port === undefined
    ? SEED_PORTS
    : values.port.flatMap((list) => list.split(",")).map((port) =>
      parsePort(port.trim(), usage)
    );
  return { hostname, ports: refuseRepeatedPorts(ports, usage) };
}

/** A port named twice would be bound once and reported twice: a usage error. Port 0 may repeat. */
function refuseRepeatedPorts(ports: number[], usage: string): number[] {
  const repeated = ports.find((port, index) =>
    port !== 0 && ports.indexOf(port) !== index
  );
  if (repeated !== undefined) {
    throw new UsageError(`Port given twice: ${repeated}`, usage);
  }
  return ports;
}

/**
 * Fails with one plain line naming the flag to add when Deno may not listen on a port, and
 * when a port is taken, before grpc-js tries it: grpc-js logs its
 * own line for a failed bind (`E No address added out of total 1 resolved`) on top of the
 * error it calls back with. A port taken between this check and the bind still gets the
 * error, worded by {@linkcode listenError}.
 */
function checkPortsFree({ hostname, ports }: ListenPlan): void {
  for (const port of ports) {
    const host = hostPort(hostname, port);
    // Without the permission Deno.listen would prompt at a terminal, and the server's own
    // error does not say which flag to add.
    if (Deno.permissions.querySync({ name: "net", host }).state !== "granted") {
      throw new Error(
        `Requires net access to ${host}: run again with --allow-net=${
          hostname.includes(":") ? `[${hostname}]` : hostname
        }`,
      );
    }
    if (port === 0) continue;
    try {
      Deno.listen({ hostname, port }).close();
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) {
        throw new Error(
          `Cannot listen on ${
            hostPort(hostname, port)
          }: address already in use`,
        );
      }
      // Anything else (no permission, an address not of this host) is the server's to report.
      return;
    }
  }
}

function hostPort(hostname: string, port: number): string {
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

/** The server's failure to listen, with grpc-js's account of a port in use put plainly. */
function listenError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const inUse = /^(Cannot listen on \S+): .*EADDRINUSE/s.exec(error.message);
  return inUse === null
    ? error
    : new Error(`${inUse[1]}: address already in use`, { cause: error });
}

/** `grpc-stream serve`: serves until a signal, then stops gracefully. */
export async function serve(args: string[]): Promise<number> {
  const { values, positionals } = asUsageError(
    SERVE_USAGE,
    () => parseCommandLine(args, SERVE_OPTIONS),
  );
  if (values.help) return printHelp(SERVE_HELP);
  rejectPositionals(positionals, SERVE_USAGE);
  const { hostname, ports } = planListening(values, SERVE_USAGE);
  const maxPowCount = values["max-pow-count"] === undefined
    ? undefined
    : asUsageError(
      SERVE_USAGE,
      () =>
        parseWholeNumber(values["max-pow-count"]!, "Max pow count", {
          min: 1,
          max: MAX_UINT32,
        }),
    );
  const gracePeriod = values["grace-period"] === undefined
    ? DEFAULT_GRACE_PERIOD_MS
    : asUsageError(
      SERVE_USAGE,
      () => parseMilliseconds(values["grace-period"]!, "Grace period"),
    );

  const drainPeriod = values["drain-period"] === undefined ? 0 : asUsageError(
    SERVE_USAGE,
    () => parseMilliseconds(values["drain-period"]!, "Drain period"),
  );

  const log = parseLogChoice(values.log, SERVE_USAGE);

  const tls = await serverTlsOptions(values, SERVE_USAGE);

  // Lines are gathered and written once per turn of the event loop, so logging every number
  // does not cost a write per number, and a reader that goes away does not stop the server.
  // Under OTEL_DENO=true each line goes through console instead: Deno makes a console line a
  // log record of the span active when it is written, and a gathered line would lose its call.
  const throughConsole = tracingIsOn();
  const out = new LineWriter(Deno.stdout);
  const err = new LineWriter(Deno.stderr);
  function ignoreLine(): void {}
  const logger: ServerLogger = {
    info: log === "none"
      ? ignoreLine
      : throughConsole
      ? (line) => console.log(line)
      : (line) => out.line(line),
    warn: log === "none"
      ? ignoreLine
      : throughConsole
      ? (line) => console.warn(line)
      : (line) => err.line(line),
    error: throughConsole
      ? (line) => console.error(line)
      : (line) => err.line(line),
  };

  // Listen for signals before binding, so a signal that arrives while the ports are being
  // bound still shuts the server down gracefully.
  using shutdown = listenForShutdown();
  checkPortsFree({ hostname, ports });
  const server = await startServer({
    hostname,
    port: ports,
    gracePeriod,
    drainPeriod,
    // Info to stdout and failures to stderr, as the article's servers print them.
    logger,
    logMessages: log === "messages",
    ...(maxPowCount === undefined ? {} : { maxPowCount }),
    ...(tls === undefined ? {} : { tls }),
  }).catch((error) => {
    throw listenError(error);
  });
  for (const address of server.addresses) {
    out.line(`Serving gRPC on ${address}`);
  }
  const signal = await shutdown.signal;
  err.line(
    `Received ${signal}: letting calls in flight finish for up to ${gracePeriod} ms`,
  );
  await server.close();
  err.line("Server stopped");
  await Promise.all([out.flush(), err.flush()]);
  return EXIT_OK;
}
