/**
 * The files, folders and tasks that README.md and docs/ name exist, read from the documents
 * when the test runs: a file that moves without its documentation fails here, not in the
 * hands of a reader who follows the path. The layout tree of docs/development.md is checked
 * too, both ways for `tests/`: every folder it names exists, and every folder of `tests/` is
 * named.
 *
 * @module
 */
import { deepStrictEqual, ok } from "node:assert";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The documents checked, from the repository's root. */
const DOCUMENTS_FOLDER = "docs";
const README = "README.md";

/** The kinds of file the repository holds; a path ending in another kind is not ours. */
const OUR_EXTENSIONS = /\.(ts|js|cjs|mjs|md|go|py|proto|json|yaml|sh)$/;

/**
 * Paths the documents name that are not files of the repository: Deno's own sources
 * (`ext/node/…`, named where a workaround explains a Deno bug), the folder a run of the
 * suite on the oldest Deno creates (`scratch/`, ignored by git), and the `stream/` folder
 * docs/wire.md says the protos do not sit in.
 */
const FOREIGN_PREFIXES = ["ext/", "scratch/", "stream/"];

/**
 * Bare file names that are no file of ours: what reflection makes of the four `.proto` files,
 * and the manifest of an npm package such as grpc-js.
 */
const FOREIGN_NAMES = ["stream.proto", "package.json"];

/** Where a document names something. */
interface Mention {
  /** The document, from the repository's root. */
  document: string;
  /** The path as the document writes it, or `deno task NAME`. */
  text: string;
}

/** A path of ours resolved from the repository's root, or `undefined` for anything else. */
function repositoryPath(token: string): string | undefined {
  const path = token.replace(/^\.\//, "").replace(/:\d+$/, "");
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$/.test(path)) return undefined;
  if (!path.includes("/")) return undefined;
  if (!path.endsWith("/") && !OUR_EXTENSIONS.test(path)) return undefined;
  if (FOREIGN_PREFIXES.some((prefix) => path.startsWith(prefix))) {
    return undefined;
  }
  return path;
}

/**
 * Every repository path, bare file name and task that `text` names: in code spans, in code
 * blocks (not the layout trees, read by {@linkcode treePaths}), and in links, which are
 * resolved from the document's folder.
 */
function mentionsIn(text: string, document: string): {
  paths: string[];
  names: string[];
  tasks: string[];
} {
  const paths: string[] = [];
  const names: string[] = [];
  const tasks = [...text.matchAll(/deno task ([a-z][a-z0-9:-]*)/g)].map((
    match,
  ) => match[1]!);
  const blocks = [...text.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].map((
    match,
  ) => match[1]!);
  const prose = text.replace(/^```[^\n]*\n[\s\S]*?^```/gm, "");
  for (const [, span] of prose.matchAll(/`([^`\n]+)`/g)) {
    const path = repositoryPath(span!);
    if (path !== undefined) paths.push(path);
    else if (/^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)+$/.test(span!)) {
      if (OUR_EXTENSIONS.test(span!)) names.push(span!);
    }
  }
  for (const block of blocks) {
    if (block.includes("├──")) continue;
    for (const token of block.split(/[\s"'`()=,;]+/)) {
      const path = repositoryPath(token);
      if (path !== undefined) paths.push(path);
    }
  }
  for (const [, target] of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^([a-z]+:|#)/.test(target!)) continue;
    const file = target!.split("#")[0]!;
    const folder = document.includes("/")
      ? document.slice(0, document.lastIndexOf("/") + 1)
      : "";
    paths.push(new URL(file, `file:///${folder}`).pathname.slice(1));
  }
  return { paths, names, tasks };
}

/**
 * The paths a layout tree names (```text blocks drawn with `├──` and `└──`), each from the
 * repository's root, folders ending in `/`. The tree's first line is its root: `.` or a
 * folder such as `tests/`.
 */
function treePaths(text: string): string[] {
  const paths: string[] = [];
  for (const [, block] of text.matchAll(/^```text\n([\s\S]*?)^```/gm)) {
    if (!block!.includes("├──")) continue;
    const lines = block!.split("\n").filter((line) => line.trim() !== "");
    const root = lines[0]!.trim().split(/\s+/)[0]!;
    const stack: string[] = [root === "." ? "" : root];
    for (const line of lines.slice(1)) {
      const match = /^([│ ]*)[├└]── (\S+)/.exec(line);
      if (match === null) continue;
      const depth = match[1]!.length / 4 + 1;
      stack.length = depth;
      const path = `${stack[depth - 1]}${match[2]}`;
      stack.push(path);
      paths.push(path);
    }
  }
  return paths;
}

