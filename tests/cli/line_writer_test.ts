import { strictEqual } from "node:assert";
import { setImmediate } from "node:timers";
import { LineWriter } from "../../cli/line_writer.ts";

/** A sink whose writes complete when the test says so. */
class HeldSink {
  written = "";
  readonly #waiting: (() => void)[] = [];

  write(bytes: Uint8Array): Promise<number> {
    return new Promise((resolve) => {
      this.#waiting.push(() => {
        this.written += new TextDecoder().decode(bytes);
        resolve(bytes.length);
      });
    });
  }

  /** Completes the oldest write; whether there was one. */
  complete(): boolean {
    const next = this.#waiting.shift();
    next?.();
    return next !== undefined;
  }
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

Deno.test("LineWriter writes a line logged just as its last write completes", async (t) => {
  await t.step(
    "a line queued in the microtask after the write's completion",
    async () => {
      const sink = new HeldSink();
      const writer = new LineWriter(sink);
      writer.line("first");
      await turn();
      // The write's completion resumes the writer in one microtask and clears its state in the
      // next: a line logged between the two (a handler's `await` ending there) must still go.
      strictEqual(sink.complete(), true);
      queueMicrotask(() => writer.line("second"));
      for (let round = 0; round < 5; round++) {
        await turn();
        sink.complete();
      }
      strictEqual(sink.written, "first\nsecond\n");
    },
  );

  await t.step(
    "lines logged while a write is under way follow it in one write",
    async () => {
      const sink = new HeldSink();
      const writer = new LineWriter(sink);
      writer.line("one");
      await turn();
      writer.line("two");
      writer.line("three");
      strictEqual(sink.complete(), true);
      await turn();
      strictEqual(sink.complete(), true);
      await turn();
      strictEqual(sink.written, "one\ntwo\nthree\n");
      strictEqual(sink.complete(), false);
    },
  );
});
