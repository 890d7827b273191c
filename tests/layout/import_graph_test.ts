/**
 * The shipped files' imports, as `deno info --json` resolves them (type imports included):
 * no cycle, and the server and client rooms apart. A cycle makes the order modules run in
 * depend on which file a user imports first, and ties rooms that should change alone.
 *
 * @module
 */
import { deepStrictEqual, ok } from "node:assert";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The folders and files published (`deno.json`'s `publish.include`) that hold code. */
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

/** The entry points a user imports. */
const ROOTS = ["mod.ts", "cli.ts"];

/** Local modules by path from the repository root, each with the local modules it imports. */
type ImportGraph = Map<string, Set<string>>;

interface DenoInfoDependency {
  code?: { specifier?: string };
  type?: { specifier?: string };
}

interface DenoInfoModule {
  specifier: string;
  dependencies?: DenoInfoDependency[];
}

/** The repository's root: the nearest folder above this file that holds `deno.json`. */
async function repositoryRoot(): Promise<URL> {
  let folder = new URL("./", import.meta.url);
  for (;;) {
    try {
      await Deno.stat(new URL("deno.json", folder));
      return folder;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    const parent = new URL("../", folder);
    if (parent.href === folder.href) {
      throw new Error(`No deno.json above ${import.meta.url}`);
    }
    folder = parent;
  }
}

function isShipped(path: string): boolean {
  return SHIPPED.some((entry) =>
    entry.endsWith("/") ? path.startsWith(entry) : path === entry
  );
}

/** The local modules `deno info` finds from `entry`, and their imports. */
async function importsFrom(root: URL, entry: string): Promise<ImportGraph> {
  const graph: ImportGraph = new Map();
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: fileURLToPath(root),
    stdout: "piped",
    stderr: "piped",
  }).output();
  ok(
    output.success,
    `deno info ${entry} failed: ${new TextDecoder().decode(output.stderr)}`,
  );
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: DenoInfoModule[];
  };
  const local = (specifier: string | undefined): string | undefined =>
    specifier?.startsWith(root.href)
      ? specifier.slice(root.href.length)
      : undefined;
  for (const module of info.modules) {
    const path = local(module.specifier);
    if (path === undefined) continue;
    const imports = graph.get(path) ?? new Set<string>();
    graph.set(path, imports);
    for (const dependency of module.dependencies ?? []) {
      for (const resolved of [dependency.code, dependency.type]) {
        const target = local(resolved?.specifier);
        if (target !== undefined) imports.add(target);
      }
    }
  }
  return graph;
}

/** The TypeScript files under the shipped folders, by path from the root. */
async function shippedFiles(root: URL): Promise<string[]> {
  const files: string[] = [];
  async function walk(folder: string): Promise<void> {
    for await (const entry of Deno.readDir(new URL(folder, root))) {
      const path = `${folder}${entry.name}`;
      if (entry.isDirectory) await walk(`${path}/`);
      else if (entry.isFile && path.endsWith(".ts")) files.push(path);
    }
  }
  for (const entry of SHIPPED) {
    if (entry.endsWith("/")) await walk(entry);
    else files.push(entry);
  }
  return files.sort();
}

/**
 * The graph of the shipped files: from the entry points, then from any shipped file they do
 * not reach, so that no file escapes the checks.
 */
async function shippedGraph(root: URL): Promise<ImportGraph> {
  const graph: ImportGraph = new Map();
  async function add(entry: string): Promise<void> {
    for (const [path, imports] of await importsFrom(root, entry)) {
      graph.set(path, imports);
    }
  }
  for (const entry of ROOTS) await add(entry);
  for (const file of await shippedFiles(root)) {
    if (!graph.has(file)) await add(file);
  }
  for (const [path, imports] of graph) {
    if (!isShipped(path)) graph.delete(path);
    else {
      for (const target of imports) {
        if (!isShipped(target)) imports.delete(target);
      }
    }
  }
  return graph;
}

/**
 * The import cycles a depth-first walk meets, at least one wherever files import one another
 * in a loop; each as the files around it, the first repeated at the end.
 */
