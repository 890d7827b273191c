/**
 * Independent gRPC implementations for the interop tests: `buf` (Go's gRPC and TLS, from the
 * npm package `@bufbuild/buf` pinned in deno.json's `buf` task) and grpc-js under Node (OpenSSL's TLS),
 * installed from npm into a temporary directory. Neither needs anything but Deno, `node`,
 * and the npm registry (or Deno's cache of it).
 *
 * @module
 */
import denoConfig from "../../deno.json" with { type: "json" };
import { DenoProcess, type Finished } from "./subprocess.ts";
import { type TempDirectory, tempDirectory } from "./certificates.ts";

/** The checkout, whose deno.json pins the version of buf. */
export const ROOT: string = decodeURIComponent(
  new URL("../../", import.meta.url).pathname,
);

/** The checkout's `proto/` directory. */
export const PROTO_DIR: string = `${ROOT}proto`;

/**
 * `deno` arguments that run buf, those of `deno task buf` itself: buf stays out of the
 * lockfile (`--no-lock`), so that a user's first run does not download it.
 */
const BUF: string[] = denoConfig.tasks.buf.split(" ").slice(1);

/**
 * Starts `buf` with `args` in the checkout.
 *
 * @param args The arguments after `buf`.
 * @param stdin Whether to keep stdin open for writing.
 * @returns The running process.
 */
export function spawnBuf(args: string[], stdin = false): DenoProcess {
  return DenoProcess.spawn([...BUF, ...args], { cwd: ROOT, stdin });
}

/**
 * Runs `buf` with `args` to the end.
 *
 * @param args The arguments after `buf`.
 * @param input What to write to stdin before closing it.
 * @returns The exit status and the output lines.
 */
export async function buf(args: string[], input?: string): Promise<Finished> {
  await using process = spawnBuf(args, input !== undefined);
  if (input !== undefined) {
    await process.write(input);
    await process.closeStdin();
  }
  return await process.finished();
}

/** `buf curl` with gRPC over plaintext HTTP/2, as the original Go demo served it. */
export const CURL_H2C = [
  "curl",
  "--protocol",
  "grpc",
  "--http2-prior-knowledge",
];

/**
 * The JSON values in `lines`, which `buf curl` prints one after another, pretty-printed: each
 * starts with a line `{` and ends with a line `}`. Other lines are skipped.
 */
export function jsonValues(lines: readonly string[]): unknown[] {
  const values: unknown[] = [];
  let current: string[] | undefined;
  for (const line of lines) {
    if (current === undefined) {
      if (line === "{") current = [line];
      continue;
    }
    current.push(line);
    if (line === "}") {
      values.push(JSON.parse(current.join("\n")));
      current = undefined;
    }
  }
  return values;
}

/** What the Node client prints for one call. */
export interface NodeCallResult {
  /** `pow`, `sum` or `sqrt`. */
  call: string;
  /** The replies, when the call succeeded (int64 as decimal strings). */
  values?: (string | number)[];
  /** The status, when it failed. */
  error?: { code: string; details: string };
}

/** Settings of one run of the Node client: see tests/fixtures/node_client.cjs. */
export interface NodeClientConfig {
  /** `host:port` of the server. */
  address: string;
  /** A CA file to trust. */
  ca?: string;
  /** A client certificate file, for mutual TLS. */
  cert?: string;
  /** The key file of `cert`. */
  key?: string;
  /** Plaintext instead of TLS. */
  insecure?: boolean;
  /** Metadata sent with every call. */
  metadata?: Record<string, string>;
}

const NODE_PACKAGE = {
  private: true,
  dependencies: {
    "@grpc/grpc-js": "1.14.7",
    "@grpc/proto-loader": "0.8.1",
  },
};

/** grpc-js 1.14.7 installed for Node in a temporary directory, removed on disposal. */
export class NodeGrpcJs implements AsyncDisposable {
  readonly #directory: TempDirectory;

  private constructor(directory: TempDirectory) {
    this.#directory = directory;
  }

  /**
   * Installs grpc-js and proto-loader from npm with `deno install` (a `node_modules`
   * directory Node can use), next to a copy of the Node client.
   */
  static async install(): Promise<NodeGrpcJs> {
    const directory = await tempDirectory();
    try {
      const path = directory.path;
      await Deno.writeTextFile(
        `${path}/package.json`,
        JSON.stringify(NODE_PACKAGE),
      );
      await Deno.writeTextFile(
        `${path}/deno.json`,
        JSON.stringify({ nodeModulesDir: "manual" }),
      );
      await Deno.copyFile(
        `${ROOT}tests/fixtures/node_client.cjs`,
        `${path}/node_client.cjs`,
      );
      await using install = DenoProcess.spawn(["install"], { cwd: path });
      const { code, stderr } = await install.finished(60_000);
      if (code !== 0) {
        throw new Error(`deno install failed: ${stderr.join("\n")}`);
      }
      return new NodeGrpcJs(directory);
    } catch (error) {
      await directory[Symbol.asyncDispose]();
      throw error;
    }
  }

  /**
   * Calls Pow(2, count 4), Sum(1, 2, 3) and Sqrt(4, 9) with grpc-js under Node.
   *
   * @returns One result per call, in that order.
   */
  async run(config: NodeClientConfig): Promise<NodeCallResult[]> {
    const { code, stdout, stderr } = await new Deno.Command("node", {
      args: [
        "--no-deprecation",
        "node_client.cjs",
        JSON.stringify({ ...config, protoDir: PROTO_DIR }),
      ],
      cwd: this.#directory.path,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    if (code !== 0) {
      throw new Error(`node failed (${code}): ${text.decode(stderr)}`);
    }
    return text.decode(stdout).trim().split("\n").map((line) =>
      JSON.parse(line) as NodeCallResult
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#directory[Symbol.asyncDispose]();
  }
}
