/**
 * An independent gRPC implementation against our server: `buf curl` (Go's gRPC), with the
 * schema from server reflection, and the standard health service.
 */
import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import { startServer } from "../../mod.ts";
import { tempDirectory } from "../_util/certificates.ts";
import { RUN_PERMISSIONS, runDeno } from "../_util/subprocess.ts";
import { buf, CURL_H2C, jsonValues, ROOT, spawnBuf } from "../_util/tools.ts";

function url(address: string, method: string): string {
  return `http://${address}/${method}`;
}

Deno.test("buf curl calls all three methods with the schema from reflection", async (t) => {
  await using server = await startServer();
  const address = server.addresses[0]!;

  await t.step("server streaming: Pow", async () => {
    const result = await buf([
      ...CURL_H2C,
      "-d",
      '{"number": 3, "count": 4}',
      url(address, "stream.ServerStream/Pow"),
    ]);
    strictEqual(result.code, 0, result.stderr.join("\n"));
    deepStrictEqual(jsonValues(result.stdout), [
      { number: "1" },
      { number: "3" },
      { number: "9" },
      { number: "27" },
    ]);
  });

  await t.step(
    "client streaming: Sum of several messages on stdin",
    async () => {
      const result = await buf(
        [...CURL_H2C, "-d", "@-", url(address, "stream.ClientStream/Sum")],
        '{"number": 1}\n{"number": "2"}\n{"number": -10}\n{"number": 9007199254740993}\n',
      );
      strictEqual(result.code, 0, result.stderr.join("\n"));
      deepStrictEqual(jsonValues(result.stdout), [{ sum: "9007199254740986" }]);
    },
  );

  await t.step("bidirectional streaming: Sqrt", async () => {
    const result = await buf(
      [
        ...CURL_H2C,
        "-d",
        "@-",
        url(address, "stream.BidirectionalStreamServer/Sqrt"),
      ],
      '{"number": 4}\n{"number": 9}\n{"number": 2}\n',
    );
    strictEqual(result.code, 0, result.stderr.join("\n"));
    deepStrictEqual(jsonValues(result.stdout), [
      { sqrt: 2 },
      { sqrt: 3 },
      { sqrt: Math.SQRT2 },
    ]);
  });

  await t.step(
    "a negative square root is INVALID_ARGUMENT after the answers before it",
    async () => {
      const result = await buf(
        [
          ...CURL_H2C,
          "-d",
          "@-",
          url(address, "stream.BidirectionalStreamServer/Sqrt"),
        ],
        '{"number": 16}\n{"number": -1}\n',
      );
      strictEqual(
        result.code,
        3 * 8,
        "buf curl exits with 8 times the gRPC code",
      );
      deepStrictEqual(jsonValues(result.stdout), [{ sqrt: 4 }]);
      const [status] = jsonValues(result.stderr) as {
        code: string;
        message: string;
      }[];
      strictEqual(status!.code, "invalid_argument");
      ok(status!.message.includes("-1"), status!.message);
    },
  );

  await t.step("an overflowing sum is OUT_OF_RANGE", async () => {
    const result = await buf(
      [...CURL_H2C, "-d", "@-", url(address, "stream.ClientStream/Sum")],
      '{"number": "9223372036854775807"}\n{"number": 1}\n',
    );
    strictEqual(result.code, 11 * 8);
    const [status] = jsonValues(result.stderr) as { code: string }[];
    strictEqual(status!.code, "out_of_range");
  });

  await t.step("unary: Single/Sqrt", async () => {
    const result = await buf([
      ...CURL_H2C,
      "-d",
      '{"number": 81}',
      url(address, "stream.Single/Sqrt"),
    ]);
    strictEqual(result.code, 0, result.stderr.join("\n"));
    deepStrictEqual(jsonValues(result.stdout), [{ sqrt: 9 }]);
  });
});

