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
  type StartServerOptions,
} from "../mod.ts";
import {
  asUsageError,
  EXIT_OK,
  parseCommandLine,
  parseLogChoice,
  parseMilliseconds,
  parsePort,
  parseWholeNumber,
  parseWorkers,
  rejectPositionals,
  SEED_PORTS,
  SERVE_OPTIONS,
  UsageError,
} from "./args.ts";
import { serverTlsOptions, splitAddress } from "./connect.ts";
import { parseFaultRule } from "./fault_option.ts";
import { printHelp, SERVE_HELP, SERVE_USAGE } from "./help.ts";
import { LineWriter } from "./line_writer.ts";
import { tracingIsOn } from "./telemetry.ts";
import type { SuperviseOptions, WorkerNeeds, WorkerRole } from "./workers.ts";

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
  const workers = parseWorkers(values.workers, SERVE_USAGE);

  const faults = values.fault?.map((rule) => parseFaultRule(rule, SERVE_USAGE));
  const faultSeed = values["fault-seed"] === undefined
    ? undefined
    : asUsageError(
      SERVE_USAGE,
      () =>
        parseWholeNumber(values["fault-seed"]!, "Fault seed", {
          min: 0,
          max: MAX_UINT32,
        }),
    );

  const tls = await serverTlsOptions(values, SERVE_USAGE);

  // Lines are gathered and written once per turn of the event loop, so logging every number
  // does not cost a write per number, and a reader that goes away does not stop the server.
  // Under OTEL_DENO=true each line goes through console instead: Deno makes a console line a
  // log record of the span active when it is written, and a gathered line would lose its call.
  const throughConsole = tracingIsOn();
  const out = new LineWriter(Deno.stdout);
  const err = new LineWriter(Deno.stderr);
  function ignoreLine(): void {}
  const lineLogger: ServerLogger = {
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
  // With --workers N this process either supervises N workers or is one of them.
  const worker = workers === 1 ? undefined : await joinWorkers(workers, {
    out,
    err,
    shutdown: shutdown.signal,
    stopPeriodMs: drainPeriod + gracePeriod,
    needs: {
      hostname,
      files: [values.cert, values.key, values["client-ca"]].filter((file) =>
        file !== undefined
      ),
    },
  });
  if (typeof worker === "number") return worker;
  const logger = worker === undefined ? lineLogger : worker.marked(lineLogger);
  const mark = worker?.mark ?? "";
  const options: StartServerOptions = {
    hostname,
    port: ports,
    gracePeriod,
    drainPeriod,
    // Info to stdout and failures to stderr, as the article's servers print them.
    logger,
    logMessages: log === "messages",
    ...(maxPowCount === undefined ? {} : { maxPowCount }),
    ...(tls === undefined ? {} : { tls }),
    ...(faults === undefined ? {} : { faults }),
    ...(faultSeed === undefined ? {} : { faultSeed }),
  };
  const server = await startServer(worker?.serverOptions(options) ?? options);
  if (worker === undefined) {
    for (const address of server.addresses) {
      out.line(`Serving gRPC on ${address}`);
    }
  } else {
    worker.listening(server);
  }
  const signal = await (worker?.shutdown(shutdown.signal) ?? shutdown.signal);
  err.line(
    `${mark}Received ${signal}: letting calls in flight finish for up to ${gracePeriod} ms`,
  );
  await server.close();
  err.line(`${mark}Server stopped`);
  await Promise.all([out.flush(), err.flush()]);
  worker?.leave();
  return EXIT_OK;
}

/**
 * Starts the workers of `serve --workers N` and supervises them, or joins them as one.
 *
 * @returns The primary's exit status once its workers have stopped, or the worker's role.
 * @throws {Error} If the primary lacks a permission it needs to start workers.
 */
async function joinWorkers(
  count: number,
  options: Omit<SuperviseOptions, "permissions"> & { needs: WorkerNeeds },
): Promise<WorkerRole | number> {
  // Loaded only here: a lone `serve` has no cluster at all.
  const {
    missingWorkerFlags,
    superviseWorkers,
    workerPermissions,
    workerRole,
  } = await import("./workers.ts");
  const role = workerRole();
  if (role !== undefined) return role;
  const missing = missingWorkerFlags();
  if (missing.length > 0) {
    throw new Error(
      `--workers ${count} starts worker processes: run again with ${
        missing.join(" ")
      }`,
    );
  }
  const { needs, ...rest } = options;
  return await superviseWorkers(count, {
    ...rest,
    permissions: workerPermissions(needs),
  });
}
