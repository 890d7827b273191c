/**
 * Callers that call `Sum` at a steady pace while their server restarts, ours
 * (tests/fixtures/restart_caller.ts) and grpc-go's (the peer's `loop` mode), and what their
 * calls did across each outage: for `tests/clients/wait_for_ready_test.ts` and the soak's restart
 * case.
 *
 * @module
 */
import { createClient } from "../../mod.ts";
import { goPeerProgram } from "../peers/peers.ts";
import {
  DenoProcess,
  type ServerProcess,
  startCliServer,
} from "./subprocess.ts";

const CALLER = new URL("../fixtures/restart_caller.ts", import.meta.url)
  .pathname;

/** One call of a caller: when it started and ended (epoch ms), and its status. */
export interface CallRecord {
  start: number;
  end: number;
  code: string;
  details: string;
}

/** Which client a caller is. */
export interface CallerKind {
  /** `ours` (createClient over `transport`) or `grpc-go`. */
  stack: "ours" | "grpc-go";
  /** Whether its calls wait for ready. */
  waitForReady: boolean;
  /**
   * Our transport.
   *
   * @default {"http2"}
   */
  transport?: "http2" | "grpc-js";
}

/** The pace and deadline of a caller's calls. */
export interface CallerPace {
  /** A call starts every this many ms. */
  intervalMs: number;
  /** Each call's deadline, in ms. */
  deadlineMs: number;
}

/** A running caller. */
/** The pace of the restart runs: a `Sum` every 10 ms, each with a 1 s deadline. */
export const RESTART_PACE = { intervalMs: 10, deadlineMs: 1_000 } as const;

/** The callers of the restart runs, side by side: ours and grpc-go's, waiting or not. */
export const RESTART_CALLERS: readonly CallerKind[] = [
  { stack: "ours", waitForReady: false },
  { stack: "ours", waitForReady: true },
  { stack: "ours", waitForReady: true, transport: "grpc-js" },
  { stack: "grpc-go", waitForReady: false },
  { stack: "grpc-go", waitForReady: true },
];

export interface Caller extends AsyncDisposable {
  /** What it is, e.g. `ours, wait for ready`. */
  readonly name: string;
  readonly kind: CallerKind;
  /** Resolves once its first call has succeeded. */
  started(): Promise<void>;
  /** Stops it and waits for its calls to end. */
  stop(): Promise<{ calls: CallRecord[]; attempts: number[] }>;
}

/** The name of a caller in figures and messages. */
export function callerName(kind: CallerKind): string {
  const stack = kind.stack === "ours" && kind.transport === "grpc-js"
    ? "ours over grpc-js"
    : kind.stack;
  return `${stack}, ${kind.waitForReady ? "wait for ready" : "default"}`;
}

/**
 * Starts a caller of `address`.
 *
 * @param kind Which client.
 * @param setup The address, the pace and the deadline.
 * @returns The running caller.
 */
export async function startCaller(
  kind: CallerKind,
  setup: CallerPace & { address: string },
): Promise<Caller> {
  const args = [
    setup.address,
    String(setup.intervalMs),
    String(setup.deadlineMs),
    kind.waitForReady ? "1" : "0",
  ];
  const process = kind.stack === "grpc-go"
    ? DenoProcess.spawn(["loop", ...args], {
      program: await goPeerProgram(),
      stdin: true,
    })
    : DenoProcess.spawn([
      "run",
      "--allow-net=127.0.0.1",
      "--allow-env",
      CALLER,
      ...args,
      kind.transport ?? "http2",
    ], { stdin: true });
  return {
    name: callerName(kind),
    kind,
    async started(): Promise<void> {
      await process.waitForLines("stdout", /"code":"OK"/, {
        timeoutMs: 30_000,
      });
    },
    async stop(): Promise<{ calls: CallRecord[]; attempts: number[] }> {
      await process.closeStdin();
      const { code, stdout, stderr } = await process.finished(30_000);
      if (code !== 0) {
        throw new Error(
          `Caller ${callerName(kind)} exited with ${code}:\n${
            stderr.join("\n")
          }`,
        );
      }
      const calls: CallRecord[] = [];
      let attempts: number[] = [];
      for (const line of stdout.filter((line) => line !== "")) {
        const parsed = JSON.parse(line) as CallRecord | { attempts: number[] };
        if ("attempts" in parsed) attempts = parsed.attempts;
        else calls.push(parsed);
      }
      return { calls, attempts };
    },
    [Symbol.asyncDispose]: () => process[Symbol.asyncDispose](),
  };
}

