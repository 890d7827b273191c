/**
 * The command line over TLS: `serve --cert --key [--client-ca]` and the calling commands'
 * `--ca [--cert --key]`, as real subprocesses with the documented permissions plus read
 * access to the certificate files.
 */
import { deepStrictEqual, match, strictEqual } from "node:assert";
import { tempDirectory, writeCertificates } from "../_util/certificates.ts";
import { CLI, DenoProcess, type Finished } from "../_util/subprocess.ts";
import { NodeGrpcJs } from "../_util/tools.ts";

/** The documented permissions, with `localhost` for calls by host name. */
const PERMISSIONS = ["--allow-net=127.0.0.1,localhost", "--allow-env=GRPC_*"];

async function serve(
  args: string[],
  readable: string,
  env: Record<string, string> = {},
): Promise<{ process: DenoProcess; address: string }> {
  const process = DenoProcess.spawn(
    [
      "run",
      ...PERMISSIONS,
      `--allow-read=${readable}`,
      CLI,
      "serve",
      "--port",
      "0",
      ...args,
    ],
    { env },
  );
  const match = await process.waitForLine(
    "stdout",
    /^Serving gRPC on (\S+)$/,
  );
  return { process, address: match[1]! };
}

async function call(args: string[], readable: string): Promise<Finished> {
  await using process = DenoProcess.spawn([
    "run",
    ...PERMISSIONS,
    `--allow-read=${readable}`,
    CLI,
    ...args,
  ]);
  return await process.finished();
}

Deno.test("cli serve --cert --key serves TLS to the calling commands and to grpc-js under Node", async (t) => {
  await using directory = await tempDirectory();
  const files = await writeCertificates(directory.path);
  // A CA bundle of 300 certificates where grpc-js looks for default roots: handed to Deno's
  // node:tls as `ca`, it would be sent to every client (see tests/interop/tls_test.ts).
  const bundle = `${directory.path}/bundle.pem`;
  await Deno.writeTextFile(
    bundle,
    (await Deno.readTextFile(files.ca)).repeat(300),
  );
  const { process, address } = await serve(
    ["--cert", files.serverCert, "--key", files.serverKey],
    directory.path,
    { GRPC_DEFAULT_SSL_ROOTS_FILE_PATH: bundle },
  );
  await using _server = process;
  const port = address.split(":")[1]!;

  await t.step("pow --ca by IP address", async () => {
    const result = await call(
      ["pow", "2", "--count", "3", "--ca", files.ca, "--address", address],
      directory.path,
    );
    strictEqual(result.code, 0, result.stderr.join("\n"));
    deepStrictEqual(result.stdout, ["1", "2", "4"]);
  });

  await t.step("sum --ca by host name", async () => {
    const result = await call(
      ["sum", "1", "2", "--ca", files.ca, "--address", `localhost:${port}`],
      directory.path,
    );
    strictEqual(result.code, 0, result.stderr.join("\n"));
    deepStrictEqual(result.stdout, ["3"]);
  });

  await t.step(
    "grpc-js under Node (OpenSSL) completes the handshake",
    async () => {
      await using node = await NodeGrpcJs.install();
      const [, sumResult] = await node.run({ address, ca: files.ca });
      deepStrictEqual(sumResult, { call: "sum", values: ["6"] });
    },
  );

  await t.step("a CA it does not trust: exit 1, UNAVAILABLE", async () => {
    const result = await call(
      ["sqrt", "4", "--ca", files.otherCa, "--address", address],
      directory.path,
    );
    strictEqual(result.code, 1);
    match(result.stderr[0]!, /^error: UNAVAILABLE: /);
  });

  await t.step("plaintext: exit 1, the server speaks TLS", async () => {
    const result = await call(["sum", "1", "--address", address], "/dev/null");
    deepStrictEqual(result, {
      code: 1,
      stdout: [],
      stderr: [
        `error: UNAVAILABLE: Cannot reach ${address}: Server speaks TLS: call it with the tls option (--tls or --ca on the command line)`,
      ],
    });
  });
});

