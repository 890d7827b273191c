/**
 * The receive windows of the server's own HTTP/2 streams (`services/http2/stream_table.ts`):
 * what each WINDOW_UPDATE gives back as a reader takes a stream's data.
 *
 * @module
 */
import { deepStrictEqual, strictEqual } from "node:assert";
import {
  MAX_STREAM_WINDOW,
  STREAM_WINDOW,
  StreamTable,
} from "../../../services/http2/stream_table.ts";
import {
  ServerStream,
  type StreamHost,
} from "../../../services/http2/server_stream.ts";

/** A stream whose connection is never asked for anything by these steps. */
function openStream(table: StreamTable): ServerStream {
  const host = new Proxy({}, {
    get(_target, name): never {
      throw new Error(`The stream asked its connection for ${String(name)}`);
    },
  }) as StreamHost;
  const stream = new ServerStream(1, {
    host,
    sendWindow: STREAM_WINDOW,
    receiveWindow: STREAM_WINDOW,
  });
  table.add(stream);
  return stream;
}

/** Has the peer send `bytes` and the reader take them in 1,000-byte reads; the updates. */
function sendAndTake(
  table: StreamTable,
  { stream, bytes }: { stream: ServerStream; bytes: number },
): number[] {
  const updates: number[] = [];
  for (let taken = 0; taken < bytes; taken += 1_000) {
    stream.receiveWindow -= 1_000;
    strictEqual(stream.receiveWindow >= 0, true, "The peer overran");
    const increment = table.consumed(stream, 1_000);
    if (increment > 0) updates.push(increment);
  }
  return updates;
}

Deno.test("StreamTable grows a stream's window while its reader keeps up and nothing is answered, and no further", async (t) => {
  await t.step(
    "fourfold each time the reader has taken a whole window, up to 1 MiB",
    () => {
      const table = new StreamTable();
      const stream = openStream(table);
      const sizes: number[] = [];
      let last = stream.windowSize;
      for (let round = 0; round < 40; round++) {
        sendAndTake(table, { stream, bytes: 64_000 });
        if (stream.windowSize !== last) sizes.push(stream.windowSize);
        last = stream.windowSize;
      }
      deepStrictEqual(sizes, [256 * 1024, MAX_STREAM_WINDOW]);
      strictEqual(MAX_STREAM_WINDOW, 1 << 20);
      // What the peer may send never passes the window the stream grants.
      strictEqual(stream.receiveWindow <= MAX_STREAM_WINDOW, true);
    },
  );

  await t.step(
    "a reader that takes nothing gives nothing back and keeps the window it had",
    () => {
      const table = new StreamTable();
      const stream = openStream(table);
      strictEqual(table.consumed(stream, 0), 0);
      stream.receiveWindow -= STREAM_WINDOW;
      strictEqual(stream.receiveWindow, 0);
      strictEqual(stream.windowSize, STREAM_WINDOW);
    },
  );

  await t.step(
    "a stream that has begun its answer is paced by it, and keeps its window",
    () => {
      const table = new StreamTable();
      const stream = openStream(table);
      stream.send = { kind: "open" };
      for (let round = 0; round < 10; round++) {
        sendAndTake(table, { stream, bytes: 64_000 });
      }
      strictEqual(stream.windowSize, STREAM_WINDOW);
    },
  );

  await t.step(
    "a reader that paused during a window holds it that round, and grows it the next",
    () => {
      const table = new StreamTable();
      const stream = openStream(table);
      stream.pause();
      sendAndTake(table, { stream, bytes: 68_000 });
      strictEqual(stream.windowSize, STREAM_WINDOW);
      sendAndTake(table, { stream, bytes: 68_000 });
      strictEqual(stream.windowSize, 256 * 1024);
    },
  );

  await t.step(
    "updates come once a quarter of the window is taken, and carry the growth",
    () => {
      const table = new StreamTable();
      const stream = openStream(table);
      const updates = sendAndTake(table, { stream, bytes: 68_000 });
      // 17,000 bytes is past a quarter of 65,535; the fourth update completes a window
      // (68,000 ≥ 65,535) and adds the 196,609 bytes of growth to 256 KiB.
      deepStrictEqual(updates, [17_000, 17_000, 17_000, 17_000 + 196_609]);
      strictEqual(stream.windowSize, 256 * 1024);
    },
  );
});