/** One outage: when the server was stopped, how, and when it served again (epoch ms). */
export interface Outage {
  signal: "SIGKILL" | "SIGTERM";
  /** When the signal was sent. */
  stoppedAt: number;
  /** When the stopped process had exited, its connections closed. */
  exitedAt: number;
  /** When the new server printed that it serves. */
  backAt: number;
  /**
   * When the new server first answered a call on a connection of its own. On a loaded
   * machine a fresh server can take a second or more past its first line to answer; every
   * client, grpc-go's too, waits for that, so the callers are judged from here.
   */
  answeringAt: number;
}

/** How {@linkcode RestartingServer.restart} restarts. */
export interface RestartOptions {
  /**
   * Keep the server down at least this long from the signal, in ms.
   *
   * @default {0} (start again as soon as the process is gone)
   */
  downMs?: number;
}

/**
 * A `grpc-stream serve` on one port that can be stopped and started again there.
 */
export class RestartingServer implements AsyncDisposable {
  readonly port: number;
  #server: ServerProcess | undefined;

  private constructor(port: number, server: ServerProcess) {
    this.port = port;
    this.#server = server;
  }

  /**
   * Starts the server on `port`.
   *
   * @param port A free port.
   * @returns The running server.
   */
  static async start(port: number): Promise<RestartingServer> {
    return new RestartingServer(port, await RestartingServer.#serve(port));
  }

  static #serve(port: number): Promise<ServerProcess> {
    return startCliServer(["--port", String(port), "--log", "none"]);
  }

  /** The server's `host:port`. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * Stops the server with `signal`, waits for its process to end, and starts it again on
   * the same port.
   *
   * @param signal How to stop it.
   * @param options How long it stays down at least.
   * @returns When it was stopped and when it served again.
   */
  async restart(
    signal: "SIGKILL" | "SIGTERM",
    { downMs = 0 }: RestartOptions = {},
  ): Promise<Outage> {
    const server = this.#server!;
    this.#server = undefined;
    const stoppedAt = Date.now();
    server.process.kill(signal);
    await server.process.finished(30_000);
    const exitedAt = Date.now();
    await server[Symbol.asyncDispose]();
    const left = stoppedAt + downMs - Date.now();
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    this.#server = await RestartingServer.#serve(this.port);
    const backAt = Date.now();
    return {
      signal,
      stoppedAt,
      exitedAt,
      backAt,
      answeringAt: await this.#answered(),
    };
  }

