import { deepStrictEqual, strictEqual, throws } from "node:assert";
import { StreamMap } from "../../proto/http2/stream_map.ts";
import { youngGarbageCheck } from "../_util/young_garbage.ts";

/** A seeded generator, so that a failing sequence can be run again. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

Deno.test("StreamMap holds streams by identifier as a Map does", async (t) => {
  await t.step("get(), set(), delete() and size", () => {
    const streams = new StreamMap<string>();
    streams.set(1, "one");
    streams.set(3, "three");
    streams.set(3, "three again");
    strictEqual(streams.size, 2);
    strictEqual(streams.get(1), "one");
    strictEqual(streams.get(3), "three again");
    strictEqual(streams.get(5), undefined);
    strictEqual(streams.delete(1), true);
    strictEqual(streams.delete(1), false);
    strictEqual(streams.get(1), undefined);
    strictEqual(streams.size, 1);
    deepStrictEqual(streams.values(), ["three again"]);
    streams.clear();
    strictEqual(streams.size, 0);
    strictEqual(streams.get(3), undefined);
  });

  await t.step(
    "values() is a copy that removing streams does not change",
    () => {
      const streams = new StreamMap<number>();
      for (let id = 1; id < 20; id += 2) streams.set(id, id);
      const values = streams.values();
      for (const id of values) streams.delete(id);
      strictEqual(values.length, 10);
      strictEqual(streams.size, 0);
    },
  );

  await t.step("refuses what is not a stream identifier", () => {
    const streams = new StreamMap<string>();
    for (const id of [0, -1, 2 ** 31, 1.5, NaN]) {
      throws(() => streams.set(id, "x"), RangeError);
    }
    strictEqual(streams.size, 0);
  });

  await t.step(
    "agrees with a Map over random opens and closes, colliding ones too",
    () => {
      for (const seed of [1, 2, 3]) {
        const next = random(seed);
        const streams = new StreamMap<number>();
        const reference = new Map<number, number>();
        let nextId = 1;
        for (let step = 0; step < 50_000; step++) {
          const choice = next();
          if (choice < 0.45 || reference.size === 0) {
            // Rising odd identifiers, and some that share a slot with open ones.
            const id = choice < 0.1
              ? 1 + 2 * Math.floor(next() * 8) * 64 + 2 * 64 * 64
              : nextId;
            if (id === nextId) nextId += 2;
            streams.set(id, step);
            reference.set(id, step);
          } else if (choice < 0.9) {
            const open = [...reference.keys()];
            const id = open[Math.floor(next() * open.length)]!;
            strictEqual(streams.delete(id), true);
            reference.delete(id);
          } else {
            const id = 1 + 2 * Math.floor(next() * nextId);
            strictEqual(streams.get(id), reference.get(id));
          }
          strictEqual(streams.size, reference.size);
        }
        for (const [id, value] of reference) {
          strictEqual(streams.get(id), value);
        }
        deepStrictEqual(
          streams.values().sort((a, b) => a - b),
          [...reference.values()].sort((a, b) => a - b),
        );
      }
    },
  );
});

Deno.test("StreamMap lets go of a closed stream at the next young collection", async () => {
  const { stableBytes } = await youngGarbageCheck("stream_map");
  // A Map keeps about 8 MB of the 20 MB here (see tests/_util/young_garbage.ts).
  strictEqual(
    stableBytes < 2_000_000,
    true,
    `Old generation grew ${stableBytes} bytes`,
  );
});