Deno.test("startServer() describes every hosted service through reflection", async (t) => {
  await t.step(
    "by default: the stream services, health and reflection",
    async () => {
      await using server = await startServer();
      const result = await buf([
        ...CURL_H2C,
        "--list-methods",
        `http://${server.addresses[0]}`,
      ]);
      strictEqual(result.code, 0, result.stderr.join("\n"));
      deepStrictEqual(result.stdout, [
        "grpc.health.v1.Health/Check",
        "grpc.health.v1.Health/List",
        "grpc.health.v1.Health/Watch",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "stream.BidirectionalStreamServer/Sqrt",
        "stream.ClientStream/Sum",
        "stream.ServerStream/Pow",
        "stream.Single/Sqrt",
      ]);
    },
  );

  await t.step("with health: false, no health service", async () => {
    await using server = await startServer({ health: false });
    const result = await buf([
      ...CURL_H2C,
      "--list-services",
      `http://${server.addresses[0]}`,
    ]);
    strictEqual(result.code, 0, result.stderr.join("\n"));
    ok(!result.stdout.includes("grpc.health.v1.Health"), result.stdout.join());
    ok(result.stdout.includes("stream.ServerStream"), result.stdout.join());
  });

  await t.step("with reflection: false, no reflection service", async () => {
    await using server = await startServer({ reflection: false });
    const result = await buf([
      ...CURL_H2C,
      "--list-services",
      `http://${server.addresses[0]}`,
    ]);
    strictEqual(result.code, 1);
    match(result.stderr.join("\n"), /unimplemented.*ServerReflection/);
  });
});

Deno.test("startServer() answers health checks", async (t) => {
  await t.step("SERVING for the server and for each service", async () => {
    await using server = await startServer();
    for (const service of ["", "stream.ServerStream", "stream.ClientStream"]) {
      const result = await buf([
        ...CURL_H2C,
        "-d",
        JSON.stringify({ service }),
        url(server.addresses[0]!, "grpc.health.v1.Health/Check"),
      ]);
      strictEqual(result.code, 0, result.stderr.join("\n"));
      deepStrictEqual(jsonValues(result.stdout), [{ status: "SERVING" }]);
    }
  });

  await t.step("NOT_FOUND for a service it does not host", async () => {
    await using server = await startServer();
    const result = await buf([
      ...CURL_H2C,
      "-d",
      '{"service": "stream.Nothing"}',
      url(server.addresses[0]!, "grpc.health.v1.Health/Check"),
    ]);
    strictEqual(result.code, 5 * 8);
  });

  await t.step(
    "NOT_SERVING to watchers while close() runs, then the watch ends",
    async () => {
      const server = await startServer({ gracePeriod: 10_000 });
      await using watch = spawnBuf([
        ...CURL_H2C,
        url(server.addresses[0]!, "grpc.health.v1.Health/Watch"),
      ]);
      await watch.waitForLine("stdout", /"status": "SERVING"/);
      const started = Date.now();
      const closing = server.close();
      await watch.waitForLine("stdout", /"status": "NOT_SERVING"/);
      const { code } = await watch.finished();
      strictEqual(code, 0);
      await closing;
      ok(
        Date.now() - started < 5_000,
        "an open Watch must not hold close() up for the grace period",
      );
    },
  );
});

Deno.test("@grpc/reflection reads .proto files from disk when loaded", async (t) => {
  // Kept as a test of why proto/standard.ts takes the vendored .proto files as text imports
  // and services/ registers the services itself: loading the package's own way needs
  // --allow-read for Deno's npm cache, which the documented permissions do not grant.
  await using directory = await tempDirectory();
  const scripts = {
    reflection: [
      'import * as grpc from "@grpc/grpc-js";',
      'import { ReflectionV1Implementation } from "@grpc/reflection";',
      "new ReflectionV1Implementation({}).addToServer(new grpc.Server());",
      "",
    ].join("\n"),
  };
  for (const [name, source] of Object.entries(scripts)) {
    await t.step(`${name}: Requires read access`, async () => {
      const path = `${directory.path}/${name}.ts`;
      await Deno.writeTextFile(path, source);
      const result = await runDeno([
        "run",
        `--config=${ROOT}deno.json`,
        ...RUN_PERMISSIONS,
        path,
      ]);
      strictEqual(result.code, 1);
      match(result.stderr.join("\n"), /NotCapable: Requires read access/);
    });
  }
});