  /** When a call on a new connection of its own (no backoff behind it) is first answered. */
  async #answered(): Promise<number> {
    for (let attempt = 0;; attempt++) {
      using client = createClient(this.address);
      try {
        await client.sum([1], { timeout: 500 });
        return Date.now();
      } catch (error) {
        if (attempt === 200) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#server?.[Symbol.asyncDispose]();
    this.#server = undefined;
  }
}

/** What one caller's calls did across one outage. */
export interface OutageFigures {
  /** Calls that failed, by status, that started from the stop to a deadline after it. */
  failures: Record<string, number>;
  /** Of those, the calls that started once the server was back. */
  failedAfterBack: number;
  /** Connection attempts per second from the stop until the server served again. */
  attemptsPerSecond: number;
}

/**
 * The failures a caller had around `outage` (calls that started from one deadline before
 * the stop to one deadline after the server was back), and how often it dialled meanwhile.
 */
export function outageFigures(
  { calls, attempts }: { calls: CallRecord[]; attempts: number[] },
  { outage, deadlineMs }: { outage: Outage; deadlineMs: number },
): OutageFigures {
  const failures: Record<string, number> = {};
  let failedAfterBack = 0;
  for (const call of calls) {
    if (
      call.code === "OK" || call.start < outage.stoppedAt - deadlineMs ||
      call.start > outage.backAt + deadlineMs
    ) {
      continue;
    }
    failures[call.code] = (failures[call.code] ?? 0) + 1;
    if (call.start >= outage.backAt) failedAfterBack += 1;
  }
  const down =
    attempts.filter((at) => at >= outage.stoppedAt && at <= outage.backAt)
      .length;
  return {
    failures,
    failedAfterBack,
    attemptsPerSecond: down / ((outage.backAt - outage.stoppedAt) / 1_000),
  };
}

/**
 * How long after the server is back a waiting call may still be waiting: the redial floor
 * of wait-for-ready calls (200 ms), and time for a busy machine to run the timers.
 */
const BACK_SLACK_MS = 500;
/**
 * How grpc-js ends a call whose connection broke under a write: `INTERNAL`, as it does on
 * Node. Deno 2.9.4's `node:http2` words the `EPIPE` of a write after the peer's FIN as Node's
 * `net` does: "This socket has been ended by the other party".
 */
const GRPC_JS_WRITE_FAILED =
  /^Received RST_STREAM with code 2 triggered by internal client error: (write (EPIPE|ECONNRESET)|This socket has been ended by the other party)/;
/**
 * How long after the stopped process has exited a call may start and still be on the dead
 * connection: the client has not heard of its end yet.
 */
const IN_FLIGHT_SLACK_MS = 20;

/**
 * How long after the server is back a grpc-js channel may still back off: it dials a
 * waiting call no sooner than its backoff allows (1 s, then 1.6 s, then 2.56 s, ±20%). A
 * SIGTERM's drain keeps the port shut for about 2.4 s, long enough for the third step: CI on
 * Deno 2.9.4 saw a channel dial 2.42 s after the server was back.
 */
const GRPC_JS_BACKOFF_SLACK_MS = 3_072;

/**
 * Why a failed wait-for-ready call may fail, or `undefined` when it should not have: it was
 * on the connection when the server died, or the server was back too late for its deadline
 * (with `backoffSlackMs` more for a channel that waits out its backoff).
 */
function excuse(
  call: CallRecord,
  { outages, backoffSlackMs, deadlineMs }: {
    outages: readonly Outage[];
    backoffSlackMs: number;
    deadlineMs: number;
  },
): string | undefined {
  for (const outage of outages) {
    if (
      (call.code === "UNAVAILABLE" ||
        GRPC_JS_WRITE_FAILED.test(call.details)) &&
      outage.signal === "SIGKILL" &&
      call.start >= outage.stoppedAt - deadlineMs &&
      call.start <= outage.exitedAt + IN_FLIGHT_SLACK_MS
    ) {
      return "in flight at the kill";
    }
    if (
      call.code === "DEADLINE_EXCEEDED" &&
      call.start >= outage.stoppedAt - deadlineMs &&
      call.start + deadlineMs <
        outage.answeringAt + BACK_SLACK_MS + backoffSlackMs
    ) {
      return "the server was back too late for its deadline";
    }
  }
  return undefined;
}

/** Where a wait-for-ready caller's failures are judged. */
export interface FailureSetting {
  /** The caller. */
  kind: CallerKind;
  /** The outages it called through. */
  outages: readonly Outage[];
  /** Its calls' deadline, in ms. */
  deadlineMs: number;
}

/**
 * The failed calls of a wait-for-ready caller that should not have failed: neither on the
 * connection when its server was killed, nor waiting for a server that came back too late
 * for the call's deadline.
 *
 * @param calls The caller's calls.
 * @param setting Which caller, the outages, the deadline.
 * @returns The calls that failed without an excuse.
 */
export function unexcusedFailures(
  calls: readonly CallRecord[],
  { kind, outages, deadlineMs }: FailureSetting,
): CallRecord[] {
  // Ours dials at once for a waiting call; over grpc-js the channel keeps its backoff.
  const backoffSlackMs = kind.stack === "ours" && kind.transport !== "grpc-js"
    ? 0
    : GRPC_JS_BACKOFF_SLACK_MS;
  return calls.filter((call) =>
    call.code !== "OK" &&
    excuse(call, { outages, backoffSlackMs, deadlineMs }) === undefined
  );
}
