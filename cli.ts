/**
 * The `grpc-stream` command line: serve the three streaming services of the Go streaming
 * article, call them from a shell, or watch the article's three demos run against a server
 * of their own.
 *
 * ```
 * grpc-stream serve [--hostname H] [--port P ...] [--max-pow-count N] [--drain-period MS] [--grace-period MS]
 *                   [--log messages|calls|none]
 *                   [--cert FILE --key FILE [--client-ca FILE]]
 * grpc-stream pow N [--count C]
 * grpc-stream sum [N ...]        (no numbers: read them from stdin)
 * grpc-stream sqrt [X ...]       (no numbers: read stdin, answer each line as it comes)
 * grpc-stream demo [--interval MS]
 * ```
 *
 * Every command takes `--address HOST:PORT` and `--help`; the calling commands take
 * `--tls` or `--ca FILE` (and `--cert FILE --key FILE` for mutual TLS) to call over TLS.
 * The exit status is 0 on success,
 * 1 when a call fails (printed as `error: CODE_NAME: details`), and 2 on a usage error or a
 * word where a number belongs.
 *
 * @example Run the article's three demos against a server on a free port
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env=GRPC_* jsr:@streamrpc/grpc-stream/cli demo
 * ```
 *
 * @example Serve over TLS, and call it trusting the CA that signed the server's certificate
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env=GRPC_* --allow-read=certs jsr:@streamrpc/grpc-stream/cli serve --cert certs/server.crt --key certs/server.key
 * deno run --allow-net=127.0.0.1 --allow-env=GRPC_* --allow-read=certs jsr:@streamrpc/grpc-stream/cli pow 2 --ca certs/ca.crt --address localhost:8082
 * ```
 *
 * @example Serve on the article's ports, then add a stream of numbers from another shell
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env=GRPC_* jsr:@streamrpc/grpc-stream/cli serve
 * seq 1 100000 | deno run --allow-net=127.0.0.1 --allow-env=GRPC_* jsr:@streamrpc/grpc-stream/cli sum
 * ```
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import {
  type ClientOptions,
  createClient,
  DEFAULT_ADDRESSES,
  GrpcError,
  type ServerLogger,
  type ServerTlsOptions,
  startServer,
  type StreamClient,
  type StreamServer,
} from "./mod.ts";
import { LineWriter } from "./cli/line_writer.ts";
import { tracingIsOn } from "./cli/telemetry.ts";

const PROGRAM = "grpc-stream";
const RUN_WITH =
  "deno run --allow-net=127.0.0.1 --allow-env=GRPC_* jsr:@streamrpc/grpc-stream/cli";
const SEED_PORTS = [8081, 8082, 8083];
const DEFAULT_GRACE_PERIOD_MS = 5_000;
const DEFAULT_DEMO_INTERVAL_MS = 100;
const DEMO_GRACE_PERIOD_MS = 1_000;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const MAX_UINT32 = 2 ** 32 - 1;

const EXIT_OK = 0;
const EXIT_CALL_FAILED = 1;
const EXIT_BAD_INPUT = 2;

/** Input the user got wrong, such as a word where a number belongs: exit status 2. */
class InputError extends Error {
  override name = "InputError";
}

/** A command line that does not parse: exit status 2, with the command's usage. */
class UsageError extends InputError {
  override name = "UsageError";
  readonly usage: string;

  constructor(message: string, usage: string) {
    super(message);
    this.usage = usage;
  }
}

const COMMON_OPTIONS = {
  address: { type: "string" },
  help: { type: "boolean", short: "h" },
  tls: { type: "boolean" },
  ca: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  "server-name": { type: "string" },
} as const satisfies ParseArgsOptionsConfig;

