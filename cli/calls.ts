/**
 * `grpc-stream pow`, `sum` and `sqrt`: one call each, its answers one a line on stdout.
 *
 * @module
 */
import { createClient, DEFAULT_ADDRESSES, MAX_UINT32 } from "../mod.ts";
import {
  asUsageError,
  CALL_OPTIONS,
  EXIT_OK,
  parseCommandLine,
  parseFloat64,
  parseInt64,
  parseWholeNumber,
  POW_OPTIONS,
  shown,
  UsageError,
} from "./args.ts";
import { callTimeout, checkServerAddress, clientOptions } from "./connect.ts";
import {
  POW_HELP,
  POW_USAGE,
  printHelp,
  SQRT_HELP,
  SQRT_USAGE,
  SUM_HELP,
  SUM_USAGE,
} from "./help.ts";
import { noteReadingStdin, readFloat64s, readInt64s } from "./stdin.ts";
import { printLine } from "./stdout.ts";

/** `grpc-stream pow`: prints each power on a line of its own. */
export async function callPow(args: string[]): Promise<number> {
  const { values, positionals } = asUsageError(
    POW_USAGE,
    () => parseCommandLine(args, POW_OPTIONS),
  );
  if (values.help) return printHelp(POW_HELP);
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? "Missing the base N"
        : `Unexpected argument: ${shown(positionals[1]!)}`,
      POW_USAGE,
    );
  }
  const base = asUsageError(
    POW_USAGE,
    () => parseInt64(positionals[0]!, "Base"),
  );
  const count = values.count === undefined ? undefined : asUsageError(
    POW_USAGE,
    () => parseWholeNumber(values.count!, "Count", { min: 1, max: MAX_UINT32 }),
  );
  const timeout = callTimeout(values, POW_USAGE);
  const options = await clientOptions(values, POW_USAGE);
  using client = createClient(
    await checkServerAddress(
      values.address ?? DEFAULT_ADDRESSES.pow,
      POW_USAGE,
    ),
    options,
  );
  const powers = client.pow(base, {
    ...timeout,
    ...(count === undefined ? {} : { count }),
  });
  for await (const power of powers) printLine(power.toString());
  return EXIT_OK;
}

/** `grpc-stream sum`: adds the numbers of the command line, or of stdin. */
export async function callSum(args: string[]): Promise<number> {
  const { values, positionals } = asUsageError(
    SUM_USAGE,
    () => parseCommandLine(args, CALL_OPTIONS),
  );
  if (values.help) return printHelp(SUM_HELP);
  const numbersFromArgs = positionals.map((text) =>
    asUsageError(SUM_USAGE, () => parseInt64(text, "Number"))
  );
  const timeout = callTimeout(values, SUM_USAGE);
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
  printLine((await client.sum(numbers, timeout)).toString());
  return EXIT_OK;
}

/** `grpc-stream sqrt`: prints the root of each number as its answer arrives. */
export async function callSqrt(args: string[]): Promise<number> {
  const { values, positionals } = asUsageError(
    SQRT_USAGE,
    () => parseCommandLine(args, CALL_OPTIONS),
  );
  if (values.help) return printHelp(SQRT_HELP);
  const numbersFromArgs = positionals.map((text) =>
    asUsageError(SQRT_USAGE, () => parseFloat64(text, "Number"))
  );
  const timeout = callTimeout(values, SQRT_USAGE);
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
  for await (
    const root of client.sqrt(stdin?.numbers ?? numbersFromArgs, timeout)
  ) {
    printLine(formatRoot(root));
  }
  const badInput = stdin?.badInput();
  if (badInput !== undefined) throw badInput;
  return EXIT_OK;
}

/** Like `String`, but keeps the sign of `-0`, whose square root is `-0`. */
function formatRoot(root: number): string {
  return Object.is(root, -0) ? "-0" : String(root);
}
