import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { RUN_PERMISSIONS, runDeno } from "../_util/subprocess.ts";

const CHECKOUT = new URL("../../", import.meta.url);

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".ts": "application/typescript; charset=utf-8",
  ".proto": "text/plain; charset=utf-8",
  ".json": "application/json; charset=utf-8",
};

/**
 * Serves the checkout's files the way a package registry would: by URL, with content types.
 * Every run serves under a fresh prefix, so nothing can come from Deno's cache of an earlier
 * run that happened to get the same port.
 */
function serveCheckout(
  prefix: string,
  requested: string[],
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const fullPath = new URL(request.url).pathname;
      if (!fullPath.startsWith(prefix)) {
        return new Response("Not found", { status: 404 });
      }
      const path = fullPath.slice(prefix.length - 1);
      requested.push(path);
      const extension = path.slice(path.lastIndexOf("."));
      const contentType = CONTENT_TYPES[extension];
      if (contentType === undefined || path.includes("..")) {
        return new Response("Not found", { status: 404 });
      }
      try {
        const body = await Deno.readFile(new URL(`.${path}`, CHECKOUT));
        return new Response(body, { headers: { "content-type": contentType } });
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) {
          return new Response("Not found", { status: 404 });
        }
        throw error;
      }
    },
  );
}

Deno.test("cli demo runs from an http URL with the package's import map", async (t) => {
  const requested: string[] = [];
  const prefix = `/${crypto.randomUUID()}/`;
  await using server = serveCheckout(prefix, requested);
  const base = `http://127.0.0.1:${server.addr.port}${prefix}`;

  const result = await runDeno([
    "run",
    ...RUN_PERMISSIONS,
    // Only what the URL serves: no local deno.json, no lockfile to update.
    "--no-config",
    "--no-lock",
    `--import-map=${base}deno.json`,
    `--reload=${base}`,
    `${base}cli.ts`,
    "demo",
    "--interval",
    "5",
  ]);

  await t.step("the demo prints the article's lines and exits 0", () => {
    strictEqual(result.code, 0, result.stderr.join("\n"));
    const clientLines = result.stdout.filter((line) =>
      /^(Recv data:512|server closed|sum: 45|Recv Data:3|Server Closed)$/.test(
        line,
      )
    );
    deepStrictEqual(clientLines, [
      "Recv data:512",
      "server closed",
      "sum: 45",
      "Recv Data:3",
      "Server Closed",
    ]);
    ok(result.stdout.includes("[server] Recv Client Data 2"));
  });

  await t.step("the module and its .proto files came over http", () => {
    for (
      const path of [
        "/deno.json",
        "/cli.ts",
        "/mod.ts",
        "/proto/server_stream.proto",
        "/proto/client_stream.proto",
        "/proto/bidirectional_stream.proto",
        "/proto/grpc/health/v1/health.proto",
        "/proto/grpc/reflection/v1/reflection.proto",
      ]
    ) {
      ok(requested.includes(path), `${path} was not requested`);
    }
  });
});
