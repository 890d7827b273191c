import { deepStrictEqual } from "node:assert";
import { atTurnEnd } from "../../services/turn_end.ts";
import { onNextTick } from "../../services/shared_tick.ts";

/** Runs `script` in a Deno subprocess that reports uncaught errors; its stdout lines. */
async function linesOf(script: string): Promise<string[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  deepStrictEqual(
    output.code,
    0,
    `${stdout}\n${new TextDecoder().decode(output.stderr)}`,
  );
  return stdout.trim().split("\n");
}

const PRELUDE = `import process from "node:process";
process.on("uncaughtException", (error) => console.log("uncaught " + error.message));`;

Deno.test("atTurnEnd() runs every task of a turn in order, and the others when one throws", async (t) => {
  await t.step("in order, once the turn is over", async () => {
    const order: string[] = [];
    const done = new Promise<void>((resolve) => {
      atTurnEnd(() => order.push("first"));
      atTurnEnd(() => {
        order.push("second");
        atTurnEnd(() => {
          order.push("asked while running");
          resolve();
        });
      });
      order.push("asking code");
    });
    await done;
    deepStrictEqual(order, [
      "asking code",
      "first",
      "second",
      "asked while running",
    ]);
  });

  await t.step("a task that throws leaves the others to run", async () => {
    const module = new URL("../../services/turn_end.ts", import.meta.url).href;
    deepStrictEqual(
      await linesOf(`${PRELUDE}
import { atTurnEnd } from "${module}";
atTurnEnd(() => console.log("one"));
atTurnEnd(() => { throw new Error("two"); });
atTurnEnd(() => console.log("three"));`),
      ["one", "uncaught two", "three"],
    );
  });
});

Deno.test("onNextTick() runs the other callbacks when one throws", async () => {
  const module = new URL("../../services/shared_tick.ts", import.meta.url).href;
  deepStrictEqual(
    await linesOf(`${PRELUDE}
import { onNextTick } from "${module}";
onNextTick(console.log, "one");
onNextTick(() => { throw new Error("two"); }, undefined);
onNextTick(console.log, "three");`),
    ["one", "uncaught two", "three"],
  );
  // The queue is usable again afterwards, in this process too.
  const ran = await new Promise<string>((resolve) =>
    onNextTick(resolve, "again")
  );
  deepStrictEqual(ran, "again");
});
