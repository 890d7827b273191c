import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import {
  CLI,
  DenoProcess,
  type Finished,
  RUN_PERMISSIONS,
  runDeno,
  startCliServer,
  unusedPort,
} from "../_util/subprocess.ts";
import { switchWarnings } from "../_util/fast_paths_switch.ts";
import {
  POWER_LINES,
  POWERS_OF_TWO,
  ROOT_LINES,
} from "../_util/article_lines.ts";

function cli(args: string[], input?: string): Promise<Finished> {
  return runDeno(["run", ...RUN_PERMISSIONS, CLI, ...args], input);
}

function spawnCli(args: string[]): DenoProcess {
  return DenoProcess.spawn(["run", ...RUN_PERMISSIONS, CLI, ...args], {
    stdin: true,
  });
}

/** Checks a failure: its exit status and its one line on stderr. */
/** What a command that failed must have done: exit with `code`, say `message` first. */
interface Failure {
  code: number;
  message: RegExp;
}

function assertFailure(result: Finished, { code, message }: Failure): void {
  strictEqual(result.code, code, result.stderr.join("\n"));
  match(result.stderr[0] ?? "", message);
  ok(
    !result.stderr.some((line) => /^\s+at /.test(line)),
    `Stack trace on stderr:\n${result.stderr.join("\n")}`,
  );
}

/** Checks a usage error: exit status 2, one error line, then the command's usage. */
function assertUsageError(
  result: Finished,
  { message, command }: { message: RegExp; command: string },
): void {
  assertFailure(result, { code: 2, message });
  deepStrictEqual(result.stderr.length, 2, result.stderr.join("\n"));
  match(result.stderr[1]!, new RegExp(`^Usage: grpc-stream ${command}`));
  deepStrictEqual(result.stdout, []);
}

