/**
 * The suite's only tests on fixed ports: the command line and the examples meet on the
 * article's ports 8081-8083 by default. In a file of their own, so that the check that the
 * ports are free (when the file loads, see _article_ports.ts) comes seconds before they bind.
 */
import { deepStrictEqual, strictEqual } from "node:assert";
import {
  CLI,
  type Finished,
  RUN_PERMISSIONS,
  runDeno,
  type ServerProcess,
  startCliServer,
  startServerProcess,
} from "../_util/subprocess.ts";
import { POWERS_OF_TWO } from "../_util/article_lines.ts";
import { onArticlePorts } from "./_article_ports.ts";

function cli(args: string[]): Promise<Finished> {
  return runDeno(["run", ...RUN_PERMISSIONS, CLI, ...args]);
}

function example(name: string): string {
  return new URL(`../../examples/${name}`, import.meta.url).href;
}

function runExample(name: string, ...args: string[]): Promise<Finished> {
  return runDeno(["run", ...RUN_PERMISSIONS, example(name), ...args]);
}

function startExampleServer(name: string): Promise<ServerProcess> {
  return startServerProcess(["run", ...RUN_PERMISSIONS, example(name)]);
}

Deno.test({
  ...onArticlePorts(
    "cli serve with no flags listens on the article's ports 8081, 8082 and 8083",
  ),
  async fn() {
    await using server = await startCliServer([], 3);
    deepStrictEqual(server.addresses, [
      "127.0.0.1:8081",
      "127.0.0.1:8082",
      "127.0.0.1:8083",
    ]);
    // The defaults of the calling commands meet the defaults of serve.
    deepStrictEqual((await cli(["pow", "2"])).stdout, POWERS_OF_TWO);
    deepStrictEqual((await cli(["sum", "2", "3"])).stdout, ["5"]);
    deepStrictEqual((await cli(["sqrt", "49"])).stdout, ["7"]);
    server.process.kill("SIGTERM");
    strictEqual((await server.process.finished()).code, 0);
  },
});

Deno.test({
  ...onArticlePorts(
    "example servers and clients meet on the article's ports by default",
  ),
  fn: meetOnArticlePorts,
});

async function meetOnArticlePorts(t: Deno.TestContext): Promise<void> {
  const pairs: [string, string, string[], number, string][] = [
    [
      "server_stream_server.ts",
      "server_stream_client.ts",
      [],
      8082,
      "server closed",
    ],
    ["client_stream_server.ts", "client_stream_client.ts", [], 8081, "sum: 45"],
    [
      "bidirectional_stream_server.ts",
      "bidirectional_stream_client.ts",
      ["--interval", "0"],
      8083,
      "Server Closed",
    ],
  ];
  for (const [serverName, clientName, clientArgs, port, lastLine] of pairs) {
    await t.step({
      name: `${serverName} and ${clientName} on ${port}`,
      async fn() {
        await using server = await startExampleServer(serverName);
        deepStrictEqual(server.addresses, [`127.0.0.1:${port}`]);
        const client = await runExample(clientName, ...clientArgs);
        strictEqual(client.code, 0, client.stderr.join("\n"));
        strictEqual(client.stdout.at(-1), lastLine);
      },
    });
  }
}
