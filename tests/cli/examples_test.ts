import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import {
  RUN_PERMISSIONS,
  runDeno,
  type ServerProcess,
  startServerProcess,
  unusedPort,
} from "../_util/subprocess.ts";
import { switchWarnings } from "../_util/fast_paths_switch.ts";
import { POWER_LINES, ROOT_LINES } from "../_util/article_lines.ts";

function example(name: string): string {
  return new URL(`../../examples/${name}`, import.meta.url).href;
}

function runExample(name: string, ...args: string[]) {
  return runDeno(["run", ...RUN_PERMISSIONS, example(name), ...args]);
}

function startExampleServer(
  name: string,
  ...args: string[]
): Promise<ServerProcess> {
  return startServerProcess([
    "run",
    ...RUN_PERMISSIONS,
    example(name),
    ...args,
  ]);
}

const ZERO_TO_NINE = Array.from({ length: 10 }, (_, number) => number);

Deno.test("pow example prints the article's powers", async (t) => {
  await using server = await startExampleServer(
    "server_stream_server.ts",
    "--port",
    "0",
  );
  const address = server.addresses[0]!;

  await t.step(
    "the client prints Recv data:1 … Recv data:512, then server closed, and exits 0",
    async () => {
      const client = await runExample(
        "server_stream_client.ts",
        "--address",
        address,
      );
      deepStrictEqual(client.stdout, [...POWER_LINES, "server closed"]);
      deepStrictEqual(client.stderr, []);
      strictEqual(client.code, 0);
    },
  );

  await t.step("the server logs Recv Client Data 2", async () => {
    await server.process.waitForLine("stdout", /^Recv Client Data 2$/);
    deepStrictEqual(server.process.stdout, [
      `Serving gRPC on ${address}`,
      "Recv Client Data 2",
    ]);
  });

  await t.step("the server exits 0 on SIGTERM", async () => {
    server.process.kill("SIGTERM");
    const { code, stderr } = await server.process.finished();
    strictEqual(code, 0);
    // The example's server has no logger: the switch, when set, is said on stderr.
    deepStrictEqual(stderr, switchWarnings());
  });
});

Deno.test("sum example prints the article's sum of 0 … 9", async (t) => {
  await using server = await startExampleServer(
    "client_stream_server.ts",
    "--port",
    "0",
  );
  const address = server.addresses[0]!;

  await t.step("the client prints sum: 45 and exits 0", async () => {
    const client = await runExample(
      "client_stream_client.ts",
      "--address",
      address,
    );
    deepStrictEqual(client.stdout, ["sum: 45"]);
    deepStrictEqual(client.stderr, []);
    strictEqual(client.code, 0);
  });

  await t.step(
    "the server logs Recved 0 … Recved 9, then client closed",
    async () => {
      await server.process.waitForLine("stdout", /^client closed$/);
      deepStrictEqual(server.process.stdout, [
        `Serving gRPC on ${address}`,
        ...ZERO_TO_NINE.map((number) => `Recved ${number}`),
        "client closed",
      ]);
    },
  );

  await t.step("the server exits 0 on SIGINT", async () => {
    server.process.kill("SIGINT");
    strictEqual((await server.process.finished()).code, 0);
  });
});

Deno.test("sqrt example prints the article's square roots as they come", async (t) => {
  await using server = await startExampleServer(
    "bidirectional_stream_server.ts",
    "--port",
    "0",
  );
  const address = server.addresses[0]!;

  await t.step(
    "the client prints Recv Data:0 … Recv Data:3, then Server Closed, and exits 0",
    async () => {
      const interval = 30;
      const started = performance.now();
      const client = await runExample(
        "bidirectional_stream_client.ts",
        "--address",
        address,
        "--interval",
        String(interval),
      );
      const elapsed = performance.now() - started;
      deepStrictEqual(client.stdout, [...ROOT_LINES, "Server Closed"]);
      deepStrictEqual(client.stderr, []);
      strictEqual(client.code, 0);
      // Nine pauses between the ten numbers: the interval is honoured.
      ok(elapsed >= 9 * interval, `Took ${elapsed} ms`);
    },
  );

  await t.step("the server logs Recv Data:0 … Recv Data:9", async () => {
    await server.process.waitForLine("stdout", /^Recv Data:9$/);
    deepStrictEqual(server.process.stdout, [
      `Serving gRPC on ${address}`,
      ...ZERO_TO_NINE.map((number) => `Recv Data:${number}`),
    ]);
  });
});

Deno.test("example clients exit 1 with one error line when no server listens", async (t) => {
  const address = `127.0.0.1:${unusedPort()}`;
  for (
    const name of [
      "server_stream_client.ts",
      "client_stream_client.ts",
      "bidirectional_stream_client.ts",
    ]
  ) {
    await t.step(name, async () => {
      const client = await runExample(name, "--address", address);
      strictEqual(client.code, 1);
      strictEqual(client.stderr.length, 1, client.stderr.join("\n"));
      match(client.stderr[0]!, /^error: UNAVAILABLE: /);
      deepStrictEqual(client.stdout, []);
    });
  }
});

Deno.test("examples reject a bad command line with exit status 2 and their usage", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["server_stream_server.ts", ["--port", "eighty"], /^error: Port must be/],
    ["client_stream_server.ts", ["--port", "70000"], /^error: Port must be/],
    [
      "bidirectional_stream_client.ts",
      ["--interval", "soon"],
      /^error: Interval must be/,
    ],
    ["client_stream_client.ts", ["--verbose"], /^error: Unknown option/],
  ];
  for (const [name, args, message] of cases) {
    await t.step(`${name} ${args.join(" ")}`, async () => {
      const result = await runExample(name, ...args);
      strictEqual(result.code, 2);
      match(result.stderr[0] ?? "", message);
      match(result.stderr[1] ?? "", new RegExp(`^Usage: ${name}`));
    });
  }
});
