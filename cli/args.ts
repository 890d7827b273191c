/**
 * The command line's words: options, numbers and the errors that end in exit status 2.
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { INT64_MAX, INT64_MIN } from "../mod.ts";

/** The name the help texts call the command by. */
export const PROGRAM = "grpc-stream";
/** How to run the command from JSR, for the overview help. */
export const RUN_WITH =
  "deno run --allow-net=127.0.0.1 --allow-env=GRPC_* jsr:@streamrpc/grpc-stream/cli";
/** The article's ports: `serve` listens on all three unless told otherwise. */
export const SEED_PORTS = [8081, 8082, 8083];
/** The demo's pause between the numbers it sends to `Sqrt`, by default. */
export const DEFAULT_DEMO_INTERVAL_MS = 100;
/** How long the demo's own server lets calls finish when it closes. */
export const DEMO_GRACE_PERIOD_MS = 1_000;

/** Exit status of a command that did what it was asked. */
export const EXIT_OK = 0;
/** Exit status of a failed call (or any failure but bad input). */
export const EXIT_CALL_FAILED = 1;
/** Exit status of a usage error or a word where a number belongs. */
export const EXIT_BAD_INPUT = 2;
/**
 * Exit status when the reader of stdout goes away (`| head -3`): 128 + SIGPIPE, what a shell
 * shows for `yes | head -1`, so `set -o pipefail` sees the output was cut short.
 */
export const EXIT_READER_GONE = 141;

/** Input the user got wrong, such as a word where a number belongs: exit status 2. */
export class InputError extends Error {
  override name = "InputError";
}

/** A command line that does not parse: exit status 2, with the command's usage. */
export class UsageError extends InputError {
  override name = "UsageError";
  readonly usage: string;

  constructor(message: string, usage: string) {
    super(message);
    this.usage = usage;
  }
}

/** The options of the calling commands: the server and how to reach it. */
const COMMON_OPTIONS = {
  address: { type: "string" },
  help: { type: "boolean", short: "h" },
  tls: { type: "boolean" },
  ca: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  "server-name": { type: "string" },
} as const satisfies ParseArgsOptionsConfig;

/** The options of the one-call commands (`pow`, `sum`, `sqrt`): also their time limits. */
export const CALL_OPTIONS = {
  ...COMMON_OPTIONS,
  timeout: { type: "string" },
  "connect-timeout": { type: "string" },
} as const satisfies ParseArgsOptionsConfig;

/** The options of `serve`. */
export const SERVE_OPTIONS = {
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
  fault: { type: "string", multiple: true },
  "fault-seed": { type: "string" },
  workers: { type: "string" },
} as const satisfies ParseArgsOptionsConfig;

/** The options of `pow`. */
export const POW_OPTIONS = {
  ...CALL_OPTIONS,
  count: { type: "string" },
} as const satisfies ParseArgsOptionsConfig;

/** The options of `demo`. */
export const DEMO_OPTIONS = {
  ...COMMON_OPTIONS,
  interval: { type: "string" },
} as const satisfies ParseArgsOptionsConfig;

/** Every option of every command, so the command can be found wherever it stands. */
export const ALL_OPTIONS = {
  ...SERVE_OPTIONS,
  ...POW_OPTIONS,
  ...DEMO_OPTIONS,
} as const satisfies ParseArgsOptionsConfig;

// `parseArgs` reads "-4" as an unknown short option; a marker keeps negative numbers
// positional (and usable as option values) until the numbers are parsed.
const NEGATIVE_NUMBER = /^-(?:\d|\.\d|Infinity$)/;
const NEGATIVE_MARKER = "\u0000";

/** Marks the negative numbers of `args` so that `parseArgs` takes them for values. */
export function protectNegativeNumbers(args: readonly string[]): string[] {
  return args.map((arg) =>
    NEGATIVE_NUMBER.test(arg) ? NEGATIVE_MARKER + arg : arg
  );
}

/** Takes the mark of {@linkcode protectNegativeNumbers} off again. */
export function unprotect(text: string): string {
  return text.startsWith(NEGATIVE_MARKER) ? text.slice(1) : text;
}

/** The first sentence of a `parseArgs` error, which goes on to explain at length. */
function firstSentence(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const sentence = message.split(/\.(?:\s|$)/)[0] ?? message;
  return sentence.replaceAll(NEGATIVE_MARKER, "");
}

/** What `parseArgs` makes of a command line with `Options`, positionals allowed. */
export interface ParsedCommandLine<Options extends ParseArgsOptionsConfig> {
  values: ReturnType<
    typeof parseArgs<{ options: Options; allowPositionals: true; strict: true }>
  >["values"];
  positionals: string[];
}

/**
 * Parses `args` for `options`; a line that does not parse is an {@linkcode InputError}
 * (a {@linkcode UsageError} once a command wraps the call in {@linkcode asUsageError}).
 */
