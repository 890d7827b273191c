/**
 * Runs subprocesses for the tests (the examples, the command line, the interop peers) and
 * the soak runs: their output line by line as it comes, waits with time limits, and cleanup
 * that never leaks a process.
 *
 * @module
 */

/** The command line's entry point, for `deno run`. */
export const CLI: string = new URL("../../cli.ts", import.meta.url).href;

/** The narrowest permissions the examples and the command line run with, as documented. */
export const RUN_PERMISSIONS: readonly string[] = [
  "--allow-net=127.0.0.1",
  "--allow-env=GRPC_*",
];

/** How a subprocess ended, with its output split into lines. */
export interface Finished {
  /** The exit status. */
  code: number;
  /** The lines written to stdout. */
  stdout: string[];
  /** The lines written to stderr. */
  stderr: string[];
}

/** Options for {@linkcode DenoProcess.spawn}. */
export interface SpawnOptions {
  /** Keep stdin open for {@linkcode DenoProcess.write}; otherwise it reads nothing. */
  stdin?: boolean;
  /** The working directory. */
  cwd?: string;
  /** Environment variables to add to the test's own. */
  env?: Record<string, string>;
  /** The program to run instead of `deno`, such as an interop peer. */
  program?: string;
}

type StreamName = "stdout" | "stderr";

interface LineWaiter {
  stream: StreamName;
  pattern: RegExp;
  matches: RegExpExecArray[];
  count: number;
  resolve(matches: RegExpExecArray[]): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

const DEFAULT_WAIT_MS = 15_000;

/** How many lines {@linkcode DenoProcess.waitForLines} waits for, and how long. */
export interface WaitForLinesOptions {
  /**
   * How many matching lines to wait for.
   *
   * @default {1}
   */
  count?: number;
  /**
   * How long to wait, in ms.
   *
   * @default {15_000}
   */
  timeoutMs?: number;
}

/** A running `deno` subprocess whose stdout and stderr are collected as lines. */
export class DenoProcess implements AsyncDisposable {
  /** Lines written to stdout so far. */
  readonly stdout: string[] = [];
  /** Lines written to stderr so far. */
  readonly stderr: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  readonly #readers: Promise<void>;
  readonly #ended = new Set<StreamName>();
  #waiters: LineWaiter[] = [];
  #status: Deno.CommandStatus | undefined;
  #stdinClosed = false;