Deno.test("cli pow, sum and sqrt call a running server", async (t) => {
  await using server = await startCliServer(["--port", "0"]);
  const address = server.addresses[0]!;

  await t.step("pow prints the powers of 2, one a line", async () => {
    const result = await cli(["pow", "2", "--address", address]);
    deepStrictEqual(result.stdout, POWERS_OF_TWO);
    deepStrictEqual(result.stderr, []);
    strictEqual(result.code, 0);
  });

  await t.step("pow --count takes a negative base", async () => {
    const result = await cli([
      "pow",
      "-5",
      "--count",
      "4",
      "--address",
      address,
    ]);
    deepStrictEqual(result.stdout, ["1", "-5", "25", "-125"]);
    strictEqual(result.code, 0);
  });

  await t.step(
    "pow ends with OUT_OF_RANGE and exit status 1 after the powers that fit",
    async () => {
      const result = await cli([
        "pow",
        "10",
        "--count",
        "25",
        "--address",
        address,
      ]);
      strictEqual(result.stdout.length, 19);
      strictEqual(result.stdout.at(-1), "1000000000000000000");
      assertFailure(result, { code: 1, message: /^error: OUT_OF_RANGE: \S/ });
      strictEqual(result.stderr.length, 1);
    },
  );

  await t.step("sum adds its arguments exactly", async () => {
    const result = await cli([
      "sum",
      "1",
      "-3",
      "9007199254740993",
      "--address",
      address,
    ]);
    deepStrictEqual(result.stdout, ["9007199254740991"]);
    strictEqual(result.code, 0);
  });

  await t.step("sum reads 1 … 100000 from stdin as a stream", async () => {
    const numbers = Array.from({ length: 100_000 }, (_, index) => index + 1);
    const result = await cli(
      ["sum", "--address", address],
      numbers.join("\n") + "\n",
    );
    deepStrictEqual(result.stdout, ["5000050000"]);
    strictEqual(result.code, 0);
  });

  await t.step(
    "sum reads numbers split by spaces, tabs and lines",
    async () => {
      const result = await cli(["sum", "--address", address], " 1 2\t3\r\n\n4");
      deepStrictEqual(result.stdout, ["10"]);
      strictEqual(result.code, 0);
    },
  );

  await t.step("sum of an empty stdin is 0", async () => {
    const result = await cli(["sum", "--address", address], "");
    deepStrictEqual(result.stdout, ["0"]);
    strictEqual(result.code, 0);
  });

  await t.step("sum beyond int64 ends with OUT_OF_RANGE", async () => {
    const result = await cli([
      "sum",
      "9223372036854775807",
      "1",
      "--address",
      address,
    ]);
    assertFailure(result, { code: 1, message: /^error: OUT_OF_RANGE: / });
    deepStrictEqual(result.stdout, []);
  });

  await t.step("sqrt answers its arguments in order", async () => {
    const result = await cli([
      "sqrt",
      "0",
      "2",
      "16",
      "-0",
      "Infinity",
      "2.25",
      "--address",
      address,
    ]);
    deepStrictEqual(result.stdout, [
      "0",
      "1.4142135623730951",
      "4",
      "-0",
      "Infinity",
      "1.5",
    ]);
    strictEqual(result.code, 0);
  });

  await t.step(
    "sqrt answers each line of stdin as soon as it is typed",
    async () => {
      await using sqrt = spawnCli(["sqrt", "--address", address]);
      await sqrt.write("4\n");
      await sqrt.waitForLine("stdout", /^2$/);
      await sqrt.write("9\n");
      await sqrt.waitForLine("stdout", /^3$/);
      // Still running: each answer came while stdin was open.
      strictEqual(sqrt.exited, false);
      await sqrt.write("2.25");
      await sqrt.closeStdin();
      const result = await sqrt.finished();
      deepStrictEqual(result.stdout, ["2", "3", "1.5"]);
      strictEqual(result.code, 0);
    },
  );

  await t.step(
    "a negative square root ends with INVALID_ARGUMENT and exit status 1",
    async () => {
      const result = await cli(["sqrt", "4", "-4", "9", "--address", address]);
      deepStrictEqual(result.stdout, ["2"]);
      assertFailure(result, {
        code: 1,
        message: /^error: INVALID_ARGUMENT: .*-4/,
      });
      strictEqual(result.stderr.length, 1);
    },
  );

  await t.step(
    "a negative number on stdin ends sqrt the same way",
    async () => {
      const result = await cli(["sqrt", "--address", address], "1\n-1\n");
      deepStrictEqual(result.stdout, ["1"]);
      assertFailure(result, {
        code: 1,
        message: /^error: INVALID_ARGUMENT: .*-1/,
      });
    },
  );

  await t.step("a word among the arguments is a usage error", async () => {
    assertUsageError(await cli(["pow", "two", "--address", address]), {
      message: /^error: Base must be an integer: two$/,
      command: "pow",
    });
    assertUsageError(await cli(["sum", "1", "two", "--address", address]), {
      message: /^error: Number must be an integer: two$/,
      command: "sum",
    });
    assertUsageError(await cli(["sqrt", "four", "--address", address]), {
      message:
        /^error: Number must be a decimal number such as 2\.25, -1e3 or Infinity: four$/,
      command: "sqrt",
    });
    assertUsageError(
      await cli(["pow", "2", "--count", "many", "--address", address]),
      {
        message: /^error: Count must be an integer from 1 to 4294967295: many$/,
        command: "pow",
      },
    );
    assertUsageError(
      await cli(["sum", "99999999999999999999", "--address", address]),
      {
        message: /^error: Number does not fit in int64: 99999999999999999999$/,
        command: "sum",
      },
    );
  });

  await t.step(
    "a word on stdin is bad input with exit status 2 and its line number",
    async () => {
      const sum = await cli(["sum", "--address", address], "1\n2\nthree\n4\n");
      assertFailure(sum, {
        code: 2,
        message: /^error: Number on line 3 of stdin must be an integer: three$/,
      });
      deepStrictEqual(sum.stderr.length, 1);
      deepStrictEqual(sum.stdout, []);

      const sqrt = await cli(["sqrt", "--address", address], "4\n\nnine\n");
      deepStrictEqual(sqrt.stdout, ["2"]);
      assertFailure(sqrt, {
        code: 2,
        message:
          /^error: Number on line 3 of stdin must be a decimal number such as 2\.25, -1e3 or Infinity: nine$/,
      });
    },
  );

  await t.step(
    "a 3 MB word on stdin is cut to its first 40 characters in the error",
    async () => {
      const word = "7".repeat(3_000_000) + "x";
      const result = await cli(["sum", "--address", address], `1\n${word}\n`);
      assertFailure(result, {
        code: 2,
        message: new RegExp(
          `^error: Number on line 2 of stdin must be an integer: ${
            "7".repeat(40)
          }… \\(3000001 characters\\)$`,
        ),
      });
      strictEqual(result.stderr.length, 1);
    },
  );

  await t.step(
    "a number on stdin too large for a double ends sqrt with exit status 2",
    async () => {
      const result = await cli(["sqrt", "--address", address], "4\n1e400\n");
      deepStrictEqual(result.stdout, ["2"]);
      assertFailure(result, {
        code: 2,
        message:
          /^error: Number on line 2 of stdin is too large for a double \(at most about 1\.8e308\): 1e400$/,
      });
    },
  );

  await t.step("demo --address runs the three demos against it", async () => {
    const result = await cli(["demo", "--interval", "0", "--address", address]);
    strictEqual(result.code, 0, result.stderr.join("\n"));
    ok(result.stdout.includes("sum: 45"));
    strictEqual(result.stdout.at(-1), "Server Closed");
    ok(!result.stdout.some((line) => line.startsWith("[server]")));
  });

  await t.step("serve logs what the article's servers log", () => {
    const log = server.process.stdout;
    ok(log.includes("Recv Client Data 2"), log.join("\n"));
    ok(log.includes("Recved 9007199254740993"), log.join("\n"));
    ok(log.includes("client closed"), log.join("\n"));
    ok(log.includes("Recv Data:16"), log.join("\n"));
  });
});

