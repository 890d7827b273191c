/**
 * Other gRPC stacks for the interop tests, each a server of the three streaming methods with
 * the project's semantics and a client that makes a list of calls over one connection:
 * grpc-go (Debian's `golang-google-grpc-dev`, built once per source and Go version and kept
 * under the OS temporary directory) and gRPC C-core (Debian's `python3-grpcio`, run with
 * `/usr/bin/python3`). `.ci/run` installs both when missing; docs/interop.md describes them.
 *
 * @module
 */
import { DenoProcess } from "../_util/subprocess.ts";
import type { StatusName } from "../../mod.ts";

const PEERS_DIR = decodeURIComponent(new URL(".", import.meta.url).pathname);

/** Debian's Python, which has python3-grpcio; a `python3` earlier on PATH may not. */
export const PYTHON = "/usr/bin/python3";

/** One call a peer's client makes (docs/interop.md describes each field). */
export interface PeerCall {
  /** Which method. */
  method: "pow" | "sum" | "sqrt";
  /** Pow's base, an int64 in decimal. */
  number?: string;
  /** Pow's count; 0 or absent sends none (the server's 10). */
  count?: number;
  /** Sum's int64s in decimal, or Sqrt's doubles (`"-0"`, `"Infinity"`, `"NaN"` too). */
  numbers?: string[];
  /** Sum of 1, 2, … `upTo`, instead of `numbers`. */
  upTo?: number;
  /** The call's deadline, in milliseconds from its start. */
  timeoutMs?: number;
  /** Cancel the call after receiving (Pow, Sqrt) or sending (Sum) this many messages. */
  cancelAfter?: number;
  /** Keep the request stream open after the numbers, until the call ends. */
  hold?: boolean;
  /** Sqrt: send each number only after the answer to the one before has arrived. */
  interactive?: boolean;
  /** Report only how many replies arrived, not their values. */
  quiet?: boolean;
  /**
   * grpc-go only: SIGKILL the client's own process after receiving (Pow) or sending (Sum,
   * Sqrt) this many messages, as a crash would end it (see {@linkcode killedGoClient}).
   */
  killAfter?: number;
  /** grpc-go only: with `killAfter`, go on with the call this many ms before the kill. */
  killDelayMs?: number;
}

/** How one call of a peer's client ended. */
export interface PeerResult {
  /** The replies that arrived before the status (none reported for a `quiet` call). */
  values?: string[];
  /** How many replies arrived before the status (or before the client cancelled). */
  received: number;
  /** The status, by name. */
  code: StatusName;
  /** The status message. */
  details: string;
}

/** A peer's server, listening on a free port of 127.0.0.1 until disposed of. */
export interface PeerServer extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  readonly address: string;
  /**
   * Waits for the next line of the server's log, after those already matched, that matches
   * `pattern` (each call's end is logged: sent, refused, cancelled).
   */
  waitForLog(pattern: RegExp): Promise<string>;
  /**
   * Waits until the server has logged at least `count` calls.
   *
   * @returns For every call logged so far, in order, the client address it came from: calls
   * on one connection share it.
   */
  callers(count: number): Promise<string[]>;
}

/** Another gRPC stack. */
export interface Peer {
  /** Its name in test names, e.g. `grpc-go`. */
  readonly name: string;
  /** Starts its server. */
  serve(): Promise<PeerServer>;
  /**
   * Makes `calls` with its client, one after another over one connection to `address`.
   *
   * @returns How each call ended, in order.
   */
  call(address: string, calls: readonly PeerCall[]): Promise<PeerResult[]>;
}

const SERVING = /^Serving gRPC on (127\.0\.0\.1:\d+)$/;
const CALL = /^Call \w+ from (\S+)$/;

async function serve(program: string, args: string[]): Promise<PeerServer> {
  const process = DenoProcess.spawn(args, { program });
  try {
    const [match] = await process.waitForLines("stdout", SERVING, {
      timeoutMs: 30_000,
    });
    const matched = new Map<string, number>();
    return {
      address: match![1]!,
      async waitForLog(pattern: RegExp): Promise<string> {
        const count = (matched.get(pattern.source) ?? 0) + 1;
        // A call's end is logged within milliseconds: a missing line fails soon.
        const lines = await process.waitForLines("stderr", pattern, {
          count,
          timeoutMs: 5_000,
        });
        matched.set(pattern.source, count);
        return lines[count - 1]![0];
      },
      async callers(count: number): Promise<string[]> {
        if (count > 0) await process.waitForLines("stderr", CALL, { count });
        return process.stderr.flatMap((line) => CALL.exec(line)?.[1] ?? []);
      },
      [Symbol.asyncDispose]: () => process[Symbol.asyncDispose](),
    };
  } catch (error) {
    await process[Symbol.asyncDispose]();
    throw error;
  }
}

/** Runs a peer's client: `calls` go to its stdin, one result a line comes back. */
async function call(
  { program, args }: { program: string; args: string[] },
  calls: readonly PeerCall[],
): Promise<PeerResult[]> {
  await using process = DenoProcess.spawn(args, { program, stdin: true });
  await process.write(JSON.stringify(calls));
  await process.closeStdin();
  // A 100,000-message Sum from Python takes seconds on a busy machine.
  const { code, stdout, stderr } = await process.finished(120_000);
  if (code !== 0) {
    throw new Error(
      `${program} ${args.join(" ")} exited with ${code}:\n${stderr.join("\n")}`,
    );
  }
  return stdout.filter((line) => line !== "").map((line) =>
    JSON.parse(line) as PeerResult
  );
}

