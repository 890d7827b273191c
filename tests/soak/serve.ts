/**
 * A server for the soak runs: prints its port, then on every line of stdin its memory in MiB:
 * RSS, V8 heap used, V8 heap reserved, and memory outside the V8 heap (`external`: array
 * buffers and native objects V8 knows of), after a full garbage collection when run with
 * `--v8-flags=--expose-gc`, so the figures are what the server holds, not what it has yet to
 * collect.
 *
 * @module
 */
import { startServer } from "../../mod.ts";

const server = await startServer({ port: Number(Deno.args[0] ?? 0) });
console.log(server.port);
const decoder = new TextDecoder();
for await (const chunk of Deno.stdin.readable) {
  for (const _ of decoder.decode(chunk).split("\n").slice(1)) {
    (globalThis as { gc?: () => void }).gc?.();
    const memory = Deno.memoryUsage();
    console.log(
      [memory.rss, memory.heapUsed, memory.heapTotal, memory.external]
        .map((bytes) => (bytes / 2 ** 20).toFixed(1)).join(" "),
    );
  }
}
await server.close();