Deno.test("cli reports an unreachable server as UNAVAILABLE with exit status 1", async (t) => {
  const address = `127.0.0.1:${unusedPort()}`;
  for (
    const args of [
      ["pow", "2"],
      ["sum", "1", "2"],
      ["sqrt", "4"],
      ["demo"],
    ]
  ) {
    await t.step(args.join(" "), async () => {
      const result = await cli([...args, "--address", address]);
      assertFailure(result, {
        code: 1,
        message: /^error: UNAVAILABLE: Cannot reach /,
      });
      strictEqual(result.stderr.length, 1, result.stderr.join("\n"));
    });
  }

  await t.step(
    "a host outside --allow-net says which permission is missing",
    async () => {
      const result = await cli(["pow", "2", "--address", "localhost:8082"]);
      assertFailure(result, {
        code: 1,
        message:
          /^error: Requires net access to localhost:8082: run again with --allow-net=localhost$/,
      });
    },
  );
});

Deno.test("cli --help describes the program and every command", async (t) => {
  await t.step("--help lists the commands and exit statuses", async () => {
    const result = await cli(["--help"]);
    strictEqual(result.code, 0);
    match(result.stdout.join("\n"), /^Usage: grpc-stream <command>/m);
    for (const command of ["serve", "pow N", "sum", "sqrt", "demo"]) {
      ok(
        result.stdout.some((line) => line.startsWith(`  ${command}`)),
        command,
      );
    }
    match(result.stdout.join("\n"), /Exit status: 0 on success, 1 /);
    match(
      result.stdout.join("\n"),
      /141 when the reader of stdout\s+goes away/,
    );
    deepStrictEqual(result.stderr, []);
  });

  for (
    const [command, mentions] of [
      ["serve", /--grace-period/],
      ["pow", /--count/],
      ["sum", /read from stdin/],
      ["sqrt", /as soon as its number is typed/],
      ["demo", /--interval/],
    ] as const
  ) {
    await t.step(`${command} --help`, async () => {
      const result = await cli([command, "--help"]);
      strictEqual(result.code, 0);
      const help = result.stdout.join("\n");
      match(help, new RegExp(`^Usage: grpc-stream ${command}`, "m"));
      match(help, mentions);
      match(help, /--address/);
      deepStrictEqual(result.stderr, []);
    });
  }

  await t.step("-h works before the command too", async () => {
    const result = await cli(["-h", "pow"]);
    strictEqual(result.code, 0);
    match(result.stdout.join("\n"), /^Usage: grpc-stream pow/m);
  });
});

