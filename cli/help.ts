/**
 * The help texts and usage lines of the command line.
 *
 * @module
 */
import {
  DEFAULT_ADDRESSES,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_GRACE_PERIOD_MS,
} from "../mod.ts";
import {
  DEFAULT_DEMO_INTERVAL_MS,
  EXIT_OK,
  PROGRAM,
  RUN_WITH,
} from "./args.ts";

/** The usage line of the command without a subcommand. */
export const OVERVIEW_USAGE = `Usage: ${PROGRAM} <command> [options]`;

/** The help of `grpc-stream --help`. */
export const OVERVIEW_HELP =
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
2 on a usage error or a word where a number belongs, 141 when the reader of stdout
goes away (| head), after cancelling the call.

Run it with: ${RUN_WITH} <command>
`;

/** The usage line of `serve`. */
export const SERVE_USAGE =
  `Usage: ${PROGRAM} serve [--hostname HOST] [--port PORT ...] [--max-pow-count N] [--drain-period MS] [--grace-period MS] [--log messages|calls|none] [--fault RULE ...] [--fault-seed N] [--workers N|auto] [--cert FILE --key FILE [--client-ca FILE]]`;

/** The help of `serve --help`. */
export const SERVE_HELP =
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
  --fault RULE           Misbehave on purpose, for tests of clients: [METHOD:]KEY=VALUE:…
                         with after=N, status=NAME, message=TEXT, delay=MS,
                         drop=stream|connection, ratio=R, e.g. Sum:after=3:status=UNAVAILABLE;
                         repeat it for more rules. It also makes the server obey the
                         Envoy fault headers of a call (see docs/faults.md)
  --fault-seed N         The seed of the draws of ratio=R (default: a random seed, printed)
  --workers N|auto       Serve from N processes sharing the ports (auto: one per core);
                         needs --allow-run=DENO --allow-env (default: 1, one process)
  --cert FILE            Serve over TLS with this certificate chain (PEM); needs --key
  --key FILE             The private key of --cert (PEM)
  --client-ca FILE       Require client certificates signed by these CAs (mutual TLS)
  -h, --help             Show this help

The files need read permission: add --allow-read=FILE,... to the deno run command.
`;

/** The TLS options of the calling commands, for their help texts. */
const CLIENT_TLS_HELP = `
TLS (the files need read permission: --allow-read=FILE,...):
  --tls                Call over TLS, trusting Deno's root certificates
  --ca FILE            Call over TLS, trusting the CA certificates in FILE (PEM)
  --cert FILE          The client certificate (PEM) for a server that requires one
  --key FILE           The private key of --cert (PEM)
  --server-name NAME   The name the server's certificate must hold (default: the host
                       of --address)
`;

/** The time limits of the one-call commands, for their help texts. */
const CALL_TIME_HELP = `
Time limits (MS milliseconds, or a number with a unit: 500ms, 1.5s, 2m):
  --timeout MS          Give up on the call after this long: DEADLINE_EXCEEDED
                        (default: no limit)
  --connect-timeout MS  Give up on a connection whose TCP connection, TLS handshake and
                        the server's first HTTP/2 SETTINGS frame take longer: UNAVAILABLE
                        (default: ${DEFAULT_CONNECT_TIMEOUT_MS}, as gRPC's)
`;

/** The usage line of `pow`. */
export const POW_USAGE =
  `Usage: ${PROGRAM} pow N [--count C] [--address HOST:PORT] [--timeout MS] [--connect-timeout MS] [TLS options]`;

/** The help of `pow --help`. */
export const POW_HELP =
  `Call Pow: print the powers N^0, N^1, … N^(C-1), one a line, as the server streams them.

${POW_USAGE}

N is an int64. Powers that no longer fit in int64 end the call with OUT_OF_RANGE after
the powers that fit.

Options:
  --count C            How many powers (default: 10)
  --address HOST:PORT  The server (default: ${DEFAULT_ADDRESSES.pow})
  -h, --help           Show this help
${CALL_TIME_HELP}${CLIENT_TLS_HELP}`;

/** The usage line of `sum`. */
export const SUM_USAGE =
  `Usage: ${PROGRAM} sum [N ...] [--address HOST:PORT] [--timeout MS] [--connect-timeout MS] [TLS options]`;

/** The help of `sum --help`. */
export const SUM_HELP =
  `Call Sum: stream integers to the server and print their exact sum.

${SUM_USAGE}

With no N, the integers are read from stdin, separated by spaces or newlines, and sent as
they are read, so "seq 1 100000 | ${PROGRAM} sum" streams. Each N is an int64; write a
negative one as -5.

Options:
  --address HOST:PORT  The server (default: ${DEFAULT_ADDRESSES.sum})
  -h, --help           Show this help
${CALL_TIME_HELP}${CLIENT_TLS_HELP}`;

/** The usage line of `sqrt`. */
export const SQRT_USAGE =
  `Usage: ${PROGRAM} sqrt [X ...] [--address HOST:PORT] [--timeout MS] [--connect-timeout MS] [TLS options]`;

/** The help of `sqrt --help`. */
export const SQRT_HELP =
  `Call Sqrt: stream numbers to the server and print each square root as it arrives.

${SQRT_USAGE}

With no X, the numbers are read from stdin, separated by spaces or newlines, and each
answer is printed as soon as its number is typed. A negative number or NaN ends the call
with INVALID_ARGUMENT (exit status 1) after the answers before it.

Options:
  --address HOST:PORT  The server (default: ${DEFAULT_ADDRESSES.sqrt})
  -h, --help           Show this help
${CALL_TIME_HELP}${CLIENT_TLS_HELP}`;

/** The usage line of `demo`. */
export const DEMO_USAGE =
  `Usage: ${PROGRAM} demo [--interval MS] [--address HOST:PORT [TLS options]]`;

/** The help of `demo --help`. */
export const DEMO_HELP =
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

/** Prints a help text; the command then exits with status 0. */
export function printHelp(help: string): number {
  console.log(help.trimEnd());
  return EXIT_OK;
}