  private constructor(args: string[], options: SpawnOptions) {
    this.#child = new Deno.Command(options.program ?? Deno.execPath(), {
      args,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      env: { ...options.env, NO_COLOR: "1" },
    }).spawn();
    this.#stdin = options.stdin ? this.#child.stdin.getWriter() : undefined;
    this.#readers = Promise.all([
      this.#collect("stdout", this.#child.stdout),
      this.#collect("stderr", this.#child.stderr),
    ]).then(() => {});
    this.#child.status.then((status) => {
      this.#status = status;
    });
  }

  /**
   * Starts `deno` with `args`.
   *
   * @param args The arguments after `deno`, e.g. `["run", ...RUN_PERMISSIONS, script]`.
   * @param options Whether stdin stays open, and the working directory.
   * @returns The running process; dispose of it (`await using`) to be sure it is gone.
   */
  static spawn(args: string[], options: SpawnOptions = {}): DenoProcess {
    return new DenoProcess(args, options);
  }

  /** The process id, e.g. to read its CPU time from `/proc/<pid>/stat`. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#status !== undefined;
  }

  /**
   * Waits for a line of `stream` that matches `pattern`, including lines already written.
   *
   * @returns The match.
   * @throws {Error} If the stream ends or the time runs out first; the message shows the
   * output so far.
   */
  async waitForLine(
    stream: StreamName,
    pattern: RegExp,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<RegExpExecArray> {
    const [match] = await this.waitForLines(stream, pattern, { timeoutMs });
    return match!;
  }

  /**
   * Waits until `options.count` lines of `stream` match `pattern`, counting lines already
   * written.
   *
   * @param options How many lines, and how long to wait.
   * @returns The first `count` matches, in order.
   * @throws {Error} If the stream ends or the time runs out first; the message shows the
   * output so far.
   */
  waitForLines(
    stream: StreamName,
    pattern: RegExp,
    options: WaitForLinesOptions = {},
  ): Promise<RegExpExecArray[]> {
    const { count = 1, timeoutMs = DEFAULT_WAIT_MS } = options;
    const matches: RegExpExecArray[] = [];
    for (const line of this[stream]) {
      const match = pattern.exec(line);
      if (match !== null) matches.push(match);
    }
    if (matches.length >= count) {
      return Promise.resolve(matches.slice(0, count));
    }
    if (this.#ended.has(stream)) {
      return Promise.reject(
        this.#noLine({ stream, pattern }, "the stream ended"),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: LineWaiter = {
        stream,
        pattern,
        matches,
        count,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((other) => other !== waiter);
          reject(this.#noLine({ stream, pattern }, `${timeoutMs} ms passed`));
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Writes `text` to stdin (spawned with `stdin: true`). */
  async write(text: string): Promise<void> {
    if (this.#stdin === undefined) throw new TypeError("Stdin is not piped");
    await this.#stdin.write(new TextEncoder().encode(text));
  }

  /** Closes stdin, which the process reads as the end of its input. */
  async closeStdin(): Promise<void> {
    if (this.#stdin === undefined || this.#stdinClosed) return;
    this.#stdinClosed = true;
    await this.#stdin.close().catch(() => {});
  }

  /** Sends `signal` to the process. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    this.#child.kill(signal);
  }

  /**
   * Waits for the process to exit and its output to be read.
   *
   * @param timeoutMs How long to wait before killing it and failing.
   * @returns The exit status and every line of output.
   */
  async finished(timeoutMs = DEFAULT_WAIT_MS): Promise<Finished> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const outcome = await Promise.race([
      Promise.all([this.#child.status, this.#readers]),
      timedOut,
    ]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      await this.#forceStop();
      throw new Error(
        `Process did not exit within ${timeoutMs} ms\n${this.#transcript()}`,
      );
    }
    const [status] = outcome;
    return {
      code: status.code,
      stdout: [...this.stdout],
      stderr: [...this.stderr],
    };
  }

  /** Kills the process if it still runs and waits until its resources are released. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#forceStop();
  }

  async #forceStop(): Promise<void> {
    if (this.#status === undefined) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // It exited between the check and the kill.
      }
    }
    await this.closeStdin();
    await this.#child.status;
    await this.#readers;
  }

  async #collect(
    stream: StreamName,
    readable: ReadableStream<Uint8Array>,
  ): Promise<void> {
    let pending = "";
    for await (const chunk of readable.pipeThrough(new TextDecoderStream())) {
      const parts = (pending + chunk).split("\n");
      pending = parts.pop() ?? "";
      for (const line of parts) this.#addLine(stream, line.replace(/\r$/, ""));
    }
    if (pending !== "") this.#addLine(stream, pending);
    this.#ended.add(stream);
    for (const waiter of this.#waiters.filter((w) => w.stream === stream)) {
      clearTimeout(waiter.timer);
      waiter.reject(this.#noLine(waiter, "the stream ended"));
    }
    this.#waiters = this.#waiters.filter((w) => w.stream !== stream);
  }

  #addLine(stream: StreamName, line: string): void {
    this[stream].push(line);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (waiter.stream !== stream) return true;
      const match = waiter.pattern.exec(line);
      if (match === null) return true;
      waiter.matches.push(match);
      if (waiter.matches.length < waiter.count) return true;
      clearTimeout(waiter.timer);
      waiter.resolve(waiter.matches);
      return false;
    });
  }

  #noLine(
    { stream, pattern }: { stream: StreamName; pattern: RegExp },
    reason: string,
  ): Error {
    return new Error(
      `No ${stream} line matched ${pattern} before ${reason}\n${this.#transcript()}`,
    );
  }

  #transcript(): string {
    return `stdout:\n${this.stdout.join("\n")}\nstderr:\n${
      this.stderr.join("\n")
    }`;
  }
}

/**
 * Runs `deno` with `args` to the end.
 *
 * @param args The arguments after `deno`.
 * @param input What to write to stdin before closing it; nothing if omitted.
 * @returns The exit status and the output lines.
 */
export async function runDeno(
  args: string[],
  input?: string,
): Promise<Finished> {
  await using process = DenoProcess.spawn(args, {
    stdin: input !== undefined,
  });
  if (input !== undefined) {
    await process.write(input);
    await process.closeStdin();
  }
  return await process.finished();
}

/** A server subprocess and the address it reported once it was listening. */
export interface ServerProcess extends AsyncDisposable {
  /** The subprocess. */
  process: DenoProcess;
  /** Every `host:port` it reported, in order. */
  addresses: string[];
}

const SERVING = /^Serving gRPC on (127\.0\.0\.1:\d+)$/;

/**
 * Starts a server subprocess and waits until it has printed a `Serving gRPC on` line for
 * each of `expectedAddresses` ports.
 *
 * @param args The arguments after `deno`.
 * @param expectedAddresses How many `Serving gRPC on` lines to wait for.
 * @returns The process and its addresses; disposing of it kills the process if it still runs.
 */
export async function startServerProcess(
  args: string[],
  expectedAddresses = 1,
): Promise<ServerProcess> {
  const process = DenoProcess.spawn(args);
  try {
    const matches = await process.waitForLines("stdout", SERVING, {
      count: expectedAddresses,
    });
    return {
      process,
      addresses: matches.map((match) => match[1]!),
      [Symbol.asyncDispose]: () => process[Symbol.asyncDispose](),
    };
  } catch (error) {
    await process[Symbol.asyncDispose]();
    throw error;
  }
}

/**
 * A port on 127.0.0.1 that nothing listened on a moment ago, taken from below Linux's
 * ephemeral range (32768-60999): a port the kernel hands out for port 0 or for an outgoing
 * connection can be taken again by any connection before the test binds it (a server
 * restarted on its port behind nginx met EADDRINUSE that way).
 */
export function unusedPort(): number {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch {
      // In use: try another.
    }
  }
  throw new Error("Found no unused port from 20000 to 31999 in 100 tries");
}

/**
 * Starts `grpc-stream serve` with `args` as the documented permissions allow, and waits for
 * its `Serving gRPC on` lines.
 *
 * @param args The arguments after `serve`.
 * @param expectedAddresses How many `Serving gRPC on` lines to wait for.
 * @returns The process and its addresses; disposing of it kills the process if it still runs.
 */
export function startCliServer(
  args: string[],
  expectedAddresses = 1,
): Promise<ServerProcess> {
  return startServerProcess(
    ["run", ...RUN_PERMISSIONS, CLI, "serve", ...args],
    expectedAddresses,
  );
}
