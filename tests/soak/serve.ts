/**
 * A server for the soak runs: prints its port, then on every line of stdin its memory in MiB:
 * RSS, V8 heap used, V8 heap reserved, and memory outside the V8 heap (`external`: array
 * buffers and native objects V8 knows of), after a full garbage collection when run with
 * `--v8-flags=--expose-gc` (twice, 200 ms apart), so the figures are what the server holds, not what it has yet to
 * collect; then the most bytes of replies one connection has held since the last line, in KiB.
 *
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import { startServer } from "../../mod.ts";
import { probeServer } from "../../services/_testing.ts";

const options = { port: Number(Deno.args[0] ?? 0) };
const probe = probeServer(options);
const server = await startServer(options);
console.log(server.port);
const decoder = new TextDecoder();
for await (const chunk of Deno.stdin.readable) {
  for (const _ of decoder.decode(chunk).split("\n").slice(1)) {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    // V8 frees the memory of dead array buffers on another thread, after the collection:
    // give it time, and collect again, so `external` counts only what is still held.
    await delay(200);
    gc?.();
    const memory = Deno.memoryUsage();
    console.log(
      [memory.rss, memory.heapUsed, memory.heapTotal, memory.external]
        .map((bytes) => (bytes / 2 ** 20).toFixed(1))
        .concat((probe.takePeakConnectionBytes() / 1024).toFixed(0)).join(" "),
    );
  }
}
await server.close();
