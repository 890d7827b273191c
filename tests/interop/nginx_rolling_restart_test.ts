/**
 * A rolling restart of three `serve` backends behind nginx under continuous load, which must
 * fail no call: each backend in turn gets SIGTERM (with the documented drain period), must exit
 * 0, and starts again on its port.
 *
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { createClient } from "../../mod.ts";
import { unusedPort } from "../_util/subprocess.ts";
import { runLoad, startBackend, startNginx } from "../_util/nginx.ts";

Deno.test("nginx loses no call in a rolling restart of three servers under load", async () => {
  const ports = [unusedPort(), unusedPort(), unusedPort()];
  const backends = await Promise.all(ports.map((port) => startBackend(port)));
  try {
    await using nginx = await startNginx(ports);
    using client = createClient(nginx.address);
    const load = runLoad(client, 8);
    try {
      for (const [index, port] of ports.entries()) {
        await delay(300);
        const old = backends[index]!;
        old.kill("SIGTERM");
        strictEqual((await old.finished()).code, 0);
        backends[index] = await startBackend(port);
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