const SERVE_OPTIONS = {
  help: COMMON_OPTIONS.help,
  address: { type: "string", multiple: true },
  hostname: { type: "string" },
  port: { type: "string", multiple: true },
  "max-pow-count": { type: "string" },
  "grace-period": { type: "string" },
  "drain-period": { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  "client-ca": { type: "string" },
  log: { type: "string" },
} as const satisfies ParseArgsOptionsConfig;

const POW_OPTIONS = {
  ...COMMON_OPTIONS,
  count: { type: "string" },
} as const satisfies ParseArgsOptionsConfig;

const DEMO_OPTIONS = {
  ...COMMON_OPTIONS,
  interval: { type: "string" },
} as const satisfies ParseArgsOptionsConfig;

/** Every option of every command, so the command can be found wherever it stands. */
const ALL_OPTIONS = {
  ...SERVE_OPTIONS,
  ...POW_OPTIONS,
  ...DEMO_OPTIONS,
} as const satisfies ParseArgsOptionsConfig;

const OVERVIEW_USAGE = `Usage: ${PROGRAM} <command> [options]`;

const OVERVIEW_HELP =
  `${PROGRAM}: serve and call the three kinds of gRPC streaming of the Go streaming article

${OVERVIEW_USAGE}

Commands:
  serve         Serve Pow, Sum and Sqrt (default: 127.0.0.1 ports 8081, 8082 and 8083)
  pow N         Print the powers N^0 … N^9 that Pow streams
  sum [N ...]   Stream integers to Sum and print their sum (no N: read stdin)
  sqrt [X ...]  Stream numbers to Sqrt and print each square root (no X: read stdin)
  demo          Start a server on a free port and run the article's three demos against it

Options:
  --address HOST:PORT  The server to call (serve: where to listen)
  --ca FILE, --tls     Call over TLS (serve: --cert FILE --key FILE); see a command's help
  -h, --help           Show this help, or a command's help: ${PROGRAM} <command> --help

Exit status: 0 on success, 1 when a call fails (error: CODE_NAME: details),
2 on a usage error or a word where a number belongs.

Run it with: ${RUN_WITH} <command>
`;

const SERVE_USAGE =
  `Usage: ${PROGRAM} serve [--hostname HOST] [--port PORT ...] [--max-pow-count N] [--drain-period MS] [--grace-period MS] [--log messages|calls|none] [--cert FILE --key FILE [--client-ca FILE]]`;

const SERVE_HELP =
  `Serve Pow, Sum and Sqrt, each on every port, until SIGINT (Ctrl-C) or SIGTERM.

${SERVE_USAGE}
       ${PROGRAM} serve [--address HOST:PORT ...] [...]

With no options it listens on 127.0.0.1 ports 8081, 8082 and 8083, the ports of the
article's three servers, so the article's unchanged Go clients work against it. It prints
"Serving gRPC on HOST:PORT" for each port once it is listening, then what the article's
servers log. On SIGINT or SIGTERM it stops taking calls, lets calls in flight finish
within the grace period, ends the rest with UNAVAILABLE and exits 0; a second signal
exits at once. With --drain-period it first answers health checks NOT_SERVING for a while.
Besides Pow, Sum and Sqrt it hosts the standard health service (grpc.health.v1.Health)
and server reflection, so tools such as buf curl and grpcurl need no .proto files.

Options:
  --hostname HOST        The address to listen on (default: 127.0.0.1; 0.0.0.0 or :: for
                         every interface, which needs a wider --allow-net)
  --port PORT            A port to listen on; repeat it or give a comma list (default:
                         8081,8082,8083; 0 picks a free port)
  --address HOST:PORT    Hostname and port in one; repeat it for more ports
  --max-pow-count N      The largest count a Pow call may ask for (default: 1000000)
  --drain-period MS      How long to go on answering, health NOT_SERVING, after a
                         shutdown signal before refusing new calls (default: 0)
  --grace-period MS      How long calls in flight may take to finish on shutdown
                         (default: ${DEFAULT_GRACE_PERIOD_MS})
  --log WHAT             What to print: messages (every message received, as the
                         article's servers do), calls (a line when a call starts or ends,
                         and failures) or none (only faults inside the server)
                         (default: messages)
  --cert FILE            Serve over TLS with this certificate chain (PEM); needs --key
  --key FILE             The private key of --cert (PEM)
  --client-ca FILE       Require client certificates signed by these CAs (mutual TLS)
  -h, --help             Show this help

The files need read permission: add --allow-read=FILE,... to the deno run command.
`;

const CLIENT_TLS_HELP = `
TLS (the files need read permission: --allow-read=FILE,...):
  --tls                Call over TLS, trusting Deno's root certificates
  --ca FILE            Call over TLS, trusting the CA certificates in FILE (PEM)
  --cert FILE          The client certificate (PEM) for a server that requires one
  --key FILE           The private key of --cert (PEM)
  --server-name NAME   The name the server's certificate must hold (default: the host
                       of --address)
`;

const POW_USAGE =
  `Usage: ${PROGRAM} pow N [--count C] [--address HOST:PORT] [TLS options]`;

const POW_HELP =
  `Call Pow: print the powers N^0, N^1, … N^(C-1), one a line, as the server streams them.

${POW_USAGE}

N is an int64. Powers that no longer fit in int64 end the call with OUT_OF_RANGE after
the powers that fit.

Options:
  --count C            How many powers (default: 10)
  --address HOST:PORT  The server (default: ${DEFAULT_ADDRESSES.pow})
  -h, --help           Show this help
${CLIENT_TLS_HELP}`;

const SUM_USAGE =
  `Usage: ${PROGRAM} sum [N ...] [--address HOST:PORT] [TLS options]`;

const SUM_HELP =
  `Call Sum: stream integers to the server and print their exact sum.

${SUM_USAGE}

With no N, the integers are read from stdin, separated by spaces or newlines, and sent as
they are read, so "seq 1 100000 | ${PROGRAM} sum" streams. Each N is an int64; write a
negative one as -5.

Options:
  --address HOST:PORT  The server (default: ${DEFAULT_ADDRESSES.sum})
  -h, --help           Show this help
${CLIENT_TLS_HELP}`;

const SQRT_USAGE =
  `Usage: ${PROGRAM} sqrt [X ...] [--address HOST:PORT] [TLS options]`;

const SQRT_HELP =
  `Call Sqrt: stream numbers to the server and print each square root as it arrives.

${SQRT_USAGE}

With no X, the numbers are read from stdin, separated by spaces or newlines, and each
answer is printed as soon as its number is typed. A negative number or NaN ends the call
with INVALID_ARGUMENT (exit status 1) after the answers before it.

Options:
  --address HOST:PORT  The server (default: ${DEFAULT_ADDRESSES.sqrt})
  -h, --help           Show this help
${CLIENT_TLS_HELP}`;

const DEMO_USAGE =
  `Usage: ${PROGRAM} demo [--interval MS] [--address HOST:PORT [TLS options]]`;

const DEMO_HELP =
  `Run the article's three demos and print the lines the article prints.

${DEMO_USAGE}

It starts a server on a free port of 127.0.0.1 and runs, against it, the server-streaming
demo (Pow of 2), the client-streaming demo (Sum of 0 … 9) and the bidirectional demo (Sqrt
of 0 … 9, one number every MS milliseconds). The server's log lines are marked [server].

Options:
  --interval MS        The pause between the numbers of the bidirectional demo
                       (default: ${DEFAULT_DEMO_INTERVAL_MS}; the article waits 1000)
  --address HOST:PORT  Run the demos against this server instead of starting one
  -h, --help           Show this help
${CLIENT_TLS_HELP}`;

/** The subcommands; each parses its own arguments and returns the exit status. */
const COMMANDS: Readonly<Record<string, (args: string[]) => Promise<number>>> =
  {
    serve,
    pow: callPow,
    sum: callSum,
    sqrt: callSqrt,
    demo,
  };

// `parseArgs` reads "-4" as an unknown short option; a marker keeps negative numbers
// positional (and usable as option values) until the numbers are parsed.
const NEGATIVE_NUMBER = /^-(?:\d|\.\d|Infinity$)/;
const NEGATIVE_MARKER = "\u0000";

function protectNegativeNumbers(args: readonly string[]): string[] {
  return args.map((arg) =>
    NEGATIVE_NUMBER.test(arg) ? NEGATIVE_MARKER + arg : arg
  );
}

function unprotect(text: string): string {
  return text.startsWith(NEGATIVE_MARKER) ? text.slice(1) : text;
}

/** The first sentence of a `parseArgs` error, which goes on to explain at length. */
function firstSentence(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const sentence = message.split(/\.(?:\s|$)/)[0] ?? message;
  return sentence.replaceAll(NEGATIVE_MARKER, "");
}

/** What `parseArgs` makes of a command line with `Options`, positionals allowed. */
interface ParsedCommandLine<Options extends ParseArgsOptionsConfig> {
  values: ReturnType<
    typeof parseArgs<{ options: Options; allowPositionals: true; strict: true }>
  >["values"];
  positionals: string[];
}

function parseCommandLine<const Options extends ParseArgsOptionsConfig>(
  args: string[],
  options: Options,
  usage: string,
): ParsedCommandLine<Options> {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(firstSentence(error), usage);
  }
  for (const [name, value] of Object.entries(parsed.values)) {
    if (typeof value === "string") {
      (parsed.values as Record<string, unknown>)[name] = unprotect(value);
    } else if (Array.isArray(value)) {
      (parsed.values as Record<string, unknown>)[name] = value.map((item) =>
        typeof item === "string" ? unprotect(item) : item
      );
    }
  }
  return {
    values: parsed.values,
    positionals: parsed.positionals.map(unprotect),
  };
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;
const SPECIAL_NUMBERS = new Set(["Infinity", "+Infinity", "-Infinity", "NaN"]);

function parseInt64(text: string, what: string): bigint {
  if (!INTEGER.test(text)) {
    throw new InputError(`${what} must be an integer: ${text}`);
  }
  const value = BigInt(text);
  if (value < INT64_MIN || value > INT64_MAX) {
    throw new InputError(`${what} does not fit in int64: ${text}`);
  }
  return value;
}

function parseFloat64(text: string, what: string): number {
  if (!DECIMAL.test(text) && !SPECIAL_NUMBERS.has(text)) {
    throw new InputError(`${what} must be a number: ${text}`);
  }
  return Number(text);
}

function parseWholeNumber(
  text: string,
  what: string,
  min: number,
  max: number,
  usage: string,
): number {
  const value = INTEGER.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(
      `${what} must be an integer from ${min} to ${max}: ${text}`,
      usage,
    );
  }
  return value;
}

