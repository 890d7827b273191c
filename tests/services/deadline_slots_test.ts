import { deepStrictEqual, ok, strictEqual } from "node:assert";
import {
  atDeadline,
  openSlots,
  slotTimers,
} from "../../services/deadline_slots.ts";

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
    "cancelling every deadline leaves none open and one idle timer at most",
    () => {
      const open = openSlots();
      const timers = slotTimers();
      const cancels = Array.from(
        { length: 100 },
        (_, index) => atDeadline(60_000 + index, () => {}),
      );
      ok(openSlots() > open);
      for (const cancel of cancels) cancel();
      strictEqual(openSlots(), open);
      ok(
        slotTimers() <= timers + 1,
        `${slotTimers()} timers, ${timers} before`,
      );
    },
  );

  await t.step(
    "an emptied slot takes the next deadline on its own timer",
    async () => {
      // Both deadlines fall in the middle of one slot (10 ms wide).
      const started = performance.now();
      const due = started + 30 + (5 - (started % 10));
      const first = atDeadline(due - started, () => {});
      first();
      const timers = slotTimers();
      const fired = await new Promise<number>((resolve) => {
        atDeadline(due - performance.now(), () => resolve(performance.now()));
        strictEqual(slotTimers(), timers);
      });
      ok(fired >= due, `A deadline fired ${due - fired} ms early`);
    },
  );

  await t.step(
    "a process whose deadlines were all cancelled exits at once",
    async () => {
      const module = new URL(
        "../../services/deadline_slots.ts",
        import.meta.url,
      );
      const script = `import { atDeadline } from "${module.href}";
const cancel = atDeadline(60_000, () => console.log("fired"));
cancel();
console.log("cancelled");`;
      const started = performance.now();
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--ext=ts", script],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const seconds = (performance.now() - started) / 1000;
      strictEqual(
        new TextDecoder().decode(output.stdout),
        "cancelled\n",
        new TextDecoder().decode(output.stderr),
      );
      // The kept timer would hold the process for the deadline's 60 s.
      ok(seconds < 30, `The process took ${seconds} s to exit`);
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
