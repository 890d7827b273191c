import { deepStrictEqual } from "node:assert";
import plugin from "./max_required_params.ts";

/** The lines the rule reports in `source`. */
function reportedLines(source: string): number[] {
  const diagnostics = Deno.lint.runPlugin(plugin, "example.ts", source);
  return diagnostics.map((diagnostic) =>
    source.slice(0, diagnostic.range[0]).split("\n").length
  );
}

Deno.test("max-required-params reports functions with more than two required parameters", async (t) => {
  await t.step("every kind of function is counted", () => {
    deepStrictEqual(
      reportedLines(
        [
          "function a(x: number, y: number, z: number): void {}",
          "const b = function (x: number, y: number, z: number): void {};",
          "const c = (x: number, y: number, z: number): void => {};",
          "class D { e(x: number, y: number, z: number): void {} }",
          "class F { constructor(x: number, y: number, private z: number) {} }",
          "function g(x: number, y: number, z: number): void;",
          "function g(): void {}",
          "const h = ({ x }: { x: number }, [y]: number[], z: number) => x + y + z;",
        ].join("\n"),
      ),
      [1, 2, 3, 4, 5, 6, 8],
    );
  });

  await t.step(
    "optional, defaulted, rest and `this` parameters are not required",
    () => {
      deepStrictEqual(
        reportedLines(
          [
            "function a(x: number, y: number, z?: number): void {}",
            "function b(x: number, y: number, z = 1): void {}",
            "function c(x: number, y: number, ...rest: number[]): void {}",
            "function d(this: object, x: number, y: number): void {}",
            "function e(x: number, y: number, options: { z?: number } = {}): void {}",
          ].join("\n"),
        ),
        [],
      );
    },
  );

  await t.step(
    "deno lint runs the rule, and an ignore comment exempts a signature a library dictates",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "grpc_stream_lint_" });
      try {
        await Deno.writeTextFile(
          `${dir}/deno.json`,
          JSON.stringify({
            lint: {
              plugins: [
                new URL("./max_required_params.ts", import.meta.url).href,
              ],
            },
          }),
        );
        await Deno.writeTextFile(
          `${dir}/example.ts`,
          [
            "export function a(x: number, y: number, z: number): number {",
            "  return x + y + z;",
            "}",
            "// deno-lint-ignore grpc-stream/max-required-params -- a library's callback",
            "export function b(x: number, y: number, z: number): number {",
            "  return x + y + z;",
            "}",
          ].join("\n"),
        );
        const output = await new Deno.Command(Deno.execPath(), {
          args: ["lint", "--compact", "--config", `${dir}/deno.json`, dir],
          env: { NO_COLOR: "1" },
        }).output();
        const text = new TextDecoder().decode(output.stdout) +
          new TextDecoder().decode(output.stderr);
        deepStrictEqual(
          [...text.matchAll(/line (\d+), col \d+ - (.*)$/gm)].map((
            [, line, message],
          ) => `${line}: ${message}`),
          [
            "1: Function takes 3 required parameters: at most 2, put the rest in an options object (grpc-stream/max-required-params)",
          ],
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
});
