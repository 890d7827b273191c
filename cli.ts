/**
 * The `grpc-stream` command line: serve the three streaming services of the Go streaming
 * article, call them from a shell, or watch the article's three demos run against a server
 * of their own.
 *
 * ```
 * grpc-stream serve [--hostname H] [--port P ...] [--max-pow-count N] [--drain-period MS] [--grace-period MS]
 *                   [--log messages|calls|none] [--workers N|auto]
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
 * 1 when a call fails (printed as `error: CODE_NAME: details`), 2 on a usage error or a
 * word where a number belongs, and 141 (as a program ended by SIGPIPE) when the reader of
 * stdout goes away, after cancelling the call.
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
import { parseArgs } from "node:util";
import { GrpcError } from "./mod.ts";
import {
  ALL_OPTIONS,
  EXIT_BAD_INPUT,
  EXIT_CALL_FAILED,
  EXIT_READER_GONE,
  InputError,
  protectNegativeNumbers,
  shown,
  unprotect,
  UsageError,
} from "./cli/args.ts";
import { callPow, callSqrt, callSum } from "./cli/calls.ts";
import { demo } from "./cli/demo.ts";
import { OVERVIEW_HELP, OVERVIEW_USAGE, printHelp } from "./cli/help.ts";
import { serve } from "./cli/serve.ts";

/** The subcommands; each parses its own arguments and returns the exit status. */
const COMMANDS: Readonly<Record<string, (args: string[]) => Promise<number>>> =
  {
    serve,
    pow: callPow,
    sum: callSum,
    sqrt: callSqrt,
    demo,
  };

/**
 * Deno's words for a missing permission (`Requires env access to "X", run again with the
 * --allow-env flag`) with the exact flag to add; the module's own words already name it.
 */
function missingPermission(message: string): string {
  const deno =
    /^Requires (\w+) access to "([^"]+)", run again with the --allow-\1 flag/
      .exec(message);
  if (deno === null) return message.split("\n")[0]!;
  const [, kind, what] = deno;
  const value = kind === "net" ? what!.replace(/:\d+$/, "") : what;
  return `Requires ${kind} access to ${what}: run again with --allow-${kind}=${value}`;
}

/** Prints one line for a failure, never a stack trace, and picks the exit status. */
function report(error: unknown): number {
  if (error instanceof Deno.errors.BrokenPipe) {
    // The reader of stdout went away (e.g. `| head`): the call is cancelled by now, and
    // nothing is left to tell it.
    return EXIT_READER_GONE;
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
  if (error instanceof Deno.errors.NotCapable) {
    console.error(`error: ${missingPermission(error.message)}`);
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
      throw new UsageError(`Unknown command: ${shown(name)}`, OVERVIEW_USAGE);
    }
    return await command(args.toSpliced(commandIndex, 1));
  } catch (error) {
    return report(error);
  }
}

if (import.meta.main) {
  const code = await main(Deno.args);
  // Exit once nothing is pending rather than at once: `Deno.exit` drops what is still on its
  // way to a socket, such as the last trailers a server wrote before its connections closed.
  // Something left holding the process ends it after 2 s all the same.
  Deno.exitCode = code;
  Deno.unrefTimer(setTimeout(() => Deno.exit(code), 2_000));
}
