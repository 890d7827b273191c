/**
 * The first `deno task demo` of a fresh clone: a Deno cache of its own (a fresh `DENO_DIR`,
 * filled from the npm registry) and the files the package publishes, with the checkout's
 * deno.json and lockfile. It must print the demo and nothing else: no boxed warning about
 * npm build scripts, and no download of a development tool such as buf.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { join } from "node:path";
import { DenoProcess } from "../_util/subprocess.ts";
import { switchWarnings } from "../_util/fast_paths_switch.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);

/** A copy of the files the package publishes, plus its lockfile. */
async function copyCheckout(into: string): Promise<void> {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const paths: string[] = [...config.publish.include, "deno.lock"];
  for (const path of paths) {
    const from = join(ROOT, path);
    const info = await Deno.stat(from);
    if (info.isDirectory) {
      await copyDirectory(from, join(into, path));
    } else {
      await Deno.copyFile(from, join(into, path));
    }
  }
}

async function copyDirectory(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isDirectory) {
      await copyDirectory(join(from, entry.name), join(to, entry.name));
    } else if (entry.isFile) {
      await Deno.copyFile(join(from, entry.name), join(to, entry.name));
    }
  }
}

Deno.test("the first deno task demo of a fresh clone prints no warning and fetches no dev tool", async () => {
  const checkout = await Deno.makeTempDir({ prefix: "grpc-stream-clone-" });
  const denoDir = await Deno.makeTempDir({ prefix: "grpc-stream-deno-dir-" });
  try {
    await copyCheckout(checkout);
    await using demo = DenoProcess.spawn(["task", "demo"], {
      cwd: checkout,
      env: { DENO_DIR: denoDir },
    });
    // The first run downloads the npm packages: up to a minute on a slow link.
    const result = await demo.finished(60_000);
    strictEqual(result.code, 0, result.stderr.join("\n"));
    strictEqual(result.stdout.at(-1), "Server Closed");
    const noise = result.stderr.filter((line) =>
      !/^(?:Download|Task demo) /.test(line)
    );
    deepStrictEqual(
      noise,
      switchWarnings().map((line) => `[server] ${line}`),
      "stderr beyond downloads",
    );
    ok(
      !result.stderr.some((line) => /bufbuild/.test(line)),
      result.stderr.join("\n"),
    );
    const npm = join(denoDir, "npm", "registry.npmjs.org");
    const fetched = [...Deno.readDirSync(npm)].map((entry) => entry.name);
    ok(fetched.includes("@grpc"), fetched.join(", "));
    ok(!fetched.includes("@bufbuild"), `fetched buf: ${fetched.join(", ")}`);
  } finally {
    await Deno.remove(checkout, { recursive: true });
    await Deno.remove(denoDir, { recursive: true });
  }
});