/** Runs `parse` on a command-line argument, where bad input is a usage error. */
function asUsageError<Value>(usage: string, parse: () => Value): Value {
  try {
    return parse();
  } catch (error) {
    if (error instanceof InputError && !(error instanceof UsageError)) {
      throw new UsageError(error.message, usage);
    }
    throw error;
  }
}

/** A word read from stdin, with the line it was on for error messages. */
interface Word {
  text: string;
  line: number;
}

/**
 * Yields each whitespace-separated word of `input` as soon as the whitespace after it
 * arrives, so a number typed at a terminal is sent when its line is entered.
 */
async function* readWords(
  input: ReadableStream<Uint8Array>,
): AsyncGenerator<Word> {
  let word = "";
  let line = 1;
  let wordLine = 1;
  for await (const chunk of input.pipeThrough(new TextDecoderStream())) {
    let start = -1;
    for (let index = 0; index < chunk.length; index++) {
      const character = chunk[index]!;
      const isSpace = character === " " || character === "\n" ||
        character === "\t" || character === "\r";
      if (!isSpace) {
        if (start === -1) {
          start = index;
          if (word === "") wordLine = line;
        }
        continue;
      }
      if (start !== -1) {
        word += chunk.slice(start, index);
        start = -1;
      }
      if (word !== "") {
        yield { text: word, line: wordLine };
        word = "";
      }
      if (character === "\n") line += 1;
    }
    if (start !== -1) word += chunk.slice(start);
  }
  if (word !== "") yield { text: word, line: wordLine };
}

