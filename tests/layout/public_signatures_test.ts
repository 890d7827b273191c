/**
 * The public API as its documentation shows it: `deno doc` on the entry points, read as JSON.
 * A parameter written `options: X = {}` is shown as `options: X`, required, although callers
 * may leave it out; written `options?: X`, it is shown optional.
 *
 * @module
 */
import { deepStrictEqual, ok } from "node:assert";

const ROOT = new URL("../../", import.meta.url);
const ENTRY_POINTS = ["mod.ts", "cli.ts"];

/** What of `deno doc --json` the test reads. */
interface DocParam {
  kind: string;
  name?: string;
  optional?: boolean;
  tsType?: { repr?: string };
  left?: DocParam;
}

interface Signature {
  params?: DocParam[];
}

interface DocDef extends Signature {
  constructors?: Signature[];
  methods?: ({ name: string } & (Signature | { functionDef: Signature }))[];
}

interface DocSymbol {
  name: string;
  declarations: { kind: string; def?: DocDef }[];
}

/** Every exported symbol of the entry points, from `deno doc --json`. */
async function documentedSymbols(): Promise<DocSymbol[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", ...ENTRY_POINTS],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  ok(output.success, new TextDecoder().decode(output.stderr));
  const json = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    nodes: Record<string, { symbols: DocSymbol[] }>;
  };
  return Object.values(json.nodes).flatMap((node) => node.symbols);
}

/** Each signature of a symbol, named as a reader finds it: `f`, `C()`, `C.m`, `I.m`. */
function signatures(symbol: DocSymbol): [string, Signature][] {
  return symbol.declarations.flatMap(({ kind, def }): [string, Signature][] => {
    if (def === undefined) return [];
    switch (kind) {
      case "function":
        return [[symbol.name, def]];
      case "class":
        return [
          ...(def.constructors ?? []).map((
            signature,
          ): [string, Signature] => [`new ${symbol.name}`, signature]),
          ...(def.methods ?? []).map((method): [string, Signature] => [
            `${symbol.name}.${method.name}`,
            "functionDef" in method ? method.functionDef : method,
          ]),
        ];
      case "interface":
        return (def.methods ?? []).map((method): [string, Signature] => [
          `${symbol.name}.${method.name}`,
          "functionDef" in method ? method.functionDef : method,
        ]);
      default:
        return [];
    }
  });
}

Deno.test("deno doc shows every options parameter of the public API as optional", async (t) => {
  const symbols = await documentedSymbols();

  await t.step("the entry points export the functions checked", () => {
    const names = new Set(symbols.map((symbol) => symbol.name));
    for (
      const name of ["createClient", "startServer", "pow", "sum", "sqrt"]
    ) {
      ok(names.has(name), `${name} is not exported`);
    }
  });

  await t.step("no options parameter is shown as required", () => {
    const required: string[] = [];
    let checked = 0;
    for (const symbol of symbols) {
      for (const [where, signature] of signatures(symbol)) {
        for (const param of signature.params ?? []) {
          // A parameter with a default (`kind: "assign"`) is shown by its left side, required.
          const shown = param.kind === "assign" && param.left !== undefined
            ? param.left
            : param;
          if (!/Options$/.test(shown.tsType?.repr ?? "")) continue;
          checked++;
          if (param.kind === "assign" || shown.optional !== true) {
            required.push(`${where}(${shown.name}: ${shown.tsType?.repr})`);
          }
        }
      }
    }
    ok(checked >= 5, `Only ${checked} options parameters found`);
    deepStrictEqual(required, []);
  });
});
