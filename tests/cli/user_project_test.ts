/**
 * The module as a user's own project takes it without JSR: `mod.ts` imported by path (a
 * vendored copy, a git submodule) from a folder with its own `deno.json` or none, and
 * `cli.ts` and `mod.ts` run from an http URL, with no import map of the user's own. Each
 * program is a real subprocess in a temporary folder far from the checkout's `deno.json`,
 * with one fresh `DENO_DIR` for the whole test, filled from the npm registry by its first
 * step, so that nothing comes from the machine's cache.
 *
 * @module
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { join } from "node:path";
import { DenoProcess, type Finished } from "../_util/subprocess.ts";
import { POWER_LINES, ROOT_LINES } from "../_util/article_lines.ts";
import { switchWarnings } from "../_util/fast_paths_switch.ts";

const CHECKOUT = new URL("../../", import.meta.url);

/** How long a first run may take: it downloads the npm packages on a slow link. */
const FIRST_RUN_MS = 90_000;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".ts": "application/typescript; charset=utf-8",
  ".proto": "text/plain; charset=utf-8",
  ".json": "application/json; charset=utf-8",
};

/**
 * Serves the checkout's files as a static file server would: by URL, with content types. The
 * module reads its `deno.json` as data (its version, for the client's `user-agent`); Deno
 * never takes a remote `deno.json` as configuration, so no import map comes with it. Every
 * run serves under a fresh prefix, so nothing can come from a cache of an earlier run that
 * happened to get the same port.
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
      const contentType = CONTENT_TYPES[path.slice(path.lastIndexOf("."))];
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

/** A user's program: a server on a free port and one call of each kind. */
function appSource(moduleSpecifier: string): string {
  return [
    `import { pow, sqrt, startServer, sum } from ${
      JSON.stringify(moduleSpecifier)
    };`,
    "",
    "await using server = await startServer({ port: 0 });",
    "const address = server.addresses[0]!;",
    "const powers = await Array.fromAsync(pow(2, { address, count: 4 }));",
    'console.log(`pow: ${powers.join(" ")}`);',
    "console.log(`sum: ${await sum([1, 2, 3], { address })}`);",
    "const roots = await Array.fromAsync(sqrt([4, 9], { address }));",
    'console.log(`sqrt: ${roots.join(" ")}`);',
    "",
  ].join("\n");
}

const APP_LINES = ["pow: 1 2 4 8", "sum: 6", "sqrt: 2 3"];

/** Runs `deno` in `folder` with the test's own `DENO_DIR`. */
async function denoIn(
  folder: string,
  options: { args: string[]; denoDir: string },
): Promise<Finished> {
  await using process = DenoProcess.spawn(options.args, {
    cwd: folder,
    env: { DENO_DIR: options.denoDir },
  });
  return await process.finished(FIRST_RUN_MS);
}

/**
 * Deno's box for npm packages whose install scripts it did not run, which it shows once per
 * project folder when the project's `deno.json` does not deny them (docs/development.md):
 * the packages it names, and the lines outside the box.
 */
function splitBuildScriptsBox(
  lines: string[],
): { boxed: string[]; rest: string[] } {
  const start = lines.indexOf("╭ Warning");
  const end = lines.indexOf("╰─", start);
  if (start === -1 || end === -1) return { boxed: [], rest: lines };
  const box = lines.slice(start, end + 1);
  if (!box.some((line) => line.includes("Ignored build scripts"))) {
    return { boxed: [], rest: lines };
  }
  return {
    boxed: box.flatMap((line) => /npm:([^@\s]+)@/.exec(line)?.[1] ?? []),
    rest: [...lines.slice(0, start), ...lines.slice(end + 1)],
  };
}

/**
 * Deno's `Download …` lines, which every first run prints, left out, and the fast-path
 * switch's own line under `deno task test:fallbacks`.
 */
function beyondDownloads(lines: string[]): string[] {
  const switchLines = switchWarnings();
  return lines.filter((line) =>
    !line.startsWith("Download ") && !switchLines.includes(line)
  );
}