async function* readInt64s(
  input: ReadableStream<Uint8Array>,
): AsyncGenerator<bigint> {
  for await (const { text, line } of readWords(input)) {
    yield parseInt64(text, `Number on line ${line} of stdin`);
  }
}

/**
 * The numbers of stdin for `sqrt`. A word that is not a number ends the stream cleanly
 * rather than cancelling the call, so the answers to the numbers before it still arrive;
 * `badInput()` then tells what the word was.
 */
function readFloat64s(input: ReadableStream<Uint8Array>): {
  numbers: AsyncGenerator<number>;
  badInput(): InputError | undefined;
} {
  let badInput: InputError | undefined;
  async function* numbers(): AsyncGenerator<number> {
    for await (const { text, line } of readWords(input)) {
      let number: number;
      try {
        number = parseFloat64(text, `Number on line ${line} of stdin`);
      } catch (error) {
        if (!(error instanceof InputError)) throw error;
        badInput = error;
        return;
      }
      yield number;
    }
  }
  return { numbers: numbers(), badInput: () => badInput };
}

function noteReadingStdin(): void {
  if (Deno.stdin.isTerminal()) {
    console.error(
      "Reading numbers from stdin, one a line; end with Ctrl-D (Ctrl-Z on Windows)",
    );
  }
}