export function parseCommandLine<const Options extends ParseArgsOptionsConfig>(
  args: string[],
  options: Options,
): ParsedCommandLine<Options> {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new InputError(firstSentence(error));
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

/** The most characters of a user's word that an error message repeats. */
const SHOWN_CHARACTERS = 40;

/**
 * A word of the user's input as an error message shows it: an empty one said to be empty,
 * a long one (a 3 MB line of stdin) cut to its start and its length.
 */
export function shown(text: string): string {
  if (text === "") return "it is empty";
  if (text.length <= SHOWN_CHARACTERS) return text;
  let start = text.slice(0, SHOWN_CHARACTERS);
  // Not half a surrogate pair.
  if (/[\uD800-\uDBFF]$/.test(start)) start = start.slice(0, -1);
  return `${start}… (${text.length} characters)`;
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;
const SPECIAL_NUMBERS = new Set([
  "Infinity",
  "+Infinity",
  "-Infinity",
  "NaN",
]);

/** Reads an int64 written in decimal; `what` names it in the error. */
export function parseInt64(text: string, what: string): bigint {
  if (!INTEGER.test(text)) {
    throw new InputError(`${what} must be an integer: ${shown(text)}`);
  }
  const value = BigInt(text);
  if (value < INT64_MIN || value > INT64_MAX) {
    throw new InputError(`${what} does not fit in int64: ${shown(text)}`);
  }
  return value;
}

/**
 * Reads a double, `Infinity` and `NaN` included; `what` names it in the error. A decimal
 * too large for a double (`1e400`) is refused rather than read as `Infinity`.
 */
export function parseFloat64(text: string, what: string): number {
  if (SPECIAL_NUMBERS.has(text)) return Number(text);
  if (!DECIMAL.test(text)) {
    throw new InputError(
      `${what} must be a decimal number such as 2.25, -1e3 or Infinity: ${
        shown(text)
      }`,
    );
  }
  const value = Number(text);
  if (!Number.isFinite(value)) {
    throw new InputError(
      `${what} is too large for a double (at most about 1.8e308): ${
        shown(text)
      }`,
    );
  }
  return value;
}

/** The range {@linkcode parseWholeNumber} accepts. */
export interface WholeNumberOptions {
  /**
   * The least value accepted.
   *
   * @default {0}
   */
  min?: number;
  /**
   * The greatest value accepted.
   *
   * @default {Number.MAX_SAFE_INTEGER}
   */
  max?: number;
}

/** Reads a whole number from `options.min` to `options.max`; `what` names it in the error. */
export function parseWholeNumber(
  text: string,
  what: string,
  options: WholeNumberOptions = {},
): number {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = options;
  const value = INTEGER.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new InputError(
      `${what} must be an integer from ${min} to ${max}: ${shown(text)}`,
    );
  }
  return value;
}

/** The longest delay a timer takes, in milliseconds: the most a duration option may be. */
const MAX_DURATION_MS = 2 ** 31 - 1;

/** Reads a duration in milliseconds, 0 to 2^31-1 (the longest timer delay). */
export function parseMilliseconds(text: string, what: string): number {
  return parseWholeNumber(text, what, { max: MAX_DURATION_MS });
}

const DURATION = /^(\d+(?:\.\d*)?|\.\d+)(ms|s|m)?$/;
const DURATION_UNITS_MS = { ms: 1, s: 1_000, m: 60_000 } as const;

/**
 * Reads a duration for `--timeout` and `--connect-timeout`: milliseconds as the command
 * line's other durations, or a number with a unit, `ms`, `s` or `m` (`500ms`, `1.5s`,
 * `2m`). The result is whole milliseconds, rounded up, from 1 to 2^31-1.
 */
export function parseDuration(text: string, what: string): number {
  const match = DURATION.exec(text);
  const unit = (match?.[2] ?? "ms") as keyof typeof DURATION_UNITS_MS;
  const value = match === null
    ? Number.NaN
    // Rounded to microseconds first, so that 0.27m is 16200 ms and not 16201 (0.27 * 60000
    // is 16200.000000000002 in floating point).
    : Math.ceil(
      Math.round(Number(match[1]) * DURATION_UNITS_MS[unit] * 1_000) / 1_000,
    );
  if (!(value >= 1 && value <= MAX_DURATION_MS)) {
    throw new InputError(
      `${what} must be a duration from 1 ms to ${MAX_DURATION_MS} ms, such as 500, 500ms, 2s or 1m: ${
        shown(text)
      }`,
    );
  }
  return value;
}

/** Runs `parse` on a command-line argument, where bad input is a usage error. */
export function asUsageError<Value>(usage: string, parse: () => Value): Value {
  try {
    return parse();
  } catch (error) {
    if (error instanceof InputError && !(error instanceof UsageError)) {
      throw new UsageError(error.message, usage);
    }
    throw error;
  }
}

/** Refuses arguments a command does not take. */
export function rejectPositionals(positionals: string[], usage: string): void {
  if (positionals.length > 0) {
    throw new UsageError(
      `Unexpected argument: ${shown(positionals[0]!)}`,
      usage,
    );
  }
}

/** Reads a port number, 0 to 65535. */
export function parsePort(text: string, usage: string): number {
  return asUsageError(
    usage,
    () => parseWholeNumber(text, "Port", { max: 65_535 }),
  );
}

/** What `serve --log` may say. */
export type LogChoice = "messages" | "calls" | "none";

/** Reads `serve --log`; absent means `messages`. */
export function parseLogChoice(
  value: string | undefined,
  usage: string,
): LogChoice {
  if (value === undefined) return "messages";
  if (value === "messages" || value === "calls" || value === "none") {
    return value;
  }
  throw new UsageError(
    `Log must be messages, calls or none: ${shown(value)}`,
    usage,
  );
}

/** The most worker processes `serve --workers` starts. */
export const MAX_WORKERS = 1_024;

/**
 * Reads `serve --workers`: a whole number from 1 to {@linkcode MAX_WORKERS}, or `auto` for
 * one per core (`navigator.hardwareConcurrency`, 1 on a one-core machine); absent means 1.
 */
export function parseWorkers(
  value: string | undefined,
  usage: string,
): number {
  if (value === undefined) return 1;
  if (value === "auto") return Math.max(1, navigator.hardwareConcurrency);
  const count = INTEGER.test(value) ? Number(value) : Number.NaN;
  if (!(count >= 1 && count <= MAX_WORKERS)) {
    throw new UsageError(
      `Workers must be an integer from 1 to ${MAX_WORKERS} or auto: ${
        shown(value)
      }`,
      usage,
    );
  }
  return count;
}
