/**
 * `serve --workers N`: N processes serving one set of ports, started through `node:cluster`.
 * The primary process binds nothing itself; it starts the first worker (which runs `serve`
 * with the same command line), then the others on the ports the first bound, each worker on
 * a listening socket of its own (`SO_REUSEPORT`: the kernel spreads the connections), prints
 * the readiness lines once, replaces a worker that dies, and on SIGINT or SIGTERM drains them
 * all and exits 0 only when every one has stopped cleanly. Where grpc-js offers no way to a
 * socket of its own (`internals/grpc_js_listen.ts`), the workers share the primary's socket
 * through `node:cluster`'s round-robin handle.
 *
 * @module
 */
import cluster, { type Worker } from "node:cluster";
import process from "node:process";
import type { ServerLogger, StartServerOptions, StreamServer } from "../mod.ts";
import { type PortSharing, sharePorts } from "../services/port_sharing.ts";
import { EXIT_CALL_FAILED, EXIT_OK } from "./args.ts";
import type { LineWriter } from "./line_writer.ts";

/** The environment variable that tells a worker its number, 1 to N. */
export const WORKER_VARIABLE = "GRPC_STREAM_WORKER";

/**
 * The environment variable that tells a worker the ports the first worker bound, as a
 * comma-separated list, so that `--port 0` gives every worker the same port.
 */
const PORTS_VARIABLE = "GRPC_STREAM_WORKER_PORTS";

/**
 * The OpenTelemetry resource attribute that holds the worker's number on every span, metric
 * and log record a worker exports.
 */
export const WORKER_ATTRIBUTE = "grpc_stream.worker.id";

/** What a worker tells the primary, and the primary a worker. */
type Message =
  | {
    grpcStream: "listening";
    addresses: string[];
    ports: number[];
    /** Whether the worker listens on sockets of its own (`SO_REUSEPORT`). */
    ownSocket: boolean;
  }
  | { grpcStream: "shutdown"; signal: string };

function isMessage(value: unknown): value is Message {
  return typeof value === "object" && value !== null &&
    "grpcStream" in value;
}

/** Where one worker stands; a replacement takes the slot of the worker it replaces. */
type WorkerState =
  | { kind: "starting"; worker: Worker; pid: number }
  | { kind: "serving"; worker: Worker; pid: number }
  | { kind: "exited"; pid: number; code: number | null; signal: string | null };

/** Where the primary stands. */
type PrimaryState =
  | { kind: "starting" }
  | { kind: "serving" }
  | { kind: "stopping"; failed: boolean };

/** How {@linkcode superviseWorkers} starts and stops its workers. */
export interface SuperviseOptions {
  /** The permission flags of each worker, from {@linkcode workerPermissions}. */
  permissions: string[];
  /** Where the readiness lines go. */
  out: LineWriter;
  /** Where the workers' deaths and the final line go. */
  err: LineWriter;
  /** Resolves with the signal that asks the workers to stop. */
  shutdown: Promise<Deno.Signal>;
  /**
   * The workers' drain and grace periods together, in milliseconds. A worker still running
   * {@linkcode STOP_MARGIN_MS} after that, once asked to stop, is killed, and counts as a
   * failure.
   */
  stopPeriodMs: number;
}

/** What the primary adds to the workers' drain and grace periods before it kills one. */
export const STOP_MARGIN_MS = 5_000;

/**
 * The flags a primary lacks to start workers: `node:cluster` runs Deno's own executable and
 * hands it a copy of the whole environment.
 *
 * @returns The flags to add, empty when none is missing.
 */
export function missingWorkerFlags(): string[] {
  const flags: string[] = [];
  const execPath = Deno.execPath();
  if (
    Deno.permissions.querySync({ name: "run", command: execPath }).state !==
      "granted"
  ) {
    flags.push(`--allow-run=${execPath}`);
  }
  if (Deno.permissions.querySync({ name: "env" }).state !== "granted") {
    flags.push("--allow-env");
  }
  return flags;
}

/** What a worker of `serve` needs to do its work: the host it listens on and the PEM files. */
export interface WorkerNeeds {
  /** The host name or address `serve` listens on. */
  hostname: string;
  /** The PEM files of `--cert`, `--key` and `--client-ca`. */
  files: string[];
}

/**
 * The permission flags of a worker: what a lone `serve` needs, no more. Deno's `node:cluster`
 * would start each worker with `-A` (it reads the primary's flags as Node's, and gives a child
 * with none every permission), so the workers get flags of their own: to listen on the host,
 * to read `GRPC_*` variables (its number, `GRPC_STREAM_WORKER`, among them), `NODE_UNIQUE_ID`
 * and the PEM files, and never to prompt.
 *
 * @param needs The host and the files.
 * @returns The flags, after `deno run`.
 */
