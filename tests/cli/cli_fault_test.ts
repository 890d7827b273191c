import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import { createClient, GrpcError, Status } from "../../mod.ts";
import {
  CLI,
  type Finished,
  RUN_PERMISSIONS,
  runDeno,
  startCliServer,
} from "../_util/subprocess.ts";

function cli(args: string[]): Promise<Finished> {
  return runDeno(["run", ...RUN_PERMISSIONS, CLI, ...args]);
}

/** A usage error: exit status 2, the error line, then `serve`'s usage, nothing on stdout. */
function assertUsageError(result: Finished, message: string): void {
  strictEqual(result.code, 2, result.stderr.join("\n"));
  deepStrictEqual(result.stderr[0], `error: ${message}`);
  strictEqual(result.stderr.length, 2, result.stderr.join("\n"));
  match(
    result.stderr[1]!,
    /^Usage: grpc-stream serve .*\[--fault RULE \.\.\.\]/,
  );
  deepStrictEqual(result.stdout, []);
}

Deno.test("serve --fault refuses a bad rule with exit 2, naming the wrong part", async (t) => {
  const cases: [string[], string][] = [
    [
      ["--fault", "Div:status=UNAVAILABLE"],
      'Fault rule "Div:status=UNAVAILABLE": "Div" is neither a method (Pow, Sum, Sqrt) nor KEY=VALUE',
    ],
    [
      ["--fault", "Sum:after=3:UNAVAILABLE"],
      'Fault rule "Sum:after=3:UNAVAILABLE": "UNAVAILABLE" is not KEY=VALUE',
    ],
    [
      ["--fault", "Sum:wait=3"],
      'Fault rule "Sum:wait=3": unknown key "wait" (after, status, message, delay, drop, ratio)',
    ],
    [
      ["--fault", "Sum:after=three:status=14"],
      'Fault rule "Sum:after=three:status=14": after must be a number: three',
    ],
    [
      ["--fault", "Sum:after=-1:status=14"],
      'Fault rule "Sum:after=-1:status=14": after must be an integer from 0 to 4294967295: -1',
    ],
    [
      ["--fault", "Pow:status=BROKEN"],
      'Fault rule "Pow:status=BROKEN": status must be a gRPC status name or code (UNAVAILABLE, 14): BROKEN',
    ],
    [
      ["--fault", "Pow:status=0"],
      'Fault rule "Pow:status=0": status must be an integer from 1 to 16: 0',
    ],
    [
      ["--fault", "Pow:drop=host"],
      'Fault rule "Pow:drop=host": drop must be stream or connection: host',
    ],
    [
      ["--fault", "Pow:delay=5:ratio=2"],
      'Fault rule "Pow:delay=5:ratio=2": ratio must be a number from 0 to 1: 2',
    ],
    [
      ["--fault", "Pow:delay=5:delay=6"],
      'Fault rule "Pow:delay=5:delay=6": delay given twice',
    ],
    [["--fault", "Pow:delay="], 'Fault rule "Pow:delay=": delay has no value'],
    [
      ["--fault", "Sum:after=3"],
      'Fault rule "Sum:after=3": it has no effect: give it status, delay or drop',
    ],
    [
      ["--fault", "Sum:status=14:drop=stream"],
      'Fault rule "Sum:status=14:drop=stream": it has both status and drop: a call ends one way (status=14, drop=stream)',
    ],
    [["--fault", ""], 'Fault rule "": it is empty'],
    [
      ["--fault", "Pow:delay=1", "--fault-seed", "-2"],
      "Fault seed must be an integer from 0 to 4294967295: -2",
    ],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      assertUsageError(await cli(["serve", "--port", "0", ...args]), message);
    });
  }
});

Deno.test("serve --fault misbehaves as asked, one line per fault", async (t) => {
  await using server = await startCliServer([
    "--port",
    "0",
    "--fault",
    "Sum:after=3:status=UNAVAILABLE:message=Down: for maintenance",
    "--fault",
    "Pow:delay=50",
    "--fault-seed",
    "11",
  ]);
  using client = createClient(server.addresses[0]!);

  await t.step(
    "Sum ends UNAVAILABLE after 3 numbers, with the message",
    async () => {
      let failure: unknown;
      try {
        await client.sum([1, 2, 3, 4, 5]);
      } catch (error) {
        failure = error;
      }
      ok(failure instanceof GrpcError, String(failure));
      strictEqual(failure.code, Status.UNAVAILABLE);
      // message= takes the rest of the rule, colons and all.
      strictEqual(failure.details, "Down: for maintenance");
    },
  );

  await t.step("Pow waits before each reply", async () => {
    const started = performance.now();
    deepStrictEqual(await Array.fromAsync(client.pow(2, { count: 2 })), [
      1n,
      2n,
    ]);
    ok(performance.now() - started >= 99);
  });

  await t.step("the log says the seed and each fault", async () => {
    const [seed] = await server.process.waitForLine(
      "stdout",
      /^Faults on: 2 rules, fault seed 11$/,
    );
    ok(seed);
    await server.process.waitForLine(
      "stderr",
      /^Fault injected into Sum: rule 1 \(Sum:after=3:status=UNAVAILABLE\) after 3 requests: status UNAVAILABLE$/,
    );
    await server.process.waitForLine(
      "stderr",
      /^Fault injected into Pow: rule 2 \(Pow:delay=50\) after 0 replies: delay 50 ms before each reply$/,
    );
  });
});
