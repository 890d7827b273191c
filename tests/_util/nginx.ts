/**
 * What the nginx tests share: `serve` processes as backends, nginx in front of them with the
 * configuration of `docs/scaling.md`, and calls and load through it.
 *
 * @module
 */
import { deepStrictEqual, strictEqual } from "node:assert";
import { GrpcError, type StreamClient } from "../../mod.ts";
import { DenoProcess, RUN_PERMISSIONS, unusedPort } from "./subprocess.ts";

const CLI = new URL("../../cli.ts", import.meta.url).href;
const NGINX = "/usr/sbin/nginx";
/** How long a backend answers, health `NOT_SERVING`, after SIGTERM, as in the docs. */
const DRAIN_PERIOD_MS = 300;

/** The configuration of `docs/scaling.md`, in a test's own directory and ports. */
function nginxConfig(
  dir: string,
  { listenPort, ports, keepaliveRequests }: {
    listenPort: number;
    ports: readonly number[];
    keepaliveRequests: number;
  },
): string {
  const servers = ports.map((port) =>
    `    server 127.0.0.1:${port} max_fails=0;`
  ).join("\n");
  return `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  log_format upstream '$upstream_addr $status';
  access_log ${dir}/access.log upstream;

  upstream grpc_stream {
${servers}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${listenPort} http2;
    keepalive_requests ${keepaliveRequests};
    location / {
      grpc_pass grpc://grpc_stream;
      grpc_next_upstream error timeout;
      grpc_read_timeout 1h;
      grpc_send_timeout 1h;
      client_body_timeout 1h;
    }
  }
}
`;
}

/** Options for {@linkcode startBackend}. */
export interface BackendOptions {
  /**
   * `serve --workers N`; 1 is a lone `serve`.
   *
   * @default {1}
   */
  workers?: number;
}

/** A `serve` subprocess on a fixed port. */
export async function startBackend(
  port: number,
  options: BackendOptions = {},
): Promise<DenoProcess> {
  const workers = options.workers ?? 1;
  const process = DenoProcess.spawn([
    "run",
    // The primary of `serve --workers` runs Deno for each worker, with the whole environment
    // (one --allow-env: a second flag does not widen the first).
    ...(workers === 1 ? RUN_PERMISSIONS : [
      ...RUN_PERMISSIONS.filter((flag) => !flag.startsWith("--allow-env")),
      "--allow-env",
      `--allow-run=${Deno.execPath()}`,
    ]),
    CLI,
    "serve",
    "--port",
    String(port),
    "--drain-period",
    String(DRAIN_PERIOD_MS),
    ...(workers === 1 ? [] : ["--workers", String(workers), "--log", "calls"]),
  ]);
  try {
    // A backend restarted on a machine busy with other tests can take well over the usual
    // 15 s to start; the restart itself is what is under test, not the start-up time.
    await process.waitForLine("stdout", /^Serving gRPC on /, 60_000);
  } catch (error) {
    await process[Symbol.asyncDispose]();
    throw error;
  }
  return process;
}

/** Backends on ports of their own, as {@linkcode startBackends} started them. */
export interface Backends {
  /** The port of each, which it keeps across restarts. */
  ports: number[];
  /** The processes, in the order of `ports`. */
  processes: DenoProcess[];
}

/**
 * Starts `count` backends, each on a free port of its own. A port found free can be taken by
 * another process before the backend binds it (the probe closes it first), so one that is in
 * use by then is traded for another.
 */
export async function startBackends(
  count: number,
  options: BackendOptions = {},
): Promise<Backends> {
  const backends: Backends = { ports: [], processes: [] };
  async function startOne(): Promise<[number, DenoProcess]> {
    for (let attempt = 1;; attempt++) {
      const port = unusedPort();
      if (backends.ports.includes(port)) continue;
      backends.ports.push(port);
      try {
        return [port, await startBackend(port, options)];
      } catch (error) {
        backends.ports.splice(backends.ports.indexOf(port), 1);
        if (attempt === 5 || !String(error).includes("already in use")) {
          throw error;
        }
      }
    }
  }
  const started = await Promise.allSettled(
    Array.from({ length: count }, startOne),
  );
  const processes = started.flatMap((result) =>
    result.status === "fulfilled" ? [result.value] : []
  );
  const failed = started.find((result) => result.status === "rejected");
  if (failed !== undefined) {
    await Promise.all(
      processes.map(([, process]) => process[Symbol.asyncDispose]()),
    );
    throw failed.reason;
  }
  return {
    ports: processes.map(([port]) => port),
    processes: processes.map(([, process]) => process),
  };
}

export interface Nginx extends AsyncDisposable {
  address: string;
  errorLog(): string;
  accessLog(): string[];
}

/** Options for {@linkcode startNginx}. */
export interface NginxOptions {
  /**
   * After how many requests nginx retires a client connection with a GOAWAY.
   *
   * @default {1_000_000} (as docs/scaling.md configures it)
   */
  keepaliveRequests?: number;
}

