/**
 * The command line under narrower permissions than it needs: one line on stderr naming the
 * flag to add, never a stack trace, and no permission asked for that it can do without.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { CLI, runDeno } from "../_util/subprocess.ts";

Deno.test("the command line says which permission to add", async (t) => {
  await t.step("demo runs with --allow-net alone", async () => {
    const result = await runDeno(["run", "--allow-net=127.0.0.1", CLI, "demo"]);
    strictEqual(result.code, 0, result.stderr.join("\n"));
    ok(result.stdout.includes("sum: 45"), result.stdout.join("\n"));
    deepStrictEqual(
      result.stderr.filter((line) => !line.startsWith("[server]")),
      [],
    );
  });

  for (
    const [hostname, flag] of [["0.0.0.0", "0.0.0.0"], ["::", "[::]"]] as const
  ) {
    await t.step(`serve --hostname ${hostname} names --allow-net`, async () => {
      const result = await runDeno([
        "run",
        "--allow-net=127.0.0.1",
        CLI,
        "serve",
        "--hostname",
        hostname,
        "--port",
        "0",
      ]);
      const host = hostname.includes(":") ? `[${hostname}]:0` : `${hostname}:0`;
      deepStrictEqual(result, {
        code: 1,
        stdout: [],
        stderr: [
          `error: Requires net access to ${host}: run again with --allow-net=${flag}`,
        ],
      });
    });
  }

  const workerFlagCases = [
    { given: [], missing: `--allow-run=${Deno.execPath()} --allow-env` },
    { given: [`--allow-run=${Deno.execPath()}`], missing: "--allow-env" },
  ];
  for (const { given, missing } of workerFlagCases) {
    await t.step(
      `serve --workers 2 with ${
        given.length === 0 ? "neither" : "--allow-run alone"
      } names ${missing}`,
      async () => {
        const result = await runDeno([
          "run",
          "--allow-net=127.0.0.1",
          "--allow-env=GRPC_*",
          ...given,
          CLI,
          "serve",
          "--port",
          "0",
          "--workers",
          "2",
        ]);
        deepStrictEqual(result, {
          code: 1,
          stdout: [],
          stderr: [
            `error: --workers 2 starts worker processes: run again with ${missing}`,
          ],
        });
      },
    );
  }
});
