import { deepStrictEqual, ok } from "node:assert";

const DOC = new URL("../../docs/command_line.md", import.meta.url);

/** The lines of a Markdown text that stand outside its fenced code blocks. */
function prose(lines: string[]): { prose: string[]; unnamed: number[] } {
  const outside: string[] = [];
  const unnamed: number[] = [];
  let fence: string | undefined;
  lines.forEach((line, index) => {
    const marker = /^(`{3,}|~{3,})(.*)$/.exec(line);
    if (fence === undefined) {
      if (marker === null) {
        outside.push(line);
        return;
      }
      fence = marker[1]!;
      if (marker[2]!.trim() === "") unnamed.push(index + 1);
      return;
    }
    // A fence closes on a run of its character at least as long, with nothing after it.
    if (
      marker !== null && marker[1]![0] === fence[0] &&
      marker[1]!.length >= fence.length && marker[2]!.trim() === ""
    ) {
      fence = undefined;
    }
  });
  return { prose: outside, unnamed };
}

Deno.test("docs/command_line.md: every code block names its language and ends where it should", async () => {
  const lines = (await Deno.readTextFile(DOC)).split("\n");
  const { prose: outside, unnamed } = prose(lines);
  deepStrictEqual(unnamed, [], "code blocks opened without a language");
  // The demo's section: its command in a block, then prose, then the output in a block.
  ok(
    outside.some((line) =>
      line.startsWith("It starts a server on a free port")
    ),
    "the demo's prose is inside a code block",
  );
  ok(
    !outside.some((line) => line === "Server Closed"),
    "the demo's output is outside its code block",
  );
  ok(
    !outside.some((line) => /^deno run .*cli demo$/.test(line)),
    "the demo's command is outside a code block",
  );
});
