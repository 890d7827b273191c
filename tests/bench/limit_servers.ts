/**
 * The processes of the limit section (`limit.ts`): the grpc-go server and load client built
 * in GOPATH mode against Debian's `golang-google-grpc-dev`, the servers of each stack started
 * in turn, and a load client run for the JSON line it prints.
 *
 * @module
 */
import {
  BENCH_DIRECTORY,
  PROJECT_DIRECTORY,
  RUN_PERMISSIONS,
} from "./processes.ts";
import { readProcFile } from "./proc.ts";
import type { ClientResult, Shape } from "./common.ts";

/** Where the Go sources are (a GOPATH of their own). */
const GO_PATH = new URL("./go/", import.meta.url).pathname;
const DEBIAN_GOCODE = "/usr/share/gocode";
const CLI = new URL("../../cli.ts", import.meta.url).href;
const INSTALL_HINT =
  "apt-get install golang-go golang-google-grpc-dev (grpc-go in GOPATH mode)";

/** The built Go programs, or why there are none. */
export type GoPrograms = { server: string; load: string } | { missing: string };

/** One server of the section, and the stack it is. */
export type ServerKind =
  | "ours"
  | "oursNodeHttp2"
  | "grpcJs"
  | "grpcGo"
  | "serveLogged"
  | "serveQuiet"
  | "serveWorkers"
  | "floor"
  | "shortFloor"
  | "rawFloor";

/** How many workers `serveWorkers` runs: one per core, the fair match for grpc-go's server. */
export const BENCH_WORKERS: number = Math.max(1, navigator.hardwareConcurrency);

/** How the tables and the progress name each server. */
export const SERVER_LABELS: Record<ServerKind, string> = {
  ours: "our server (startServer)",
  oursNodeHttp2:
    "our server (startServer) on node:http2 (GRPC_STREAM_HTTP2=node)",
  grpcJs: "plain grpc-js server under Deno",
  grpcGo: "grpc-go server",
  serveLogged: "grpc-stream serve (default --log messages)",
  serveQuiet: "grpc-stream serve --log none",
  serveWorkers: `grpc-stream serve --workers ${BENCH_WORKERS} --log none`,
  floor:
    "bare node:http2 Sum server under Deno, frames from onread (floor_server.ts)",
  shortFloor:
    "bare node:http2 server under Deno answering short calls (short_floor_server.ts)",
  rawFloor:
    "hand-written HTTP/2 over node:net under Deno answering short calls (raw_h2_floor_server.ts)",
};