function rejectPositionals(positionals: string[], usage: string): void {
  if (positionals.length > 0) {
    throw new UsageError(`Unexpected argument: ${positionals[0]}`, usage);
  }
}

/** The demo's server log, marked so its lines stand apart from the clients'. */
function prefixedLogger(prefix: string): ServerLogger {
  return {
    info(message: string): void {
      console.log(prefix + message);
    },
    warn(message: string): void {
      console.error(prefix + message);
    },
    error(message: string): void {
      console.error(prefix + message);
    },
  };
}

/** Splits `host:port` or `[v6]:port`. */
function splitAddress(
  address: string,
  usage: string,
): { hostname: string; port: string } {
  const match = /^(?:\[([^\]]+)\]|([^:\[\]]+)):([^:]+)$/.exec(address);
  if (match === null) {
    throw new UsageError(`Address must be HOST:PORT: ${address}`, usage);
  }
  return { hostname: match[1] ?? match[2]!, port: match[3]! };
}

/**
 * Checks the address a client command calls, and its net permission, so that a missing
 * permission reads as one plain line rather than a failed DNS lookup.
 */
async function checkServerAddress(
  address: string,
  usage: string,
): Promise<string> {
  const { hostname, port } = splitAddress(address, usage);
  parsePort(port, usage);
  const host = hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
  const descriptor = { name: "net", host } as const;
  let { state } = await Deno.permissions.query(descriptor);
  if (state === "prompt") {
    ({ state } = await Deno.permissions.request(descriptor));
  }
  if (state !== "granted") {
    throw new Error(
      `Requires net access to ${host}: run again with --allow-net=${
        hostname.includes(":") ? `[${hostname}]` : hostname
      }`,
    );
  }
  return address;
}

/** Reads a PEM file named on the command line, asking Deno for read access first. */
async function readPemFile(path: string, option: string): Promise<string> {
  const descriptor = { name: "read", path } as const;
  let { state } = await Deno.permissions.query(descriptor);
  if (state === "prompt") {
    ({ state } = await Deno.permissions.request(descriptor));
  }
  if (state !== "granted") {
    throw new Error(
      `Requires read access to ${path} (--${option}): run again with --allow-read=${path}`,
    );
  }
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new InputError(`File of --${option} not found: ${path}`);
    }
    throw error;
  }
}

/** The TLS options of the calling commands, read into {@linkcode ClientOptions}. */
async function clientOptions(
  values: {
    tls?: boolean | undefined;
    ca?: string | undefined;
    cert?: string | undefined;
    key?: string | undefined;
    "server-name"?: string | undefined;
  },
  usage: string,
): Promise<ClientOptions> {
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError("Use --cert and --key together", usage);
  }
  const useTls = values.tls === true || values.ca !== undefined ||
    values.cert !== undefined || values["server-name"] !== undefined;
  if (!useTls) return {};
  if (values["server-name"] === "") {
    throw new UsageError("Server name must not be empty", usage);
  }
  return {
    tls: {
      ...(values.ca === undefined
        ? {}
        : { ca: await readPemFile(values.ca, "ca") }),
      ...(values.cert === undefined ? {} : {
        cert: await readPemFile(values.cert, "cert"),
        key: await readPemFile(values.key!, "key"),
      }),
      ...(values["server-name"] === undefined
        ? {}
        : { serverName: values["server-name"] }),
    },
  };
}

