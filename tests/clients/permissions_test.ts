/**
 * The module under the narrowest permissions a user gives it, as real subprocesses: without
 * `--allow-env` grpc-js loads as if its variables were unset, the grpc-js transport works
 * under the README's `--allow-env=GRPC_*` by going without a proxy, and a permission that
 * is half given is one line naming the flag.
 */
import { deepStrictEqual, match, strictEqual } from "node:assert";
import { DenoProcess, type Finished } from "../_util/subprocess.ts";
import { switchWarnings } from "../_util/fast_paths_switch.ts";

const CLIENT = new URL("../fixtures/permissions_client.ts", import.meta.url)
  .href;
const OUTSIDE_NET_CLIENT = new URL(
  "../fixtures/outside_net_client.ts",
  import.meta.url,
).href;

async function runClient(
  permissions: string[],
  transport: string,
  env: Record<string, string> = {},
): Promise<Finished> {
  await using process = DenoProcess.spawn(
    ["run", ...permissions, CLIENT, transport],
    { env },
  );
  return await process.finished(30_000);
}

/** The variables grpc-js reads for a proxy. */
const PROXY_VARIABLES =
  "grpc_proxy,https_proxy,http_proxy,no_grpc_proxy,no_proxy";

Deno.test("a program importing the module needs no env permission", async (t) => {
  for (const transport of ["http2", "grpc-js"]) {
    await t.step(`over ${transport}`, async () => {
      const result = await runClient(["--allow-net=127.0.0.1"], transport);
      deepStrictEqual(result, { code: 0, stdout: ["sum 42"], stderr: [] });
    });
  }
});

Deno.test("the grpc-js transport works under the README's permissions", async (t) => {
  await t.step("--allow-env=GRPC_*: no proxy is looked for", async () => {
    const result = await runClient(
      ["--allow-net=127.0.0.1", "--allow-env=GRPC_*"],
      "grpc-js",
      // Without the permission for it, a proxy variable is not read at all.
      { grpc_proxy: "http://127.0.0.1:9" },
    );
    deepStrictEqual(result, {
      code: 0,
      stdout: ["sum 42"],
      stderr: switchWarnings(),
    });
  });

  await t.step(
    "with the proxy variables allowed, grpc-js uses the proxy",
    async () => {
      // Port 9 (discard) has nothing listening on loopback: the call fails only if grpc-js
      // goes through the proxy the variable names.
      const result = await runClient(
        ["--allow-net=127.0.0.1", `--allow-env=GRPC_*,${PROXY_VARIABLES}`],
        "grpc-js",
        { grpc_proxy: "http://127.0.0.1:9" },
      );
      strictEqual(result.code, 1, result.stderr.join("\n"));
      match(result.stderr.join("\n"), /UNAVAILABLE/);
    },
  );

  await t.step(
    "only some proxy variables allowed: one line naming the flag",
    async () => {
      const result = await runClient(
        ["--allow-net=127.0.0.1", "--allow-env=GRPC_*,grpc_proxy"],
        "grpc-js",
      );
      strictEqual(result.code, 1);
      match(
        result.stderr.join("\n"),
        new RegExp(
          `NotCapable: Requires env access to https_proxy, http_proxy, no_grpc_proxy, no_proxy for the grpc-js transport's proxy: run again with --allow-env=GRPC_\\*,${PROXY_VARIABLES}`,
        ),
      );
    },
  );
});

Deno.test("a call to a host outside --allow-net rejects with NotCapable naming the flag", async (t) => {
  for (const transport of ["http2", "grpc-js"]) {
    for (
      const [address, flag] of [
        // An IP address Deno refuses to connect to, and a name it refuses to look up.
        ["10.255.255.1:9", "10.255.255.1"],
        ["localhost:9", "localhost"],
        ["[::1]:9", "[::1]"],
      ]
    ) {
      await t.step(`${address} over ${transport}`, async () => {
        await using process = DenoProcess.spawn([
          "run",
          "--allow-net=127.0.0.1",
          OUTSIDE_NET_CLIENT,
          transport,
          address!,
        ]);
        const line =
          `NotCapable: Requires net access to ${address}: run again with --allow-net=${flag}`;
        deepStrictEqual(await process.finished(30_000), {
          code: 0,
          stdout: [line, line],
          stderr: [],
        });
      });
    }
  }
});