/** Runs a Go tool command in GOPATH mode over Debian's packages. */
async function runGo(
  args: string[],
  cwd?: string,
): Promise<Deno.CommandOutput> {
  try {
    return await new Deno.Command("go", {
      args,
      ...(cwd === undefined ? {} : { cwd }),
      env: {
        GOPATH: `${peerCache()}/gopath:/usr/share/gocode`,
        GO111MODULE: "off",
        GOFLAGS: "",
        ...goCacheEnv(),
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        "go is missing: install golang-go and golang-google-grpc-dev (.ci/run does)",
      );
    }
    throw error;
  }
}

function peerCache(): string {
  return `${Deno.env.get("TMPDIR") ?? "/tmp"}/grpc-stream-peers`;
}

/** Go needs a build cache; where no home or cache directory is set, it goes to ours. */
function goCacheEnv(): Record<string, string> {
  const known = ["GOCACHE", "XDG_CACHE_HOME", "HOME"].some((name) =>
    Deno.env.get(name)
  );
  return known ? {} : { GOCACHE: `${peerCache()}/go-build` };
}

/** Where Debian's grpc-go says which version it is. */
const GRPC_GO_VERSION_FILE =
  "/usr/share/gocode/src/google.golang.org/grpc/version.go";

/**
 * Builds the grpc-go peer unless a binary of the same source, Go and grpc-go is cached.
 *
 * @returns The binary's path.
 */
async function buildGoPeer(): Promise<string> {
  const source = await Deno.readFile(`${PEERS_DIR}go/main.go`);
  const goVersion = await runGo(["env", "GOVERSION"]);
  const grpcVersion = await Deno.readFile(GRPC_GO_VERSION_FILE).catch(
    (error: unknown) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      throw new Error(
        `${GRPC_GO_VERSION_FILE} is missing: install golang-google-grpc-dev (.ci/run does)`,
      );
    },
  );
  const hash = await crypto.subtle.digest(
    "SHA-256",
    new Uint8Array([...source, ...goVersion.stdout, ...grpcVersion]),
  );
  const digest = Array.from(
    new Uint8Array(hash),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
  const directory = peerCache();
  await Deno.mkdir(directory, { recursive: true });
  const binary = `${directory}/go-peer-${digest.slice(0, 16)}`;
  try {
    await Deno.stat(binary);
    return binary;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  // Built aside and renamed, so a concurrent run never executes half a binary.
  const partial = `${binary}.${crypto.randomUUID()}`;
  const build = await runGo(["build", "-o", partial, "."], `${PEERS_DIR}go`);
  if (!build.success) {
    throw new Error(
      `go build of the grpc-go peer failed:\n${
        new TextDecoder().decode(build.stderr)
      }`,
    );
  }
  await Deno.rename(partial, binary);
  return binary;
}

let goPeerBinary: Promise<string> | undefined;

/**
 * The grpc-go peer's binary, built if need be, for its modes beyond `serve` and `client`
 * (`loop`: see tests/peers/go/restart_loop.go).
 *
 * @returns Its path.
 */
export function goPeerProgram(): Promise<string> {
  goPeerBinary ??= buildGoPeer();
  return goPeerBinary;
}

/** grpc-go (Debian's, 1.33 in bookworm), built from tests/peers/go/main.go. */
export const GO_PEER: Peer = {
  name: "grpc-go",
  async serve(): Promise<PeerServer> {
    goPeerBinary ??= buildGoPeer();
    return await serve(await goPeerBinary, ["serve"]);
  },
  async call(address, calls): Promise<PeerResult[]> {
    goPeerBinary ??= buildGoPeer();
    return await call(
      { program: await goPeerBinary, args: ["client", address] },
      calls,
    );
  },
};

/**
 * Runs grpc-go's client for one call with `killAfter`, which SIGKILLs the client in the middle
 * of the call.
 *
 * @returns How many messages the client had sent (Sum, Sqrt) or received (Pow) when it set
 * its kill off.
 */
export async function killedGoClient(
  address: string,
  call: PeerCall,
): Promise<number> {
  goPeerBinary ??= buildGoPeer();
  await using process = DenoProcess.spawn(["client", address], {
    program: await goPeerBinary,
    stdin: true,
  });
  await process.write(JSON.stringify([call]));
  await process.closeStdin();
  const { code, stdout, stderr } = await process.finished(30_000);
  const killed = /^\{"killed":(\d+)\}$/.exec(stdout[0] ?? "");
  // 128 + 9: the shell's and Deno's code for a process ended by SIGKILL.
  if (code !== 137 || killed === null) {
    throw new Error(
      `grpc-go's client was to be killed, but exited with ${code}:\n${
        [...stdout, ...stderr].join("\n")
      }`,
    );
  }
  return Number(killed[1]);
}

const PYTHON_PEER_SCRIPT = `${PEERS_DIR}python/peer.py`;

/** gRPC C-core through python3-grpcio, from tests/peers/python/peer.py. */
export const PYTHON_PEER: Peer = {
  name: "C-core (python3-grpcio)",
  serve(): Promise<PeerServer> {
    return serve(PYTHON, ["-B", PYTHON_PEER_SCRIPT, "serve"]);
  },
  call(address, calls): Promise<PeerResult[]> {
    return call(
      { program: PYTHON, args: ["-B", PYTHON_PEER_SCRIPT, "client", address] },
      calls,
    );
  },
};