export async function startNginx(
  ports: readonly number[],
  options: NginxOptions = {},
): Promise<Nginx> {
  const dir = await Deno.makeTempDir({ prefix: "grpc_stream_nginx_" });
  const listenPort = unusedPort();
  const keepaliveRequests = options.keepaliveRequests ?? 1_000_000;
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    nginxConfig(dir, { listenPort, ports, keepaliveRequests }),
  );
  const child = new Deno.Command(NGINX, {
    args: ["-p", dir, "-c", `${dir}/nginx.conf`, "-e", `${dir}/error.log`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream());
  const stderrText = Array.fromAsync(stderr).then((parts) => parts.join(""));
  const address = `127.0.0.1:${listenPort}`;
  async function stop(): Promise<void> {
    try {
      child.kill("SIGQUIT");
    } catch {
      // It has already exited.
    }
    await child.status;
    await stderrText;
    await Deno.remove(dir, { recursive: true });
  }
  for (let attempt = 0;; attempt++) {
    try {
      const connection = await Deno.connect({
        hostname: "127.0.0.1",
        port: listenPort,
      });
      connection.close();
      break;
    } catch (error) {
      if (attempt === 100) {
        await stop();
        throw new Error(`nginx did not start: ${await stderrText}`, {
          cause: error,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    address,
    errorLog: () => Deno.readTextFileSync(`${dir}/error.log`),
    accessLog: () =>
      Deno.readTextFileSync(`${dir}/access.log`).split("\n").filter(Boolean),
    [Symbol.asyncDispose]: stop,
  };
}

export type Kind = "pow" | "sum" | "sqrt";
export const KINDS: readonly Kind[] = ["pow", "sum", "sqrt"];

/** One call of `kind` through `client`, checked for the exact answer. */
export async function call(client: StreamClient, kind: Kind): Promise<void> {
  switch (kind) {
    case "pow":
      deepStrictEqual(await Array.fromAsync(client.pow(3, { count: 4 })), [
        1n,
        3n,
        9n,
        27n,
      ]);
      break;
    case "sum":
      strictEqual(await client.sum([1, 2, 3, 4]), 10n);
      break;
    case "sqrt":
      deepStrictEqual(await Array.fromAsync(client.sqrt([4, 9, 16])), [
        2,
        3,
        4,
      ]);
      break;
  }
}

export interface Load {
  calls: number;
  failures: string[];
  stop(): Promise<void>;
}

/** How {@linkcode runLoad} paces its calls. */
export interface LoadOptions {
  /**
   * How many loops call at once.
   *
   * @default {8}
   */
  workers?: number;
  /**
   * The most calls a second over all loops; each loop starts its next call no sooner than
   * its share of a second after the last began.
   *
   * @default {Infinity} (each loop calls back to back)
   */
  callsPerSecond?: number;
}

/** Loops of calls of the three kinds in turn, until `stop()`. */
export function runLoad(client: StreamClient, options: LoadOptions = {}): Load {
  const { workers = 8, callsPerSecond = Infinity } = options;
  const spacingMs = workers * 1_000 / callsPerSecond;
  let running = true;
  const load: Load = {
    calls: 0,
    failures: [],
    stop: async () => {
      running = false;
      await loops;
    },
  };
  const loops = Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      for (let i = worker; running; i++) {
        const kind = KINDS[i % KINDS.length]!;
        const next = performance.now() + spacingMs;
        try {
          await call(client, kind);
        } catch (error) {
          load.failures.push(
            `${kind}: ${
              error instanceof GrpcError
                ? `${error.codeName}: ${error.details}`
                : String(error)
            }`,
          );
        }
        load.calls++;
        const wait = next - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }),
  );
  return load;
}

export function spread(
  lines: readonly string[],
  ports: readonly number[],
): number[] {
  return ports.map((port) =>
    lines.filter((line) => line.startsWith(`127.0.0.1:${port} 200`)).length
  );
}

/** How long {@linkcode within} waits. */
export interface WithinOptions {
  /**
   * How long the promise may take to settle, in ms.
   *
   * @default {10_000}
   */
  ms?: number;
}

/** `promise`, or a failure naming `what` if it has not settled within `options.ms`. */
export async function within<T>(
  promise: Promise<T>,
  what: string,
  options: WithinOptions = {},
): Promise<T> {
  const { ms = 10_000 } = options;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} hung for ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** A call held open after its first message, until `release()` lets it finish. */
export interface HeldCall {
  kind: "sum" | "sqrt";
  /** The line its backend logs for its first message. */
  line: string;
  release(): void;
  /** The call's outcome: its answer, or the error it ended with. */
  outcome: Promise<unknown>;
  /** Settles once the client has a first answer (a Sqrt's root), or the call has ended. */
  answered: Promise<void>;
}

export function holdCall(
  client: StreamClient,
  { kind, id }: { kind: "sum" | "sqrt"; id: number },
): HeldCall {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  const first = 1000 + id;
  async function* numbers(): AsyncGenerator<number> {
    yield kind === "sqrt" ? first * first : first;
    await released;
    yield kind === "sqrt" ? 4 : 1;
  }
  const { promise: answered, resolve: answer } = Promise.withResolvers<void>();
  async function roots(): Promise<number[]> {
    const roots: number[] = [];
    for await (const root of client.sqrt(numbers())) {
      roots.push(root);
      answer();
    }
    return roots;
  }
  const outcome = kind === "sqrt" ? roots() : client.sum(numbers());
  outcome.catch(() => {}).finally(answer);
  return {
    kind,
    line: kind === "sqrt" ? `Recv Data:${first * first}` : `Recved ${first}`,
    release,
    outcome: outcome.then((answer) => answer, (error) => error),
    answered,
  };
}
