/**
 * A server for the soak runs: prints its port, then its RSS in MiB on every line of stdin
 * (after a full garbage collection when run with `--v8-flags=--expose-gc`, so the figure is
 * what the server holds, not what it has yet to collect).
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
    console.log((Deno.memoryUsage().rss / 2 ** 20).toFixed(1));
  }
}
await server.close();