Deno.test("cli rejects a bad command line with exit status 2 and the usage", async (t) => {
  const cases: [string[], RegExp, string][] = [
    [[], /^error: Missing a command/, "<command>"],
    [["ping"], /^error: Unknown command: ping$/, "<command>"],
    [["pow"], /^error: Missing the base N$/, "pow"],
    [["pow", "2", "3"], /^error: Unexpected argument: 3$/, "pow"],
    [["pow", "2", "--verbose"], /^error: Unknown option '--verbose'$/, "pow"],
    [["pow", "2", "--count", "0"], /^error: Count must be an integer/, "pow"],
    [
      ["sum", "--address", "nowhere"],
      /^error: Address must be HOST:PORT/,
      "sum",
    ],
    [
      ["pow", "2", "--address", "a b:8082"],
      /^error: Address must be HOST:PORT: a b:8082$/,
      "pow",
    ],
    [["serve", "--port", "http"], /^error: Port must be an integer/, "serve"],
    [["serve", "--port", "8081,70000"], /: 70000$/, "serve"],
    [
      ["serve", "--port", "8081,8081"],
      /^error: Port given twice: 8081$/,
      "serve",
    ],
    [
      ["serve", "--port", "8081", "--port", "0,8081"],
      /^error: Port given twice: 8081$/,
      "serve",
    ],
    [
      ["serve", "--address", "127.0.0.1:8082", "--address", "127.0.0.1:8082"],
      /^error: Port given twice: 8082$/,
      "serve",
    ],
    [
      ["sqrt", "1e400"],
      /^error: Number is too large for a double \(at most about 1\.8e308\): 1e400$/,
      "sqrt",
    ],
    [["sqrt", "-1e400"], /^error: Number is too large for a double/, "sqrt"],
    [
      ["sqrt", "abc"],
      /^error: Number must be a decimal number such as 2\.25, -1e3 or Infinity: abc$/,
      "sqrt",
    ],
    [["sum", ""], /^error: Number must be an integer: it is empty$/, "sum"],
    [["pow", ""], /^error: Base must be an integer: it is empty$/, "pow"],
    [
      ["pow", "2", "--count", ""],
      /^error: Count must be an integer from 1 to 4294967295: it is empty$/,
      "pow",
    ],
    [
      ["sum", "1", "x".repeat(100_000)],
      new RegExp(
        `^error: Number must be an integer: ${
          "x".repeat(40)
        }… \\(100000 characters\\)$`,
      ),
      "sum",
    ],
    [
      ["ping".repeat(1_000)],
      /^error: Unknown command: (?:ping){10}… \(4000 characters\)$/,
      "<command>",
    ],
    [
      ["serve", "--address", "127.0.0.1:0", "--port", "0"],
      /^error: Use either --address or --hostname and --port/,
      "serve",
    ],
    [
      ["serve", "--grace-period", "-1"],
      /^error: Grace period must be/,
      "serve",
    ],
    [["serve", "extra"], /^error: Unexpected argument: extra$/, "serve"],
    [["demo", "--interval", "soon"], /^error: Interval must be/, "demo"],
  ];
  for (const [args, message, command] of cases) {
    const name = args.map((arg) =>
      arg === "" ? '""' : arg.length > 20 ? `${arg.slice(0, 8)}…` : arg
    ).join(" ");
    await t.step(name || "(nothing)", async () => {
      assertUsageError(await cli(args), { message, command });
    });
  }
});

/**
 * The demo's pause between the numbers of its Sqrt, long enough that each answer, which
 * travels within one process over loopback, is printed before the next number leaves even on
 * a busy machine: the check of the order below is bounded by the pause, not by a clock.
 */
const DEMO_PAUSE_MS = 500;

Deno.test("cli demo prints the article's lines", async () => {
  const result = await cli(["demo", "--interval", String(DEMO_PAUSE_MS)]);
  strictEqual(result.code, 0, result.stderr.join("\n"));
  // The demo's server logs its warnings on stderr: the switch, when set, among them.
  deepStrictEqual(
    result.stderr,
    switchWarnings().map((line) => `[server] ${line}`),
  );
  match(result.stdout[0]!, /^Serving gRPC on 127\.0\.0\.1:\d+$/);

  const clientLines = result.stdout.filter((line) =>
    /^(Recv data|server closed|sum|Recv Data|Server Closed)/.test(line)
  );
  deepStrictEqual(clientLines, [
    ...POWER_LINES,
    "server closed",
    "sum: 45",
    ...ROOT_LINES,
    "Server Closed",
  ]);

  const serverLines = result.stdout.filter((line) =>
    line.startsWith("[server] ")
  );
  const zeroToNine = Array.from({ length: 10 }, (_, number) => number);
  deepStrictEqual(serverLines, [
    "[server] Recv Client Data 2",
    ...zeroToNine.map((number) => `[server] Recved ${number}`),
    "[server] client closed",
    ...zeroToNine.map((number) => `[server] Recv Data:${number}`),
  ]);

  const output = result.stdout.join("\n");
  ok(output.includes("[server] client closed\nsum: 45"));
  // The Sqrt is interactive: the server takes each number as it is sent and the client
  // prints its root before the next number is sent, a pause later. A client that sent the
  // numbers only at the end, or a server that answered only then, would print the roots after
  // all of the server's lines.
  const sqrtLines = result.stdout.filter((line) =>
    /^(\[server\] )?Recv Data:/.test(line)
  );
  deepStrictEqual(
    sqrtLines,
    zeroToNine.flatMap((number) => [
      `[server] Recv Data:${number}`,
      ROOT_LINES[number]!,
    ]),
  );
});

