/**
 * The sockets of their own that `serve --workers N` asks of `startServer`
 * (`services/port_sharing.ts`, `internals/grpc_js_listen.ts`): two servers in one process
 * stand in for two workers.
 */
import { ok, rejects, strictEqual } from "node:assert";
import { createClient, startServer } from "../../mod.ts";
import { sharePorts } from "../../services/port_sharing.ts";
import { runDeno } from "../_util/subprocess.ts";

Deno.test("sharePorts() lets a second server bind the port the first picked", async (t) => {
  const firstOptions = { hostname: "127.0.0.1", port: 0 };
  const firstSharing = sharePorts(firstOptions);
  await using first = await startServer(firstOptions);
  strictEqual(firstSharing.ownSocket, true);

  const secondOptions = { hostname: "127.0.0.1", port: first.port };
  const secondSharing = sharePorts(secondOptions);
  await using second = await startServer(secondOptions);
  strictEqual(secondSharing.ownSocket, true);
  strictEqual(second.port, first.port);

  await t.step("calls on the shared port are answered", async () => {
    for (let index = 0; index < 8; index++) {
      // One client is one connection: the kernel picks the server of each.
      using client = createClient(first.addresses[0]!);
      strictEqual(await client.sum([index, 1]), BigInt(index + 1));
    }
  });

  await t.step(
    "a server not asked to share still finds the port taken",
    async () => {
      await rejects(
        startServer({ hostname: "127.0.0.1", port: first.port }),
        (error) =>
          error instanceof Error &&
          error.message ===
            `Cannot listen on 127.0.0.1:${first.port}: address already in use`,
      );
    },
  );

  await t.step(
    "the closed server's socket leaves the other serving",
    async () => {
      await first.close();
      for (let index = 0; index < 4; index++) {
        using client = createClient(second.addresses[0]!);
        strictEqual(await client.sum([index, 2]), BigInt(index + 2));
      }
    },
  );
});

Deno.test("listenOnOwnSocket() says once that grpc-js lacks createHttp2Server", async () => {
  // A process of its own: a fallback is said once per process.
  const script = `
    import { listenOnOwnSocket } from "${
    new URL("../../internals/grpc_js_listen.ts", import.meta.url).href
  }";
    import { fastPathRecord } from "${
    new URL("../../internals/_fast_path_record.ts", import.meta.url).href
  }";
    const answers = [listenOnOwnSocket({}), listenOnOwnSocket({})];
    console.log(JSON.stringify({ answers, missed: Object.fromEntries(fastPathRecord().missed) }));
  `;
  const { code, stdout, stderr } = await runDeno(
    ["run", "--allow-env", "-"],
    script,
  );
  strictEqual(code, 0, stderr.join("\n"));
  const result = JSON.parse(stdout.at(-1)!);
  strictEqual(JSON.stringify(result.answers), "[false,false]");
  strictEqual(
    result.missed["own listening socket"],
    "grpc-js server.createHttp2Server",
  );
  strictEqual(
    stderr.filter((line) => line.includes("own listening socket")).length,
    1,
    stderr.join("\n"),
  );
  ok(stderr[0]?.startsWith("Fast path off: own listening socket: "));
});
