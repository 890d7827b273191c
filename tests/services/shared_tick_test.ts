import { deepStrictEqual } from "node:assert";
import process from "node:process";
import { setImmediate } from "node:timers";
import { onNextTick } from "../../services/shared_tick.ts";

Deno.test("onNextTick() runs callbacks as process.nextTick would, one nextTick for many", async (t) => {
  await t.step(
    "in order, after the code that queued them, before the next turn",
    async () => {
      const order: string[] = [];
      const turnOver = new Promise<void>((resolve) =>
        setImmediate(() => {
          order.push("next turn");
          resolve();
        })
      );
      onNextTick((name) => order.push(name), "first");
      onNextTick((name) => {
        order.push(name);
        onNextTick((late) => order.push(late), "queued while running");
      }, "second");
      order.push("queuing code");
      await turnOver;
      deepStrictEqual(order, [
        "queuing code",
        "first",
        "second",
        "queued while running",
        "next turn",
      ]);
    },
  );

  await t.step(
    "each run after the first takes a nextTick of its own",
    async () => {
      const order: string[] = [];
      onNextTick((name) => order.push(name), "one");
      await new Promise<void>((resolve) => setImmediate(resolve));
      process.nextTick(() => order.push("nextTick"));
      onNextTick((name) => order.push(name), "two");
      await new Promise<void>((resolve) => setImmediate(resolve));
      deepStrictEqual(order, ["one", "nextTick", "two"]);
    },
  );
});