async function exists(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(join(ROOT, path));
    return path.endsWith("/") ? info.isDirectory : true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Every file name in the repository, for bare names a document writes without a folder. */
async function fileNames(folder = ""): Promise<Set<string>> {
  const names = new Set<string>();
  for await (const entry of Deno.readDir(join(ROOT, folder))) {
    if (entry.name.startsWith(".") || entry.name === "scratch") continue;
    if (entry.isDirectory) {
      for (const name of await fileNames(`${folder}${entry.name}/`)) {
        names.add(name);
      }
    } else names.add(entry.name);
  }
  return names;
}

/** The documents: README.md and every Markdown file of docs/. */
async function documents(): Promise<string[]> {
  const found = [README];
  for await (const entry of Deno.readDir(join(ROOT, DOCUMENTS_FOLDER))) {
    if (entry.isFile && entry.name.endsWith(".md")) {
      found.push(`${DOCUMENTS_FOLDER}/${entry.name}`);
    }
  }
  return found.sort();
}

/** What the documents name that the repository lacks. */
async function missing(): Promise<Mention[]> {
  const tasks = Object.keys(
    JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks,
  );
  const names = await fileNames();
  const gone: Mention[] = [];
  for (const document of await documents()) {
    const text = await Deno.readTextFile(join(ROOT, document));
    const mentioned = mentionsIn(text, document);
    for (const path of new Set([...mentioned.paths, ...treePaths(text)])) {
      if (!(await exists(path))) gone.push({ document, text: path });
    }
    for (const name of new Set(mentioned.names)) {
      if (!names.has(name) && !FOREIGN_NAMES.includes(name)) {
        gone.push({ document, text: name });
      }
    }
    for (const task of new Set(mentioned.tasks)) {
      if (!tasks.includes(task)) {
        gone.push({ document, text: `deno task ${task}` });
      }
    }
  }
  return gone;
}

Deno.test("the documentation names only paths that exist", async (t) => {
  await t.step("a moved file, a task and a tree entry are found", () => {
    const text = [
      "See `clients/gone.ts` and [the guide](../guide/gone.md).",
      "",
      "```sh",
      "deno task nowhere && deno run tests/gone_bench.ts",
      "```",
      "",
      "```text",
      "tests/",
      "├── clients/   the client's tests",
      "│   └── deep/   deeper",
      "└── lint/      the lint plugin",
      "```",
    ].join("\n");
    const mentioned = mentionsIn(text, "docs/example.md");
    deepStrictEqual(mentioned.paths, [
      "clients/gone.ts",
      "tests/gone_bench.ts",
      "guide/gone.md",
    ]);
    deepStrictEqual(mentioned.tasks, ["nowhere"]);
    deepStrictEqual(treePaths(text), [
      "tests/clients/",
      "tests/clients/deep/",
      "tests/lint/",
    ]);
  });

  await t.step("Deno's sources and scratch/ are not ours", () => {
    const text =
      "`ext/node/polyfills/internal/http2/util.ts`, `scratch/deno-2.9.4/`, `http/json`";
    deepStrictEqual(mentionsIn(text, "README.md").paths, []);
  });

  await t.step(
    "every path, file name and task of the docs exists",
    async () => {
      const gone = await missing();
      deepStrictEqual(
        gone.map(({ document, text }) => `${document}: ${text}`),
        [],
      );
    },
  );

  await t.step("the layout tree names every folder of tests/", async () => {
    const text = await Deno.readTextFile(
      join(ROOT, DOCUMENTS_FOLDER, "development.md"),
    );
    const named = new Set(treePaths(text));
    ok(named.size > 0, "docs/development.md has no layout tree");
    const unnamed: string[] = [];
    for await (const entry of Deno.readDir(join(ROOT, "tests"))) {
      const path = `tests/${entry.name}${entry.isDirectory ? "/" : ""}`;
      if (entry.isDirectory && !named.has(path)) unnamed.push(path);
    }
    deepStrictEqual(unnamed.sort(), []);
  });
});
