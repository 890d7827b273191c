/**
 * nginx retiring its client connections often (`keepalive_requests`): it sends a GOAWAY
 * after that many requests, and calls the client had already sent on the connection are
 * refused. The client retries those transparently; none fails.
 *
 * @module
 */
import { strictEqual } from "node:assert";
import { createClient, GrpcError, startServer } from "../../mod.ts";
import { call, KINDS, startNginx } from "../_util/nginx.ts";

Deno.test("createClient() loses no call to nginx's keepalive_requests GOAWAY", async () => {
  await using server = await startServer({ port: 0 });
  await using nginx = await startNginx([server.port], {
    keepaliveRequests: 20,
  });
  using client = createClient(nginx.address);
  const failures: string[] = [];
  let next = 0;
  // Eight calls at a time on one connection, fewer than nginx takes on one: when nginx
  // retires a connection, some are on their way, and their retries fit on the next one.
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < 600) {
      const kind = KINDS[next++ % KINDS.length]!;
      try {
        await call(client, kind);
      } catch (error) {
        if (!(error instanceof GrpcError)) throw error;
        failures.push(`${kind}: ${error.codeName}: ${error.details}`);
      }
    }
  }));
  strictEqual(failures.length, 0, failures.slice(0, 5).join("\n"));
});
