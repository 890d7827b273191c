/**
 * Rolling restarts behind nginx under continuous load, which must fail no call: each backend in
 * turn gets SIGTERM (with the documented drain period), must exit 0, and starts again on its
 * port, where nginx connects as soon as the port accepts (with `--workers`, while workers may
 * still be starting).
 *
 * The load is an ordinary one, 2,000 calls a second from 8 callers, rather than as many as
 * the client can make: with a client fast enough to keep two cores busy, a connection nginx
 * opens in the last milliseconds before a server's listener closes can still be reset (the
 * limit docs/scaling.md describes), and the test's load would then grow with the client's
 * speed rather than stand for what a service sees.
 *
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { createClient } from "../../mod.ts";
import {
  type BackendOptions,
  runLoad,
  startBackend,
  startBackends,
  startNginx,
} from "../_util/nginx.ts";

/**
 * Restarts `count` backends one after another behind nginx while 8 callers make 2,000 calls a
 * second through it.
 */
async function restartEachUnderLoad(
  count: number,
  options: BackendOptions = {},
): Promise<void> {
  const { ports, processes: backends } = await startBackends(count, options);
  const start = (port: number) => startBackend(port, options);
  try {
    await using nginx = await startNginx(ports);
    using client = createClient(nginx.address);
    const load = runLoad(client, { workers: 8, callsPerSecond: 2_000 });
    try {
      for (const [index, port] of ports.entries()) {
        await delay(300);
        const old = backends[index]!;
        old.kill("SIGTERM");
        const finished = await old.finished();
        strictEqual(finished.code, 0, finished.stderr.join("\n"));
        backends[index] = await start(port);
      }
      await delay(300);
    } finally {
      await load.stop();
    }
    deepStrictEqual(load.failures, [], nginx.errorLog());
    ok(load.calls > 100, `Only ${load.calls} calls`);
  } finally {
    await Promise.all(
      backends.map((backend) => backend[Symbol.asyncDispose]()),
    );
  }
}

Deno.test("nginx loses no call in a rolling restart of three servers under load", async () => {
  await restartEachUnderLoad(3);
});

Deno.test("nginx loses no call in a rolling restart of two serve --workers 2 backends under load", async () => {
  await restartEachUnderLoad(2, { workers: 2 });
});
