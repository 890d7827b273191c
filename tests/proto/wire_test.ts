/**
 * The wire checks that `deno task wire` runs: `buf breaking` must refuse any change to proto/
 * that the original Go demo's clients and servers would notice, and accept a new field.
 */
import { match, strictEqual } from "node:assert";
import { tempDirectory } from "../_util/certificates.ts";
import { buf, ROOT } from "../_util/tools.ts";

/** Copies buf.yaml, proto/ and the fixture, applies `edit` to one .proto, runs buf breaking. */
async function breakingAfter(
  file: string,
  edit: (source: string) => string,
): Promise<{ code: number; output: string }> {
  await using directory = await tempDirectory();
  const path = directory.path;
  await Deno.mkdir(`${path}/proto`);
  await Deno.mkdir(`${path}/wire`);
  await Deno.copyFile(`${ROOT}buf.yaml`, `${path}/buf.yaml`);
  for await (const entry of Deno.readDir(`${ROOT}proto`)) {
    if (entry.name.endsWith(".proto")) {
      await Deno.copyFile(
        `${ROOT}proto/${entry.name}`,
        `${path}/proto/${entry.name}`,
      );
    }
  }
  for await (const entry of Deno.readDir(`${ROOT}tests/fixtures/wire`)) {
    await Deno.copyFile(
      `${ROOT}tests/fixtures/wire/${entry.name}`,
      `${path}/wire/${entry.name}`,
    );
  }
  const source = await Deno.readTextFile(`${path}/proto/${file}`);
  const edited = edit(source);
  strictEqual(edited === source, false, "The edit changed nothing");
  await Deno.writeTextFile(`${path}/proto/${file}`, edited);
  const result = await buf([
    "breaking",
    `${path}/proto`,
    "--against",
    `${path}/wire`,
  ]);
  return {
    code: result.code,
    output: [...result.stdout, ...result.stderr].join("\n"),
  };
}

Deno.test("buf breaking guards the wire contract against the Go demo's protos", async (t) => {
  const results = await Promise.all([
    breakingAfter(
      "server_stream.proto",
      (source) =>
        source.replace(
          "int64 number = 1;\n  // How many",
          "int64 number = 3;\n  // How many",
        ),
    ),
    breakingAfter(
      "client_stream.proto",
      (source) =>
        source.replace(
          "message ClientStreamReq {\n  int64 number",
          "message ClientStreamReq {\n  int32 number",
        ),
    ),
    breakingAfter(
      "client_stream.proto",
      (source) => source.replace("rpc Sum (", "rpc Add ("),
    ),
    breakingAfter(
      "bidirectional_stream.proto",
      (source) => source.replace("double number = 1;", "double value = 1;"),
    ),
    breakingAfter(
      "bidirectional_stream.proto",
      (source) =>
        source.replace(
          "double number = 1;",
          "double number = 1;\n  string note = 2;",
        ),
    ),
  ]);
  const [renumbered, retyped, renamedMethod, renamedField, added] = results;

  await t.step("a renumbered field is refused", () => {
    strictEqual(renumbered!.code, 100, renumbered!.output);
    match(
      renumbered!.output,
      /field "1" with name "number" on message "ServerStreamReq" was deleted/,
    );
  });
  await t.step("a retyped field is refused", () => {
    strictEqual(retyped!.code, 100, retyped!.output);
    match(retyped!.output, /changed type from "int64" to "int32"/);
  });
  await t.step("a renamed method is refused", () => {
    strictEqual(renamedMethod!.code, 100, renamedMethod!.output);
    match(renamedMethod!.output, /"Sum" on service "ClientStream" was deleted/);
  });
  await t.step("a renamed field is refused", () => {
    strictEqual(renamedField!.code, 100, renamedField!.output);
    match(renamedField!.output, /changed name from "number" to "value"/);
  });
  await t.step("a new field with a new number passes", () => {
    strictEqual(added!.code, 0, added!.output);
  });
});