/** The TLS options of `serve`, read into {@linkcode ServerTlsOptions}. */
async function serverTlsOptions(
  values: {
    cert?: string | undefined;
    key?: string | undefined;
    "client-ca"?: string | undefined;
  },
  usage: string,
): Promise<ServerTlsOptions | undefined> {
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError("Use --cert and --key together", usage);
  }
  if (values.cert === undefined) {
    if (values["client-ca"] !== undefined) {
      throw new UsageError("Use --client-ca with --cert and --key", usage);
    }
    return undefined;
  }
  return {
    cert: await readPemFile(values.cert, "cert"),
    key: await readPemFile(values.key!, "key"),
    ...(values["client-ca"] === undefined
      ? {}
      : { ca: await readPemFile(values["client-ca"], "client-ca") }),
  };
}

function parsePort(text: string, usage: string): number {
  return parseWholeNumber(text, "Port", 0, 65_535, usage);
}

interface ListenPlan {
  hostname: string;
  ports: number[];
}

function planListening(
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
      ports: addresses.map((address) => parsePort(address.port, usage)),
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
  return { hostname, ports };
}

/** Resolves with the first SIGINT or SIGTERM; a second one exits at once. */
function listenForShutdown(): {
  signal: Promise<Deno.Signal>;
  stopListening(): void;
} {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  const { promise, resolve } = Promise.withResolvers<Deno.Signal>();
  let received = false;
  const listeners = signals.map((signal) => {
    function onSignal(): void {
      if (received) {
        console.error(`Received ${signal} again: stopping at once`);
        Deno.exit(signal === "SIGINT" ? 130 : 143);
      }
      received = true;
      resolve(signal);
    }
    Deno.addSignalListener(signal, onSignal);
    return { signal, onSignal };
  });
  function stopListening(): void {
    for (const { signal, onSignal } of listeners) {
      Deno.removeSignalListener(signal, onSignal);
    }
  }
  return { signal: promise, stopListening };
}

async function serve(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    args,
    SERVE_OPTIONS,
    SERVE_USAGE,
  );
  if (values.help) return printHelp(SERVE_HELP);
  rejectPositionals(positionals, SERVE_USAGE);
  const { hostname, ports } = planListening(values, SERVE_USAGE);
  const maxPowCount = values["max-pow-count"] === undefined
    ? undefined
    : parseWholeNumber(
      values["max-pow-count"],
      "Max pow count",
      1,
      MAX_UINT32,
      SERVE_USAGE,
    );
  const gracePeriod = values["grace-period"] === undefined
    ? DEFAULT_GRACE_PERIOD_MS
    : parseWholeNumber(
      values["grace-period"],
      "Grace period",
      0,
      2 ** 31 - 1,
      SERVE_USAGE,
    );

  const drainPeriod = values["drain-period"] === undefined
    ? 0
    : parseWholeNumber(
      values["drain-period"],
      "Drain period",
      0,
      2 ** 31 - 1,
      SERVE_USAGE,
    );

  const log = parseLogChoice(values.log, SERVE_USAGE);

  const tls = await serverTlsOptions(values, SERVE_USAGE);

  // Lines are gathered and written once per turn of the event loop, so logging every number
  // does not cost a write per number, and a reader that goes away does not stop the server.
  // Under OTEL_DENO=true each line goes through console instead: Deno makes a console line a
  // log record of the span active when it is written, and a gathered line would lose its call.
  const throughConsole = tracingIsOn();
  const out = new LineWriter(Deno.stdout);
  const err = new LineWriter(Deno.stderr);
  function ignoreLine(): void {}
  const logger: ServerLogger = {
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
  const shutdown = listenForShutdown();
  let server: StreamServer;
  try {
    server = await startServer({
      hostname,
      port: ports,
      gracePeriod,
      drainPeriod,
      // Info to stdout and failures to stderr, as the article's servers print them.
      logger,
      logMessages: log === "messages",
      ...(maxPowCount === undefined ? {} : { maxPowCount }),
      ...(tls === undefined ? {} : { tls }),
    });
  } catch (error) {
    shutdown.stopListening();
    throw error;
  }
  for (const address of server.addresses) {
    out.line(`Serving gRPC on ${address}`);
  }
  const signal = await shutdown.signal;
  err.line(
    `Received ${signal}: letting calls in flight finish for up to ${gracePeriod} ms`,
  );
  await server.close();
  shutdown.stopListening();
  err.line("Server stopped");
  await Promise.all([out.flush(), err.flush()]);
  return EXIT_OK;
}

