import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { CLI, RUN_PERMISSIONS, startCliServer } from "../_util/subprocess.ts";

/** How a command ended whose stdout was closed by its reader after a few lines. */
interface CutShort {
  code: number;
  lines: string[];
  stderr: string;
}

/**
 * Runs the command line with a real pipe on stdout, reads `lines` lines and closes the
 * pipe's reading end, as `| head -N` does. With `input`, stdin is fed `input` lines of
 * numbers for as long as the command reads them, as `seq` does.
 */
async function runCutShort(
  args: string[],
  { lines, input }: { lines: number; input?: number },
): Promise<CutShort> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...RUN_PERMISSIONS, CLI, ...args],
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const feeding = input === undefined ? Promise.resolve() : feed(child, input);
  const stderr = new Response(child.stderr).text();
  const read: string[] = [];
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  while (read.length < lines) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    read.push(...parts);
  }
  // Closes the pipe: the command's next write fails with EPIPE.
  await reader.cancel();
  const status = await child.status;
  await feeding;
  return {
    code: status.code,
    lines: read.slice(0, lines),
    stderr: await stderr,
  };
}

/** Writes 1 … `count` to the child's stdin until the child stops reading it. */
async function feed(child: Deno.ChildProcess, count: number): Promise<void> {
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  try {
    for (let start = 1; start <= count; start += 1_000) {
      const numbers = Array.from(
        { length: Math.min(1_000, count - start + 1) },
        (_, index) => start + index,
      );
      await writer.write(encoder.encode(numbers.join("\n") + "\n"));
    }
    await writer.close();
  } catch {
    // The command has exited and closed its stdin (EPIPE), as `seq` meets it.
  }
}

Deno.test("cli cancels its call and exits 141 when the reader of stdout goes away", async (t) => {
  await using server = await startCliServer(["--port", "0", "--log", "calls"]);
  const address = server.addresses[0]!;

  await t.step("pow 1 --count 1000000 | head -3", async () => {
    const result = await runCutShort(
      ["pow", "1", "--count", "1000000", "--address", address],
      { lines: 3 },
    );
    deepStrictEqual(result.lines, ["1", "1", "1"]);
    strictEqual(result.code, 141, result.stderr);
    strictEqual(result.stderr, "");
    const [cancelled] = await server.process.waitForLines(
      "stdout",
      /^Pow\(1\) cancelled after (\d+) of 1000000 powers$/,
    );
    ok(Number(cancelled![1]) < 1_000_000, cancelled![0]);
    ok(
      !server.process.stdout.some((line) => /^Pow\(1\) completed/.test(line)),
      server.process.stdout.join("\n"),
    );
  });

  await t.step("seq 1 1000000 | sqrt | head -2", async () => {
    const result = await runCutShort(["sqrt", "--address", address], {
      lines: 2,
      input: 1_000_000,
    });
    deepStrictEqual(result.lines, ["1", "1.4142135623730951"]);
    strictEqual(result.code, 141, result.stderr);
    strictEqual(result.stderr, "");
    const [cancelled] = await server.process.waitForLines(
      "stdout",
      /^Sqrt cancelled by the client after (\d+) numbers$/,
    );
    ok(Number(cancelled![1]) < 1_000_000, cancelled![0]);
    ok(
      !server.process.stdout.some((line) => /^Sqrt completed/.test(line)),
      server.process.stdout.join("\n"),
    );
  });

  await t.step(
    "sum, whose one line comes after its call, exits 141 when nobody reads it",
    async () => {
      const result = await runCutShort(["sum", "--address", address], {
        lines: 0,
        input: 1_000,
      });
      strictEqual(result.code, 141, result.stderr);
      strictEqual(result.stderr, "");
      await server.process.waitForLine("stdout", /^Sum completed: 500500$/);
    },
  );

  await t.step("demo | head -3", async () => {
    const result = await runCutShort(["demo", "--address", address], {
      lines: 3,
    });
    strictEqual(result.code, 141, result.stderr);
    strictEqual(result.stderr, "");
  });
});