export function workerPermissions(needs: WorkerNeeds): string[] {
  const host = needs.hostname.includes(":")
    ? `[${needs.hostname}]`
    : needs.hostname;
  return [
    `--allow-net=${host}`,
    // `node:cluster` reads NODE_UNIQUE_ID as the worker starts, and Deno panics without it.
    "--allow-env=GRPC_*,NODE_UNIQUE_ID",
    ...(needs.files.length === 0
      ? []
      : [`--allow-read=${needs.files.join(",")}`]),
    "--no-prompt",
  ];
}

/** How a worker ended, in words: `status 1` or `signal SIGKILL`. */
function ending(code: number | null, signal: string | null): string {
  return signal !== null ? `signal ${signal}` : `status ${code}`;
}

/**
 * Runs the primary process of `serve --workers N`: starts `count` workers, prints
 * `Serving gRPC on HOST:PORT` once they all listen, replaces a worker that dies, and on the
 * shutdown signal asks each worker to drain.
 *
 * @param count How many workers, at least 2.
 * @param options Where to write and when to stop.
 * @returns 0 when every worker stopped cleanly, 1 otherwise (each failure said on stderr).
 */
export async function superviseWorkers(
  count: number,
  options: SuperviseOptions,
): Promise<number> {
  const { out, err } = options;
  const slots = new Map<number, WorkerState>();
  let state: PrimaryState = { kind: "starting" };
  let addresses: string[] | undefined;
  // The ports the first worker bound, for the others to bind beside it; unset when the
  // workers share the ports through the primary (`node:cluster`'s round-robin handle).
  let boundPorts: number[] | undefined;
  const { promise: allExited, resolve: everyoneExited } = Promise
    .withResolvers<void>();

  function fork(slot: number): void {
    const existing = process.env.OTEL_RESOURCE_ATTRIBUTES;
    const worker = cluster.fork({
      [WORKER_VARIABLE]: String(slot),
      OTEL_RESOURCE_ATTRIBUTES: `${
        existing === undefined || existing === "" ? "" : `${existing},`
      }${WORKER_ATTRIBUTE}=${slot}`,
      ...(boundPorts === undefined
        ? {}
        : { [PORTS_VARIABLE]: boundPorts.join(",") }),
    });
    const pid = worker.process.pid!;
    slots.set(slot, { kind: "starting", worker, pid });
    worker.on("message", (message: unknown) => {
      if (!isMessage(message) || message.grpcStream !== "listening") return;
      onListening(slot, message);
    });
    worker.on("exit", (code: number | null, signal: string | null) => {
      onExit(slot, { pid, code, signal });
    });
  }

  function onListening(
    slot: number,
    bound: Extract<Message, { grpcStream: "listening" }>,
  ): void {
    const current = slots.get(slot);
    if (current?.kind !== "starting") return;
    slots.set(slot, { ...current, kind: "serving" });
    if (addresses === undefined) {
      // The first worker has bound every port (port 0 included): the others bind them too,
      // each on a socket of its own, so no connection waits on a worker still starting.
      addresses = bound.addresses;
      if (bound.ownSocket) boundPorts = bound.ports;
      // Asked to stop while the first was starting: the others are not started at all.
      if (state.kind === "starting") {
        for (let other = 2; other <= count; other++) fork(other);
      }
    }
    if (state.kind === "starting") {
      if ([...slots.values()].every((s) => s.kind === "serving")) {
        state = { kind: "serving" };
        const pids = [...slots.entries()].map(([id, s]) =>
          `${id} (pid ${s.pid})`
        );
        out.line(`Started ${count} workers: ${pids.join(", ")}`);
        for (const address of addresses) out.line(`Serving gRPC on ${address}`);
      }
    } else if (state.kind === "serving") {
      err.line(`Worker ${slot} restarted (pid ${current.pid})`);
    }
  }

  function onExit(
    slot: number,
    exit: { pid: number; code: number | null; signal: string | null },
  ): void {
    const before = slots.get(slot);
    slots.set(slot, { kind: "exited", ...exit });
    if (state.kind !== "stopping") {
      if (before?.kind === "serving") {
        err.line(
          `Worker ${slot} (pid ${exit.pid}) died: ${
            ending(exit.code, exit.signal)
          }; starting another`,
        );
        fork(slot);
        return;
      }
      // A worker that could not start (its ports taken, say) would fail again: stop them all.
      err.line(
        `Worker ${slot} (pid ${exit.pid}) exited before it was serving: ${
          ending(exit.code, exit.signal)
        }`,
      );
      stopAll("SIGTERM", true);
    }
    if ([...slots.values()].every((s) => s.kind === "exited")) {
      everyoneExited();
    }
  }

  function stopAll(signal: string, failed: boolean): void {
    state = { kind: "stopping", failed };
    for (const slot of slots.values()) {
      if (slot.kind === "exited") continue;
      const message: Message = { grpcStream: "shutdown", signal };
      slot.worker.send(message);
    }
    // A worker that never finishes (a connection it holds but never reads) must not keep the
    // whole server from stopping.
    const limit = setTimeout(
      killLeftovers,
      options.stopPeriodMs + STOP_MARGIN_MS,
    );
    allExited.then(() => clearTimeout(limit));
  }

  function killLeftovers(): void {
    for (const [slot, current] of slots) {
      if (current.kind === "exited") continue;
      err.line(
        `Worker ${slot} (pid ${current.pid}) did not stop within ${
          options.stopPeriodMs + STOP_MARGIN_MS
        } ms: killing it`,
      );
      current.worker.process.kill("SIGKILL");
    }
  }

  // Deno-style flags after `run` pass through to the worker's command line unchanged.
  cluster.setupPrimary({ execArgv: ["run", ...options.permissions] });
  fork(1);
  options.shutdown.then((signal) => {
    if (state.kind !== "stopping") stopAll(signal, false);
  });
  await allExited;

  // The handlers above changed the state while this function waited.
  const final = state as PrimaryState;
  let failed = final.kind === "stopping" && final.failed;
  for (const [slot, exit] of slots) {
    if (exit.kind !== "exited" || (exit.code === 0 && exit.signal === null)) {
      continue;
    }
    failed = true;
    err.line(
      `Worker ${slot} (pid ${exit.pid}) did not stop cleanly: ${
        ending(exit.code, exit.signal)
      }`,
    );
  }
  if (!failed) err.line("Server stopped");
  return failed ? EXIT_CALL_FAILED : EXIT_OK;
}