/** What `serve --log` may say. */
type LogChoice = "messages" | "calls" | "none";

function parseLogChoice(
  value: string | undefined,
  usage: string,
): LogChoice {
  if (value === undefined) return "messages";
  if (value === "messages" || value === "calls" || value === "none") {
    return value;
  }
  throw new UsageError(
    `Log must be messages, calls or none: ${value}`,
    usage,
  );
}

async function callPow(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    args,
    POW_OPTIONS,
    POW_USAGE,
  );
  if (values.help) return printHelp(POW_HELP);
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? "Missing the base N"
        : `Unexpected argument: ${positionals[1]}`,
      POW_USAGE,
    );
  }
  const base = asUsageError(
    POW_USAGE,
    () => parseInt64(positionals[0]!, "Base"),
  );
  const count = values.count === undefined
    ? undefined
    : parseWholeNumber(values.count, "Count", 1, MAX_UINT32, POW_USAGE);
  const options = await clientOptions(values, POW_USAGE);
  using client = createClient(
    await checkServerAddress(
      values.address ?? DEFAULT_ADDRESSES.pow,
      POW_USAGE,
    ),
    options,
  );
  const powers = client.pow(base, count === undefined ? {} : { count });
  for await (const power of powers) console.log(power.toString());
  return EXIT_OK;
}

async function callSum(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    args,
    COMMON_OPTIONS,
    SUM_USAGE,
  );
  if (values.help) return printHelp(SUM_HELP);
  const numbersFromArgs = positionals.map((text) =>
    asUsageError(SUM_USAGE, () => parseInt64(text, "Number"))
  );
  const options = await clientOptions(values, SUM_USAGE);
  const address = await checkServerAddress(
    values.address ?? DEFAULT_ADDRESSES.sum,
    SUM_USAGE,
  );
  if (numbersFromArgs.length === 0) noteReadingStdin();
  const numbers = numbersFromArgs.length > 0
    ? numbersFromArgs
    : readInt64s(Deno.stdin.readable);
  using client = createClient(address, options);
  console.log((await client.sum(numbers)).toString());
  return EXIT_OK;
}

async function callSqrt(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    args,
    COMMON_OPTIONS,
    SQRT_USAGE,
  );
  if (values.help) return printHelp(SQRT_HELP);
  const numbersFromArgs = positionals.map((text) =>
    asUsageError(SQRT_USAGE, () => parseFloat64(text, "Number"))
  );
  const options = await clientOptions(values, SQRT_USAGE);
  const address = await checkServerAddress(
    values.address ?? DEFAULT_ADDRESSES.sqrt,
    SQRT_USAGE,
  );
  if (numbersFromArgs.length === 0) noteReadingStdin();
  const stdin = numbersFromArgs.length > 0
    ? undefined
    : readFloat64s(Deno.stdin.readable);
  using client = createClient(address, options);
  for await (const root of client.sqrt(stdin?.numbers ?? numbersFromArgs)) {
    console.log(formatRoot(root));
  }
  const badInput = stdin?.badInput();
  if (badInput !== undefined) throw badInput;
  return EXIT_OK;
}

/** Like `String`, but keeps the sign of `-0`, whose square root is `-0`. */
function formatRoot(root: number): string {
  return Object.is(root, -0) ? "-0" : String(root);
}

