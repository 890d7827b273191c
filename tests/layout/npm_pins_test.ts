/**
 * The npm pins: each package's version written once, in `internals/npm/`, which the shipped
 * files import by path. A bare specifier (`@grpc/grpc-js`) in a shipped file resolves only
 * through this repository's import map, so a user importing the module by path or URL gets
 * `Import "@grpc/grpc-js" not a dependency`; a second copy of a version drifts from the first.
 *
 * @module
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { PINNED_GRPC_JS_VERSION } from "../../internals/versions.ts";

const ROOT = new URL("../../", import.meta.url);

/** The published folders and files that hold code, as `deno.json`'s `publish.include`. */
const SHIPPED = [
  "mod.ts",
  "cli.ts",
  "cli/",
  "clients/",
  "services/",
  "proto/",
  "internals/",
  "telemetry/",
];

/** Where the npm specifiers live. */
const PINS = "internals/npm/";

/** The TypeScript files under the shipped folders, with their text. */
async function shippedSources(): Promise<Map<string, string>> {
  const sources = new Map<string, string>();
  async function walk(path: string): Promise<void> {
    const url = new URL(path, ROOT);
    if (!path.endsWith("/")) {
      sources.set(path, await Deno.readTextFile(url));
      return;
    }
    for await (const entry of Deno.readDir(url)) {
      if (entry.isDirectory) await walk(`${path}${entry.name}/`);
      else if (entry.name.endsWith(".ts")) await walk(`${path}${entry.name}`);
    }
  }
  for (const entry of SHIPPED) await walk(entry);
  return sources;
}

/**
 * Every module specifier of `source`: `from "…"`, `import "…"`, `import("…")`, outside
 * comments (a JSDoc example may show how a user imports a package).
 */
function specifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(
    /^\s*\/\/.*$/gm,
    "",
  );
  const found: string[] = [];
  const pattern =
    /(?:^|[\s;}])(?:from|import)\s*\(?\s*"([^"]+)"|(?:^|[\s;}])export\s*\*\s*from\s*"([^"]+)"/gm;
  for (const match of code.matchAll(pattern)) {
    found.push((match[1] ?? match[2])!);
  }
  return found;
}

/** `npm:@grpc/grpc-js@1.14.7/build/x.js` as its package and version. */
function npmPin(specifier: string): { name: string; version: string } {
  const match = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)@([^/]+)/.exec(specifier);
  ok(match, `Not a versioned npm specifier: ${specifier}`);
  return { name: match[1]!, version: match[2]! };
}

Deno.test("npm packages are pinned once, in internals/npm/", async (t) => {
  const sources = await shippedSources();
  const pins = new Map<string, Set<string>>();
  for (const [path, source] of sources) {
    for (const specifier of specifiers(source)) {
      if (!specifier.startsWith("npm:")) continue;
      const { name, version } = npmPin(specifier);
      const versions = pins.get(name) ?? new Set<string>();
      versions.add(version);
      pins.set(name, versions);
      ok(path.startsWith(PINS), `${path} imports ${specifier}`);
    }
  }

  await t.step("the pins are found", () => {
    // An empty map would pass every check below: a change in how the files import shows here.
    ok(pins.has("@grpc/grpc-js"), [...pins.keys()].join(", "));
  });

  await t.step(
    "shipped files import only paths and node: or npm: specifiers",
    () => {
      const bare: string[] = [];
      for (const [path, source] of sources) {
        for (const specifier of specifiers(source)) {
          if (!/^(?:\.{1,2}\/|node:|npm:)/.test(specifier)) {
            bare.push(`${path}: ${specifier}`);
          }
        }
      }
      deepStrictEqual(bare, []);
    },
  );

  await t.step("each package has one version", () => {
    const several = [...pins].filter(([, versions]) => versions.size > 1)
      .map(([name, versions]) => `${name}: ${[...versions].join(", ")}`);
    deepStrictEqual(several, []);
  });

  await t.step("no other shipped file writes a pinned version", () => {
    const copies: string[] = [];
    for (const [path, source] of sources) {
      if (path.startsWith(PINS) || path === "internals/versions.ts") continue;
      for (const [name, versions] of pins) {
        for (const version of versions) {
          if (source.includes(`${name}@${version}`)) {
            copies.push(`${path}: ${name}@${version}`);
          }
        }
      }
    }
    deepStrictEqual(copies, []);
  });

  await t.step(
    "internals/versions.ts pins the grpc-js of internals/npm/",
    () => {
      deepStrictEqual(
        [...pins.get("@grpc/grpc-js") ?? []],
        [PINNED_GRPC_JS_VERSION],
      );
    },
  );

  await t.step(
    "deno.json maps bare names onto internals/npm/, with no version",
    async () => {
      const config = JSON.parse(
        await Deno.readTextFile(new URL("deno.json", ROOT)),
      ) as { imports?: Record<string, string> };
      const elsewhere = Object.entries(config.imports ?? {})
        .filter(([, target]) => !target.startsWith(`./${PINS}`))
        .map(([name, target]) => `${name}: ${target}`);
      deepStrictEqual(elsewhere, []);
    },
  );

  await t.step("deno.lock resolves each pin to its version", async () => {
    const lock = JSON.parse(
      await Deno.readTextFile(new URL("deno.lock", ROOT)),
    ) as { specifiers: Record<string, string> };
    for (const [name, versions] of pins) {
      for (const version of versions) {
        const locked = lock.specifiers[`npm:${name}@${version}`];
        ok(locked !== undefined, `npm:${name}@${version} is not in deno.lock`);
        strictEqual(locked.split("_")[0], version);
      }
    }
  });
});
