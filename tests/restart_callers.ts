/**
 * Callers that call `Sum` at a steady pace while their server restarts, ours
 * (tests/fixtures/restart_caller.ts) and grpc-go's (the peer's `loop` mode), and what their
 * calls did across each outage: for `tests/wait_for_ready_test.ts` and the soak's restart
 * case.
 *
 * @module
 */
import { goPeerProgram } from "./peers/peers.ts";
import {
  DenoProcess,
  type ServerProcess,
  startCliServer,
} from "./subprocess.ts";

const CALLER = new URL("./fixtures/restart_caller.ts", import.meta.url)
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
  /** When the new server printed that it serves. */
  backAt: number;
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
   * @returns When it was stopped and when it served again.
   */
  async restart(signal: "SIGKILL" | "SIGTERM"): Promise<Outage> {
    const server = this.#server!;
    this.#server = undefined;
    const stoppedAt = Date.now();
    server.process.kill(signal);
    await server.process.finished(30_000);
    await server[Symbol.asyncDispose]();
    this.#server = await RestartingServer.#serve(this.port);
    return { signal, stoppedAt, backAt: Date.now() };
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
  for (const call of calls) {
    if (
      call.code === "OK" || call.start < outage.stoppedAt - deadlineMs ||
      call.start > outage.backAt + deadlineMs
    ) {
      continue;
    }
    failures[call.code] = (failures[call.code] ?? 0) + 1;
  }
  const down =
    attempts.filter((at) => at >= outage.stoppedAt && at <= outage.backAt)
      .length;
  return {
    failures,
    attemptsPerSecond: down / ((outage.backAt - outage.stoppedAt) / 1_000),
  };
}
