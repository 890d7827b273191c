/**
 * A rolling restart of two `serve --workers 2` backends behind nginx under continuous load,
 * which must fail no call: nginx connects to a restarted backend as soon as its port accepts,
 * while its workers may still be starting, and each such connection must be served.
 *
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { createClient } from "../../mod.ts";
import { unusedPort } from "../_util/subprocess.ts";
import { runLoad, startBackend, startNginx } from "../_util/nginx.ts";

Deno.test("nginx loses no call in a rolling restart of two serve --workers 2 backends under load", async () => {
  const ports = [unusedPort(), unusedPort()];
  const start = (port: number) => startBackend(port, { workers: 2 });
  const backends = await Promise.all(ports.map(start));
  try {
    await using nginx = await startNginx(ports);
    using client = createClient(nginx.address);
    const load = runLoad(client, 8);
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
});