function delay(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/** The article's bidirectional client sends 0 … 9 with a pause between the numbers. */
async function* zeroToNine(interval: number): AsyncGenerator<number> {
  for (let number = 0; number < 10; number++) {
    if (number > 0) await delay(interval);
    yield number;
  }
}

/** The three demos of the article, with the lines its Go clients print. */
async function runDemos(client: StreamClient, interval: number): Promise<void> {
  console.log("\n--- Server streaming: Pow(2) streams the powers of 2 ---");
  for await (const power of client.pow(2)) console.log(`Recv data:${power}`);
  console.log("server closed");

  console.log("\n--- Client streaming: Sum(0 … 9) streams ten numbers ---");
  const total = await client.sum([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  console.log(`sum: ${total}`);

  console.log(
    `\n--- Bidirectional streaming: Sqrt(0 … 9), one number every ${interval} ms ---`,
  );
  for await (const root of client.sqrt(zeroToNine(interval))) {
    console.log(`Recv Data:${root}`);
  }
  console.log("Server Closed");
}

async function demo(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    args,
    DEMO_OPTIONS,
    DEMO_USAGE,
  );
  if (values.help) return printHelp(DEMO_HELP);
  rejectPositionals(positionals, DEMO_USAGE);
  const interval = values.interval === undefined
    ? DEFAULT_DEMO_INTERVAL_MS
    : parseWholeNumber(
      values.interval,
      "Interval",
      0,
      2 ** 31 - 1,
      DEMO_USAGE,
    );
  const options = await clientOptions(values, DEMO_USAGE);
  if (options.tls !== undefined && values.address === undefined) {
    throw new UsageError(
      "TLS options need --address: the demo's own server speaks plaintext",
      DEMO_USAGE,
    );
  }
  if (values.address !== undefined) {
    using client = createClient(
      await checkServerAddress(values.address, DEMO_USAGE),
      options,
    );
    await runDemos(client, interval);
    return EXIT_OK;
  }
  await using server = await startServer({
    port: 0,
    gracePeriod: DEMO_GRACE_PERIOD_MS,
    logger: prefixedLogger("[server] "),
  });
  console.log(`Serving gRPC on ${server.addresses[0]}`);
  using client = createClient(server.addresses[0]!);
  await runDemos(client, interval);
  return EXIT_OK;
}

function printHelp(help: string): number {
  console.log(help.trimEnd());
  return EXIT_OK;
}

/** Prints one line for a failure, never a stack trace, and picks the exit status. */
function report(error: unknown): number {
  if (error instanceof Deno.errors.BrokenPipe) {
    // The reader of stdout went away (e.g. `| head`): nothing is left to tell it.
    return EXIT_OK;
  }
  if (error instanceof UsageError) {
    console.error(`error: ${error.message}`);
    console.error(error.usage);
    return EXIT_BAD_INPUT;
  }
  if (error instanceof InputError) {
    console.error(`error: ${error.message}`);
    return EXIT_BAD_INPUT;
  }
  if (error instanceof GrpcError) {
    console.error(`error: ${error.codeName}: ${error.details}`);
    return EXIT_CALL_FAILED;
  }
  const message = error instanceof Error ? error.message : String(error);
  console.error(`error: ${message.split("\n")[0]}`);
  return EXIT_CALL_FAILED;
}

/** Where the command name stands: the first argument that is not an option or its value. */
function findCommand(args: string[]): number {
  const { tokens } = parseArgs({
    args,
    options: ALL_OPTIONS,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  return tokens.find((token) => token.kind === "positional")?.index ?? -1;
}

async function main(rawArgs: string[]): Promise<number> {
  const args = protectNegativeNumbers(rawArgs);
  try {
    const commandIndex = findCommand(args);
    if (commandIndex === -1) {
      if (args.includes("--help") || args.includes("-h")) {
        return printHelp(OVERVIEW_HELP);
      }
      throw new UsageError(
        `Missing a command: serve, pow, sum, sqrt or demo`,
        OVERVIEW_USAGE,
      );
    }
    const name = unprotect(args[commandIndex]!);
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (command === undefined) {
      throw new UsageError(`Unknown command: ${name}`, OVERVIEW_USAGE);
    }
    return await command(args.toSpliced(commandIndex, 1));
  } catch (error) {
    return report(error);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