Deno.test("mod.ts and cli.ts run in a user's own project, by path and by URL", async (t) => {
  const denoDir = await Deno.makeTempDir({ prefix: "grpc-stream-deno-dir-" });
  const projects = await Deno.makeTempDir({ prefix: "grpc-stream-user-" });
  const modPath = decodeURIComponent(new URL("mod.ts", CHECKOUT).pathname);
  const permissions = ["--allow-net=127.0.0.1", "--allow-env=GRPC_*"];
  try {
    await t.step(
      "an app with a deno.json of its own imports mod.ts by path",
      async () => {
        const folder = join(projects, "with-config");
        await Deno.mkdir(folder);
        // The one line docs/development.md tells a user to add to keep protobufjs's box away.
        await Deno.writeTextFile(
          join(folder, "deno.json"),
          JSON.stringify({ allowScripts: { deny: ["npm:protobufjs"] } }),
        );
        await Deno.writeTextFile(join(folder, "app.ts"), appSource(modPath));
        const result = await denoIn(folder, {
          args: ["run", ...permissions, "app.ts"],
          denoDir,
        });
        strictEqual(result.code, 0, result.stderr.join("\n"));
        deepStrictEqual(result.stdout, APP_LINES);
        deepStrictEqual(beyondDownloads(result.stderr), []);
        const npm = join(denoDir, "npm", "registry.npmjs.org");
        const fetched = [...Deno.readDirSync(npm)].map((entry) => entry.name);
        ok(fetched.includes("@grpc"), `not from the registry: ${fetched}`);
      },
    );

    await t.step(
      "an app with no deno.json imports mod.ts by path",
      async () => {
        const folder = join(projects, "no-config");
        await Deno.mkdir(folder);
        await Deno.writeTextFile(join(folder, "app.ts"), appSource(modPath));
        const run = async (): Promise<Finished> =>
          await denoIn(folder, {
            args: ["run", ...permissions, "app.ts"],
            denoDir,
          });
        const first = await run();
        strictEqual(first.code, 0, first.stderr.join("\n"));
        deepStrictEqual(first.stdout, APP_LINES);
        const { boxed, rest } = splitBuildScriptsBox(first.stderr);
        deepStrictEqual(boxed.filter((name) => name !== "protobufjs"), []);
        deepStrictEqual(beyondDownloads(rest), []);
        const again = await run();
        strictEqual(again.code, 0, again.stderr.join("\n"));
        deepStrictEqual(again.stdout, APP_LINES);
        deepStrictEqual(
          again.stderr,
          switchWarnings(),
          "the second run prints nothing of its own",
        );
      },
    );

    const requested: string[] = [];
    const prefix = `/${crypto.randomUUID()}/`;
    await using server = serveCheckout(prefix, requested);
    const base = `http://127.0.0.1:${server.addr.port}${prefix}`;
    const fromUrl = [
      "run",
      `--allow-import=127.0.0.1:${server.addr.port}`,
      ...permissions,
    ];

    await t.step(
      "deno run URL/cli.ts demo prints the article's lines",
      async () => {
        const folder = join(projects, "demo");
        await Deno.mkdir(folder);
        const result = await denoIn(folder, {
          args: [...fromUrl, `${base}cli.ts`, "demo", "--interval", "5"],
          denoDir,
        });
        strictEqual(result.code, 0, result.stderr.join("\n"));
        const clientLines = result.stdout.filter((line) =>
          /^(Recv data:\d+|server closed|sum: \d+|Recv Data:[\d.]+|Server Closed)$/
            .test(line)
        );
        deepStrictEqual(clientLines, [
          ...POWER_LINES,
          "server closed",
          "sum: 45",
          ...ROOT_LINES,
          "Server Closed",
        ]);
        const { boxed, rest } = splitBuildScriptsBox(result.stderr);
        deepStrictEqual(boxed.filter((name) => name !== "protobufjs"), []);
        deepStrictEqual(
          beyondDownloads(rest).filter((line) => !line.startsWith("[server] ")),
          [],
        );
      },
    );

    await t.step(
      "the module and its .proto files came over http, with no import map",
      () => {
        for (
          const path of [
            "/cli.ts",
            "/mod.ts",
            "/internals/npm/grpc_js.ts",
            "/proto/server_stream.proto",
            "/proto/client_stream.proto",
            "/proto/bidirectional_stream.proto",
            "/proto/grpc/health/v1/health.proto",
            "/proto/grpc/reflection/v1/reflection.proto",
          ]
        ) {
          ok(requested.includes(path), `${path} was not requested`);
        }
      },
    );

    await t.step("an app imports mod.ts from the URL", async () => {
      const folder = join(projects, "url-app");
      await Deno.mkdir(folder);
      await Deno.writeTextFile(
        join(folder, "app.ts"),
        appSource(`${base}mod.ts`),
      );
      const result = await denoIn(folder, {
        args: [...fromUrl, "app.ts"],
        denoDir,
      });
      strictEqual(result.code, 0, result.stderr.join("\n"));
      deepStrictEqual(result.stdout, APP_LINES);
      const { boxed, rest } = splitBuildScriptsBox(result.stderr);
      deepStrictEqual(boxed.filter((name) => name !== "protobufjs"), []);
      deepStrictEqual(beyondDownloads(rest), []);
    });
  } finally {
    await Deno.remove(projects, { recursive: true });
    await Deno.remove(denoDir, { recursive: true });
  }
});
