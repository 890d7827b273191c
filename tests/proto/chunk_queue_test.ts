import { deepStrictEqual, strictEqual } from "node:assert";
import { ChunkQueue } from "../../proto/http2/chunk_queue.ts";

Deno.test("ChunkQueue hands chunks back in order and counts their bytes", async (t) => {
  await t.step("shift() takes the first chunk until none is left", () => {
    const queue = new ChunkQueue<Uint8Array>();
    for (let length = 1; length <= 3; length++) {
      queue.push(new Uint8Array(length));
    }
    strictEqual(queue.bytes, 6);
    const lengths: number[] = [];
    while (!queue.empty) lengths.push(queue.shift()!.length);
    deepStrictEqual(lengths, [1, 2, 3]);
    strictEqual(queue.bytes, 0);
    strictEqual(queue.shift(), undefined);
  });

  await t.step(
    "takeAll() takes what shift() left, and the queue is new after",
    () => {
      const queue = new ChunkQueue<Uint8Array>();
      for (const byte of [1, 2, 3]) queue.push(Uint8Array.of(byte));
      queue.shift();
      deepStrictEqual(queue.takeAll(), [Uint8Array.of(2), Uint8Array.of(3)]);
      strictEqual(queue.empty, true);
      strictEqual(queue.bytes, 0);
      queue.push(Uint8Array.of(4));
      deepStrictEqual(queue.takeAll(), [Uint8Array.of(4)]);
    },
  );

  await t.step("a hundred thousand chunks go through in order", () => {
    const queue = new ChunkQueue<Uint8Array>();
    for (let i = 0; i < 100_000; i++) queue.push(Uint8Array.of(i % 251));
    let position = 0;
    for (
      let chunk = queue.shift();
      chunk !== undefined;
      chunk = queue.shift()
    ) {
      strictEqual(chunk[0], position % 251);
      position += 1;
    }
    strictEqual(position, 100_000);
  });
});