Deno.test("cli serve finishes a call in flight on SIGINT, then exits 0", async (t) => {
  await using server = await startCliServer([
    "--port",
    "0",
    "--grace-period",
    "10000",
  ]);
  const address = server.addresses[0]!;
  await using sqrt = spawnCli(["sqrt", "--address", address]);
  await sqrt.write("4\n");
  await sqrt.waitForLine("stdout", /^2$/);

  server.process.kill("SIGINT");
  await server.process.waitForLine("stderr", /^Received SIGINT: /);

  await t.step("the call in flight keeps being answered", async () => {
    await sqrt.write("9\n");
    await sqrt.waitForLine("stdout", /^3$/);
    strictEqual(server.process.exited, false);
  });

  await t.step("a new call is refused", async () => {
    const result = await cli(["pow", "2", "--address", address]);
    assertFailure(result, { code: 1, message: /^error: UNAVAILABLE: / });
  });

  await t.step(
    "the call completes, and then the server exits 0",
    async () => {
      await sqrt.closeStdin();
      const client = await sqrt.finished();
      deepStrictEqual(client.stdout, ["2", "3"]);
      strictEqual(client.code, 0);
      const stopped = await server.process.finished();
      strictEqual(stopped.code, 0);
      strictEqual(stopped.stderr.at(-1), "Server stopped");
    },
  );
});

Deno.test("cli serve cancels calls still running when the grace period ends", async () => {
  await using server = await startCliServer([
    "--port",
    "0",
    "--grace-period",
    "100",
  ]);
  await using sqrt = spawnCli(["sqrt", "--address", server.addresses[0]!]);
  await sqrt.write("4\n");
  await sqrt.waitForLine("stdout", /^2$/);

  server.process.kill("SIGTERM");
  const stopped = await server.process.finished();
  strictEqual(stopped.code, 0);
  const client = await sqrt.finished();
  strictEqual(client.code, 1);
  match(client.stderr[0] ?? "", /^error: UNAVAILABLE: /);
});

Deno.test("cli serve exits at once on a second signal", async () => {
  await using server = await startCliServer(["--port", "0"]);
  await using sqrt = spawnCli(["sqrt", "--address", server.addresses[0]!]);
  await sqrt.write("4\n");
  await sqrt.waitForLine("stdout", /^2$/);
  server.process.kill("SIGINT");
  await server.process.waitForLine("stderr", /^Received SIGINT: /);
  server.process.kill("SIGINT");
  strictEqual((await server.process.finished()).code, 130);
});

Deno.test("cli serve listens on several ports, each serving all three services", async (t) => {
  await using server = await startCliServer(
    ["--port", "0,0", "--port", "0"],
    3,
  );
  strictEqual(new Set(server.addresses).size, 3);
  const [first, second, third] = server.addresses as [string, string, string];

  await t.step("pow on the first port", async () => {
    const result = await cli(["pow", "3", "--count", "3", "--address", first]);
    deepStrictEqual(result.stdout, ["1", "3", "9"]);
  });
  await t.step("sum on the second port", async () => {
    const result = await cli(["sum", "1", "2", "--address", second]);
    deepStrictEqual(result.stdout, ["3"]);
  });
  await t.step("sqrt on the third port", async () => {
    const result = await cli(["sqrt", "81", "--address", third]);
    deepStrictEqual(result.stdout, ["9"]);
  });
});

Deno.test("cli serve takes --address and --max-pow-count", async () => {
  await using server = await startCliServer([
    "--address",
    "127.0.0.1:0",
    "--max-pow-count",
    "5",
  ]);
  const address = server.addresses[0]!;
  const allowed = await cli(["pow", "2", "--count", "5", "--address", address]);
  deepStrictEqual(allowed.stdout, ["1", "2", "4", "8", "16"]);
  const refused = await cli(["pow", "2", "--count", "6", "--address", address]);
  assertFailure(refused, { code: 1, message: /^error: INVALID_ARGUMENT: / });
  deepStrictEqual(refused.stdout, []);
});

Deno.test("cli serve reports a port in use in one line with exit status 1", async () => {
  await using server = await startCliServer(["--port", "0"]);
  const port = server.addresses[0]!.split(":")[1]!;
  for (const ports of [port, `0,${port}`]) {
    const result = await cli(["serve", "--port", ports]);
    strictEqual(result.code, 1);
    // Nothing else: no line of grpc-js's own ("E No address added …").
    deepStrictEqual(result.stderr, [
      ...switchWarnings(),
      `error: Cannot listen on 127.0.0.1:${port}: address already in use`,
    ]);
    deepStrictEqual(result.stdout, []);
  }
});
