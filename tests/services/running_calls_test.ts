import { deepStrictEqual, strictEqual } from "node:assert";
import { type EndCall, RunningCalls } from "../../services/running_calls.ts";
import { youngGarbageCheck } from "../_util/young_garbage.ts";

Deno.test("RunningCalls keeps the calls a shutdown ends", async (t) => {
  await t.step("list() names each call, with its detail", () => {
    const running = new RunningCalls();
    const ends: EndCall[] = [() => {}, () => {}, () => {}];
    running.add(ends[0]!, "Sum");
    running.add(ends[1]!, "Pow", 3n);
    running.add(ends[2]!, "Sqrt");
    strictEqual(running.size, 3);
    deepStrictEqual(
      running.list().map(({ end, name }) => [ends.indexOf(end), name]),
      [[0, "Sum"], [1, "Pow(3)"], [2, "Sqrt"]],
    );
  });

  await t.step("delete() twice leaves the call that took the place", () => {
    const running = new RunningCalls();
    const first: EndCall = () => {};
    const second: EndCall = () => {};
    const place = running.add(first, "Sum");
    running.delete(place, first);
    const reused = running.add(second, "Sqrt");
    strictEqual(reused, place);
    running.delete(place, first);
    strictEqual(running.size, 1);
    strictEqual(running.list()[0]!.end, second);
  });

  await t.step("list() is a copy that ending the calls does not change", () => {
    const running = new RunningCalls();
    const places = new Map<EndCall, number>();
    for (let index = 0; index < 5; index++) {
      const end: EndCall = () => running.delete(places.get(end)!, end);
      places.set(end, running.add(end, "Sum"));
    }
    const listed = running.list();
    for (const { end } of listed) end(undefined as never);
    strictEqual(listed.length, 5);
    strictEqual(running.size, 0);
  });
});

Deno.test("RunningCalls lets go of an ended call at the next young collection", async () => {
  const { stableBytes } = await youngGarbageCheck("running_calls");
  // A Map keeps about 8 MB of the 20 MB here (see tests/_util/young_garbage.ts).
  strictEqual(
    stableBytes < 2_000_000,
    true,
    `Old generation grew ${stableBytes} bytes`,
  );
});