async function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ success: boolean; text: string }> {
  try {
    const output = await new Deno.Command(command, {
      args,
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      success: output.success,
      text: decoder.decode(output.stdout) + decoder.decode(output.stderr),
    };
  } catch (error) {
    return { success: false, text: String(error) };
  }
}

/** Builds the grpc-go server and load client, or says what is missing. */
export async function buildGoPrograms(): Promise<GoPrograms> {
  const version = await run("go", ["version"]);
  if (!version.success) return { missing: `No go command: ${INSTALL_HINT}` };
  const directory = (await run("mktemp", ["-d"])).text.trim();
  if (directory === "") return { missing: "mktemp -d failed" };
  const env = {
    GOPATH: `${GO_PATH}:${DEBIAN_GOCODE}`,
    GO111MODULE: "off",
    GOFLAGS: "",
  };
  const programs = {
    server: `${directory}/streambench-server`,
    load: `${directory}/streambench-load`,
  };
  for (const [name, output] of Object.entries(programs)) {
    const built = await run(
      "go",
      ["build", "-o", output, `streambench/${name}`],
      env,
    );
    if (!built.success) {
      return {
        missing: `Building the grpc-go ${name} failed (${INSTALL_HINT}): ${
          built.text.trim().split("\n").slice(0, 3).join(" ")
        }`,
      };
    }
  }
  return programs;
}

/** A server process of the section. */
export class Server implements AsyncDisposable {
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  readonly #drained: Promise<unknown>;

  private constructor(
    child: Deno.ChildProcess,
    { port, drained }: { port: number; drained: Promise<unknown> },
  ) {
    this.#child = child;
    this.port = port;
    this.#drained = drained;
  }

  static async start(kind: ServerKind, go: GoPrograms): Promise<Server> {
    let command = Deno.execPath();
    let args: string[];
    const env: Record<string, string> = { NO_COLOR: "1" };
    switch (kind) {
      case "oursNodeHttp2":
        env.GRPC_STREAM_HTTP2 = "node";
        args = ["run", "--quiet", ...RUN_PERMISSIONS, bench("our_server.ts")];
        break;
      case "ours":
        args = ["run", "--quiet", ...RUN_PERMISSIONS, bench("our_server.ts")];
        break;
      case "grpcJs":
        args = [
          "run",
          "--quiet",
          ...RUN_PERMISSIONS,
          bench("baseline_server.ts"),
        ];
        break;
      case "floor":
        args = ["run", "--quiet", ...RUN_PERMISSIONS, bench("floor_server.ts")];
        break;
      case "shortFloor":
        args = [
          "run",
          "--quiet",
          ...RUN_PERMISSIONS,
          bench("short_floor_server.ts"),
        ];
        break;
      case "rawFloor":
        args = [
          "run",
          "--quiet",
          ...RUN_PERMISSIONS,
          bench("raw_h2_floor_server.ts"),
        ];
        break;
      case "grpcGo":
        if ("missing" in go) throw new Error(go.missing);
        command = go.server;
        args = [];
        break;
      case "serveLogged":
      case "serveQuiet":
        args = [
          "run",
          "--quiet",
          ...RUN_PERMISSIONS,
          CLI,
          "serve",
          "--port",
          "0",
          "--grace-period",
          "0",
          ...(kind === "serveQuiet" ? ["--log", "none"] : []),
        ];
        break;
      case "serveWorkers":
        args = [
          "run",
          "--quiet",
          // The primary starts the workers: Deno's own executable and the whole environment
          // (a second --allow-env would not widen the first).
          "--allow-net=127.0.0.1",
          "--allow-env",
          `--allow-run=${Deno.execPath()}`,
          CLI,
          "serve",
          "--port",
          "0",
          "--grace-period",
          "0",
          "--log",
          "none",
          "--workers",
          String(BENCH_WORKERS),
        ];
        break;
    }
    const child = new Deno.Command(command, {
      args,
      cwd: PROJECT_DIRECTORY,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      env,
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    // The first line that names the port: `serve --workers` says which workers started first.
    const portLine = /^(?:\{.*"port":\d+.*|Serving gRPC on \S+:\d+)$/m;
    while (!portLine.test(text)) {
      const { done, value } = await reader.read();
      if (done) break;
      text += value;
    }
    clearTimeout(timer);
    const first = portLine.exec(text)?.[0] ?? text.split("\n")[0] ?? "";
    const port = Number(
      /"port":(\d+)/.exec(first)?.[1] ?? /:(\d+)$/.exec(first)?.[1],
    );
    // Read the rest as a terminal would, so a logging server writes to a live reader.
    const drained = (async () => {
      while (!(await reader.read()).done) {
        // Discarded.
      }
    })();
    if (!Number.isInteger(port)) {
      try {
        child.kill("SIGKILL");
      } catch {
        // It exited by itself: a server that fails to start usually does.
      }
      await child.status;
      throw new Error(`${SERVER_LABELS[kind]} did not start: ${first}`);
    }
    return new Server(child, { port, drained });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * The CPU time (user and system) the server has used so far, in seconds: its process's and
   * its child processes' (the workers of `serve --workers`), from `/proc/<pid>/stat`.
   */
  async cpuSeconds(): Promise<number> {
    const pid = this.#child.pid;
    const children = (await run("ps", ["-o", "pid=", "--ppid", String(pid)]))
      .text.trim().split(/\s+/).filter((id) => id !== "");
    let total = 0;
    for (const id of [String(pid), ...children]) {
      const stat = await readProcFile(`${id}/stat`);
      // The command name (field 2) is in parentheses and may hold spaces: count from after it.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // utime and stime, fields 14 and 15, are the 12th and 13th after the name.
      total += (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    }
    return total;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#child.stdin.close().catch(() => {});
    if (this.#child.pid !== undefined) {
      // `serve` stops on a signal, the others when their stdin ends.
      try {
        this.#child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 5_000);
    await this.#child.status;
    clearTimeout(timer);
    await this.#drained;
  }
}

/** Clock ticks per second, the unit of `/proc/<pid>/stat`'s times (100 on Linux). */
const CLOCK_TICKS = 100;

/** The URL of a benchmark program beside this file. */
export function bench(program: string): string {
  return new URL(program, BENCH_DIRECTORY).href;
}

/** How long a load client may run. */
interface LoadOptions {
  /**
   * When to kill it, in ms.
   *
   * @default {120_000}
   */
  limitMs?: number;
}

/** Runs a load client and parses the JSON line it prints. */
export async function runLoad<Result>(
  command: string,
  args: string[],
  options: LoadOptions = {},
): Promise<Result | string> {
  const { limitMs = 120_000 } = options;
  const output = await new Deno.Command(command, {
    args,
    cwd: PROJECT_DIRECTORY,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(limitMs),
  }).output().catch((error: unknown) => error);
  if (output instanceof Error || !(output as Deno.CommandOutput).stdout) {
    return `Load client failed: ${String(output)}`;
  }
  const { stdout, stderr } = output as Deno.CommandOutput;
  const lines = new TextDecoder().decode(stdout).trim().split("\n");
  const last = lines.at(-1) ?? "";
  if (!last.startsWith("{")) {
    return `Load client printed no result: ${
      new TextDecoder().decode(stderr).trim().split("\n").at(-1)
    }`;
  }
  return JSON.parse(last) as Result;
}

/** What one run of grpc-go's short-call load client (`load short`) makes. */
export interface ShortLoad {
  /** `pow`, `sum` or `sqrt`. */
  shape: string;
  /** The server's `host:port`. */
  address: string;
  /** Calls in flight at once. */
  inflight: string;
  /** Connections they share. */
  connections: string;
  /** How long it runs. */
  seconds: string;
  /** Messages a call carries. */
  messages: string;
}

/**
 * The arguments of grpc-go's load client for a run of short calls.
 *
 * @param run What the run makes.
 * @returns The arguments after the program.
 */
export function shortLoadArgs(run: ShortLoad): string[] {
  return [
    "short",
    run.shape,
    run.address,
    "-inflight",
    run.inflight,
    "-connections",
    run.connections,
    "-seconds",
    run.seconds,
    "-messages",
    run.messages,
  ];
}

/** The stack a server is, as the JSON names it. */
export function stackOf(server: ServerKind): string {
  return server === "grpcGo"
    ? "grpc-go 1.33 (Debian), Go"
    : server === "grpcJs"
    ? "grpc-js handlers under Deno"
    : server === "floor" || server === "shortFloor"
    ? "bare node:http2 under Deno, no gRPC library"
    : server === "rawFloor"
    ? "hand-written HTTP/2 over node:net under Deno, no gRPC library"
    : server === "serveWorkers"
    ? `grpc-stream on grpc-js under Deno, ${BENCH_WORKERS} worker processes`
    : "grpc-stream on grpc-js under Deno";
}

/**
 * Runs grpc-go's load client for one stream call of `count` messages against `address`.
 *
 * @returns Its messages/s, or why it failed.
 */
export async function runStreamLoad(
  load: string,
  call: { shape: Shape; address: string; count: number },
): Promise<{ rate: number } | { failure: string }> {
  const result = await runLoad<ClientResult>(load, [
    "stream",
    call.shape,
    call.address,
    "-count",
    String(call.count),
    "-limit",
    "120",
  ], { limitMs: 180_000 });
  if (typeof result === "string") return { failure: result };
  if (!result.ok) return { failure: result.error ?? "stalled or incomplete" };
  return { rate: result.rate };
}