function findCycles(graph: ImportGraph): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  function visit(file: string): void {
    path.push(file);
    onPath.add(file);
    for (const target of [...(graph.get(file) ?? [])].sort()) {
      if (onPath.has(target)) {
        cycles.push([...path.slice(path.indexOf(target)), target]);
      } else if (!done.has(target)) visit(target);
    }
    path.pop();
    onPath.delete(file);
    done.add(file);
  }
  for (const file of [...graph.keys()].sort()) {
    if (!done.has(file)) visit(file);
  }
  return cycles;
}

/** The imports from files under `from` to files under any of `to`, as `a.ts -> b.ts`. */
function importsAcross(
  graph: ImportGraph,
  rooms: { from: string; to: string[] },
): string[] {
  const found: string[] = [];
  for (const [path, imports] of graph) {
    if (!path.startsWith(rooms.from)) continue;
    for (const target of imports) {
      if (rooms.to.some((room) => target.startsWith(room))) {
        found.push(`${path} -> ${target}`);
      }
    }
  }
  return found.sort();
}

Deno.test("shipped files import one another without a cycle", async (t) => {
  const root = await repositoryRoot();
  const graph = await shippedGraph(root);

  await t.step(
    "the graph holds every shipped file and its imports",
    async () => {
      // An empty graph would pass every check below: a change in `deno info`'s output shows here.
      deepStrictEqual(
        [...graph.keys()].filter((path) => path.endsWith(".ts")).sort(),
        await shippedFiles(root),
      );
      ok((graph.get("mod.ts")?.size ?? 0) > 0, "mod.ts imports nothing");
    },
  );

  await t.step("no file imports itself through others", () => {
    const cycles = findCycles(graph).map((cycle) => cycle.join(" -> "));
    deepStrictEqual(cycles, [], `Import cycles:\n${cycles.join("\n")}`);
  });

  await t.step("services/ and clients/ never import each other", () => {
    deepStrictEqual(
      [
        ...importsAcross(graph, { from: "services/", to: ["clients/"] }),
        ...importsAcross(graph, { from: "clients/", to: ["services/"] }),
      ],
      [],
    );
  });

  await t.step("proto/ imports neither services/ nor clients/", () => {
    deepStrictEqual(
      importsAcross(graph, { from: "proto/", to: ["services/", "clients/"] }),
      [],
    );
  });

  await t.step("telemetry/ imports neither services/ nor clients/", () => {
    deepStrictEqual(
      importsAcross(graph, {
        from: "telemetry/",
        to: ["services/", "clients/", "cli/", "mod.ts", "cli.ts"],
      }),
      [],
    );
  });

  await t.step("internals/ imports none of the rooms that use it", () => {
    deepStrictEqual(
      importsAcross(graph, {
        from: "internals/",
        to: ["services/", "clients/", "cli/", "mod.ts", "cli.ts"],
      }),
      [],
    );
  });
});

Deno.test("a cycle of type imports is found through deno info", async () => {
  const folder = await Deno.makeTempDir({ prefix: "import_graph_" });
  try {
    await Deno.writeTextFile(
      `${folder}/a.ts`,
      'import type { B } from "./b.ts";\nexport interface A { b?: B }\n',
    );
    await Deno.writeTextFile(
      `${folder}/b.ts`,
      'import type { A } from "./a.ts";\nexport interface B { a?: A }\n',
    );
    const graph = await importsFrom(pathToFileURL(`${folder}/`), "a.ts");
    deepStrictEqual(findCycles(graph), [["a.ts", "b.ts", "a.ts"]]);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("findCycles() names the files around a cycle", () => {
  const graph: ImportGraph = new Map([
    ["a.ts", new Set(["b.ts"])],
    ["b.ts", new Set(["c.ts"])],
    ["c.ts", new Set(["a.ts", "d.ts"])],
    ["d.ts", new Set()],
  ]);
  deepStrictEqual(findCycles(graph), [["a.ts", "b.ts", "c.ts", "a.ts"]]);
  graph.get("c.ts")!.delete("a.ts");
  deepStrictEqual(findCycles(graph), []);
});
