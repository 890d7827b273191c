/**
 * How the runner starts the benchmark's programs, each a process of its own: a server that
 * announces its port and stops when its stdin ends, a client run to its end for the JSON line
 * it prints, and the register of live children that an interrupted run ends.
 *
 * @module
 */
import type { ClientResult, ServerAnnouncement } from "./common.ts";

/** The folder of the benchmark's programs. */
export const BENCH_DIRECTORY = new URL("./", import.meta.url);
/** The repository's root, where every program runs. */
export const PROJECT_DIRECTORY = new URL("../../", import.meta.url);

/** What the module's programs need: loopback and grpc-js's tuning variables. */
export const RUN_PERMISSIONS = ["--allow-net=127.0.0.1", "--allow-env=GRPC_*"];

/** The grpc-js client also reads the proxy variables when it creates a channel. */
export const GRPC_JS_CLIENT_PERMISSIONS = [
  "--allow-net=127.0.0.1",
  "--allow-env=GRPC_*,grpc_proxy,http_proxy,https_proxy,no_grpc_proxy,no_proxy",
];

/** Every child still running, so an interrupted run can end them all. */
const liveChildren = new Set<Deno.ChildProcess>();

/** How a benchmark program runs. */
interface SpawnOptions {
  /**
   * Its `deno run` permission flags.
   *
   * @default {RUN_PERMISSIONS}
   */
  permissions?: readonly string[];
  /**
   * Kills it when aborted.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

function spawnDeno(
  program: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Deno.ChildProcess {
  const { permissions = RUN_PERMISSIONS, signal } = options;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...permissions,
      new URL(program, BENCH_DIRECTORY).href,
      ...args,
    ],
    cwd: PROJECT_DIRECTORY,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    ...(signal === undefined ? {} : { signal }),
  }).spawn();
  liveChildren.add(child);
  child.status.finally(() => liveChildren.delete(child));
  return child;
}

/** Keeps the last part of a stream's text, for error messages. */
async function collectTail(
  stream: ReadableStream<Uint8Array>,
  sink: { text: string },
  limit = 4_096,
): Promise<void> {
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    sink.text = (sink.text + chunk).slice(-limit);
  }
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1)?.trim() ?? "";
}

/** A server program in a process of its own, announcing its port on stdout. */
export class ServerProcess implements AsyncDisposable {
  readonly label: string;
  readonly pid: number;
  readonly port: number;
  /** How the process ended, once it has. */
  exit: Deno.CommandStatus | undefined;
  readonly #child: Deno.ChildProcess;
  readonly #stderr: { text: string };
  readonly #drained: Promise<unknown>;

  private constructor(
    child: Deno.ChildProcess,
    { label, port, stderr, drained }: {
      label: string;
      port: number;
      stderr: { text: string };
      drained: Promise<unknown>;
    },
  ) {
    this.label = label;
    this.#child = child;
    this.pid = child.pid;
    this.port = port;
    this.#stderr = stderr;
    this.#drained = drained;
    child.status.then((status) => {
      this.exit = status;
    });
  }

  /** Starts `program` and waits for its port. */
  static async start(
    label: string,
    program: string,
    args: readonly string[] = [],
  ): Promise<ServerProcess> {
    const child = spawnDeno(program, args);
    const stderr = { text: "" };
    const stderrDone = collectTail(child.stderr, stderr);
    const lines = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let buffered = "";
    try {
      const timeout = setTimeout(() => child.kill("SIGKILL"), 60_000);
      try {
        while (!buffered.includes("\n")) {
          const { done, value } = await lines.read();
          if (done) break;
          buffered += value;
        }
      } finally {
        clearTimeout(timeout);
      }
      const firstLine = buffered.split("\n")[0] ?? "";
      let announcement: ServerAnnouncement;
      try {
        announcement = JSON.parse(firstLine) as ServerAnnouncement;
      } catch {
        await child.status;
        await stderrDone;
        throw new Error(
          `${label} did not start: ${lastLine(stderr.text) || firstLine}`,
        );
      }
      // Keep reading stdout so a chatty server never blocks on a full pipe.
      const stdoutDone = (async () => {
        while (!(await lines.read()).done) {
          // Discarded.
        }
      })();
      return new ServerProcess(child, {
        label,
        port: announcement.port,
        stderr,
        drained: Promise.all([stdoutDone, stderrDone]),
      });
    } catch (error) {
      killQuietly(child);
      await child.status;
      throw error;
    }
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Why the process ended, if it ended on its own. */
  describeExit(): string | undefined {
    if (this.exit === undefined) return undefined;
    const how = this.exit.signal === null
      ? `exit code ${this.exit.code}`
      : `signal ${this.exit.signal}`;
    const message = lastLine(this.#stderr.text);
    return message === "" ? how : `${how}: ${message}`;
  }

  /** Asks the server to stop by closing its stdin, then kills it if it does not. */
  async stop(): Promise<void> {
    if (this.alive) {
      try {
        await this.#child.stdin.close();
      } catch {
        // Already closed because the process is gone.
      }
      const timer = setTimeout(() => killQuietly(this.#child), 5_000);
      await this.#child.status;
      clearTimeout(timer);
    } else {
      await this.#child.stdin.close().catch(() => {});
    }
    await this.#drained;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

function killQuietly(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // It has already exited.
  }
}

/** How a client program runs, and for how long at most. */
interface ClientRunOptions {
  /**
   * Its `deno run` permission flags.
   *
   * @default {RUN_PERMISSIONS}
   */
  permissions?: readonly string[];
  /**
   * When to kill it, in ms: past its own limit, for a client that hangs.
   *
   * @default {120_000}
   */
  hardLimitMs?: number;
}

/** Runs a client program to its end and returns the result it printed. */
export async function runClient(
  program: string,
  args: readonly string[],
  options: ClientRunOptions = {},
): Promise<ClientResult> {
  const { permissions = RUN_PERMISSIONS, hardLimitMs = 120_000 } = options;
  const signal = AbortSignal.timeout(hardLimitMs);
  const child = spawnDeno(program, args, { permissions, signal });
  await child.stdin.close();
  const stdout = { text: "" };
  const stderr = { text: "" };
  const [status] = await Promise.all([
    child.status,
    collectTail(child.stdout, stdout, 1_000_000),
    collectTail(child.stderr, stderr),
  ]);
  const line = lastLine(stdout.text);
  if (line.startsWith("{")) return JSON.parse(line) as ClientResult;
  const reason = signal.aborted
    ? `Client killed after ${hardLimitMs / 1000} s`
    : `Client exited with ${status.signal ?? status.code}: ${
      lastLine(stderr.text)
    }`;
  return {
    expected: 0,
    completed: 0,
    seconds: 0,
    rate: 0,
    ok: false,
    stalled: false,
    error: reason,
  };
}

/** Ends every child still running, so that an interrupted or failed run leaves no server behind. */
export function endChildren(): void {
  for (const child of liveChildren) killQuietly(child);
}

/**
 * Writes a progress line on stderr, where it never mixes with the tables or the JSON.
 *
 * @param message The line.
 */
export function log(message: string): void {
  console.error(message);
}

/** Resolves after `milliseconds`. */
export function delay(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
