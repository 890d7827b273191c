import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { atDeadline, openSlots } from "../../services/deadline_slots.ts";

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("atDeadline() fires each deadline once, never early, and not once cancelled", async (t) => {
  await t.step(
    "deadlines in one slot all fire, each after its timeout",
    async () => {
      const started = performance.now();
      const fired: [number, number][] = [];
      const timeouts = [20, 21, 22, 25, 29];
      await new Promise<void>((resolve) => {
        for (const timeout of timeouts) {
          atDeadline(timeout, () => {
            fired.push([timeout, performance.now() - started]);
            if (fired.length === timeouts.length) resolve();
          });
        }
      });
      deepStrictEqual(fired.map(([timeout]) => timeout).sort(), timeouts);
      for (const [timeout, after] of fired) {
        ok(
          after >= timeout,
          `A ${timeout} ms deadline fired after ${after} ms`,
        );
      }
    },
  );

  await t.step(
    "a cancelled deadline does not fire; its neighbours do",
    async () => {
      const fired: string[] = [];
      const cancel = atDeadline(15, () => fired.push("cancelled"));
      const kept = new Promise<void>((resolve) =>
        atDeadline(15, () => {
          fired.push("kept");
          resolve();
        })
      );
      cancel();
      cancel();
      await kept;
      await delay(30);
      deepStrictEqual(fired, ["kept"]);
    },
  );

  await t.step(
    "cancelling every deadline of a slot leaves no timer behind",
    () => {
      const before = openSlots();
      const cancels = Array.from(
        { length: 100 },
        (_, index) => atDeadline(60_000 + index, () => {}),
      );
      ok(openSlots() > before);
      for (const cancel of cancels) cancel();
      strictEqual(openSlots(), before);
    },
  );

  await t.step("a timeout of 0 or less fires in the next slot", async () => {
    let fired = 0;
    await new Promise<void>((resolve) => {
      atDeadline(-5, () => {
        fired++;
        resolve();
      });
    });
    strictEqual(fired, 1);
  });
});