Deno.test("cli --ca to a plaintext server says it does not speak TLS", async () => {
  await using directory = await tempDirectory();
  const files = await writeCertificates(directory.path);
  const { process, address } = await serve([], directory.path);
  await using _server = process;
  const target = `localhost:${address.split(":")[1]}`;
  const result = await call(
    ["sum", "1", "--ca", files.ca, "--address", target],
    directory.path,
  );
  deepStrictEqual(result, {
    code: 1,
    stdout: [],
    stderr: [
      `error: UNAVAILABLE: Cannot reach ${target}: Server does not speak TLS: call it without the tls option (without --tls and --ca on the command line)`,
    ],
  });
});

Deno.test("cli serve --client-ca requires client certificates", async (t) => {
  await using directory = await tempDirectory();
  const files = await writeCertificates(directory.path);
  const { process, address } = await serve(
    [
      "--cert",
      files.serverCert,
      "--key",
      files.serverKey,
      "--client-ca",
      files.ca,
    ],
    directory.path,
  );
  await using _server = process;
  const port = address.split(":")[1]!;
  const common = ["--ca", files.ca, "--address", `localhost:${port}`];

  await t.step("sqrt --ca --cert --key gets through", async () => {
    const result = await call(
      [
        "sqrt",
        "9",
        ...common,
        "--cert",
        files.clientCert,
        "--key",
        files.clientKey,
      ],
      directory.path,
    );
    strictEqual(result.code, 0, result.stderr.join("\n"));
    deepStrictEqual(result.stdout, ["3"]);
  });

  await t.step("without --cert: exit 1, UNAVAILABLE", async () => {
    const result = await call(["sqrt", "9", ...common], directory.path);
    strictEqual(result.code, 1);
    match(result.stderr[0]!, /^error: UNAVAILABLE: /);
  });
});

Deno.test("cli TLS options are checked before anything runs", async (t) => {
  await using directory = await tempDirectory();
  const files = await writeCertificates(directory.path);

  await t.step("--cert without --key is a usage error", async () => {
    const result = await call(
      ["pow", "2", "--cert", files.clientCert],
      directory.path,
    );
    strictEqual(result.code, 2);
    match(result.stderr[0]!, /^error: Use --cert and --key together$/);
    match(result.stderr[1]!, /^Usage: grpc-stream pow/);
  });

  await t.step(
    "serve --client-ca without --cert is a usage error",
    async () => {
      const result = await call(
        ["serve", "--port", "0", "--client-ca", files.ca],
        directory.path,
      );
      strictEqual(result.code, 2);
      match(
        result.stderr[0]!,
        /^error: Use --client-ca with --cert and --key$/,
      );
    },
  );

  await t.step("a file that does not exist: exit 2", async () => {
    const result = await call(
      ["sum", "1", "--ca", `${directory.path}/missing.pem`],
      directory.path,
    );
    strictEqual(result.code, 2);
    match(result.stderr[0]!, /^error: File of --ca not found: /);
  });

  await t.step(
    "--ca given a key: exit 2, no certificate in the file",
    async () => {
      const result = await call(
        ["pow", "2", "--ca", files.serverKey, "--address", "127.0.0.1:1"],
        directory.path,
      );
      strictEqual(result.code, 2, result.stderr.join("\n"));
      deepStrictEqual(result.stderr, [
        `error: No certificate in ${files.serverKey}: --ca takes a PEM file with -----BEGIN CERTIFICATE-----`,
      ]);
    },
  );

  await t.step(
    "serve --key given a certificate: exit 2, no private key in the file",
    async () => {
      const result = await call(
        ["serve", "--port", "0", "--cert", files.serverCert, "--key", files.ca],
        directory.path,
      );
      strictEqual(result.code, 2, result.stderr.join("\n"));
      deepStrictEqual(result.stderr, [
        `error: No private key in ${files.ca}: --key takes a PEM file with -----BEGIN PRIVATE KEY-----`,
      ]);
    },
  );

  await t.step("no read permission: exit 1, naming the flag", async () => {
    const result = await call(["sum", "1", "--ca", files.ca], "/dev/null");
    strictEqual(result.code, 1);
    match(
      result.stderr[0]!,
      /^error: Requires read access to .*ca\.pem \(--ca\): run again with --allow-read=/,
    );
  });

  await t.step("demo: TLS options need --address", async () => {
    const result = await call(["demo", "--tls"], directory.path);
    strictEqual(result.code, 2);
    match(result.stderr[0]!, /^error: TLS options need --address/);
  });
});