/** What a worker process of `serve --workers N` does differently from a lone `serve`. */
export interface WorkerRole {
  /** The worker's number, 1 to N; a replacement takes the number of the worker it replaces. */
  readonly id: number;
  /** What starts each of the worker's lines: `[worker N] `. */
  readonly mark: string;
  /** `logger` with each line marked `[worker N] `. */
  marked(logger: ServerLogger): ServerLogger;
  /**
   * The worker's options for `startServer`: `options` with the ports the first worker bound
   * (when it listens on sockets of its own), asking for sockets of its own.
   */
  serverOptions(options: StartServerOptions): StartServerOptions;
  /** Tells the primary where the worker listens, in place of the `Serving gRPC on` lines. */
  listening(server: StreamServer): void;
  /** Resolves with the first of the worker's own signal and the primary's request to stop. */
  shutdown(ownSignal: Promise<Deno.Signal>): Promise<string>;
  /** Leaves the cluster once the server has closed, so the process can exit. */
  leave(): void;
}

/**
 * The worker's side of `serve --workers N`, or `undefined` in the primary process.
 *
 * @returns The role when this process is a worker the primary started.
 */
export function workerRole(): WorkerRole | undefined {
  if (!cluster.isWorker) return undefined;
  const id = Number(Deno.env.get(WORKER_VARIABLE) ?? cluster.worker?.id ?? 0);
  const mark = `[worker ${id}] `;
  let sharing: PortSharing | undefined;
  return {
    id,
    mark,
    marked(logger: ServerLogger): ServerLogger {
      return {
        info: (line) => logger.info(mark + line),
        warn: (line) => logger.warn(mark + line),
        error: (line) => logger.error(mark + line),
      };
    },
    serverOptions(options: StartServerOptions): StartServerOptions {
      const given = Deno.env.get(PORTS_VARIABLE);
      const own = given === undefined ? { ...options } : {
        ...options,
        port: given.split(",").map((port) => Number(port)),
      };
      sharing = sharePorts(own);
      return own;
    },
    listening(server: StreamServer): void {
      const message: Message = {
        grpcStream: "listening",
        addresses: [...server.addresses],
        ports: [...server.ports],
        ownSocket: sharing?.ownSocket ?? false,
      };
      process.send!(message);
    },
    shutdown(ownSignal: Promise<Deno.Signal>): Promise<string> {
      const { promise, resolve } = Promise.withResolvers<string>();
      function onMessage(message: unknown): void {
        if (isMessage(message) && message.grpcStream === "shutdown") {
          resolve(message.signal);
        }
      }
      process.on("message", onMessage);
      ownSignal.then(resolve);
      return promise.finally(() => process.off("message", onMessage));
    },
    leave(): void {
      process.disconnect!();
    },
  };
}
