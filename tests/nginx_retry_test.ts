/**
 * nginx retiring its client connections often (`keepalive_requests`): it sends a GOAWAY
 * after that many requests, and calls the client had already sent on the connection are
 * refused. The client retries those transparently; none fails.
 *
 * @module
 */
import { strictEqual } from "node:assert";
import { createClient, GrpcError, startServer } from "../mod.ts";
import { call, KINDS } from "./nginx.ts";
import { DenoProcess, unusedPort } from "./subprocess.ts";

const NGINX = "/usr/sbin/nginx";

/**
 * nginx in front of one server, retiring each client connection after `keepaliveRequests`
 * requests (docs/scaling.md has the configuration for production).
 */
async function startNginx(
  backendPort: number,
  keepaliveRequests: number,
): Promise<{ address: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "grpc_stream_nginx_retry_" });
  const port = unusedPort();
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  access_log off;
  upstream backend {
    server 127.0.0.1:${backendPort} max_fails=0;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port} http2;
    keepalive_requests ${keepaliveRequests};
    location / {
      grpc_pass grpc://backend;
    }
  }
}
`,
  );
  const process = DenoProcess.spawn(
    ["-p", dir, "-c", `${dir}/nginx.conf`, "-e", `${dir}/error.log`],
    { program: NGINX },
  );
  async function stop(): Promise<void> {
    if (!process.exited) process.kill("SIGQUIT");
    await process.finished().catch(() => {});
    await process[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  }
  for (let attempt = 0;; attempt++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch (error) {
      if (attempt === 100 || process.exited) {
        await stop();
        throw new Error("nginx did not start", { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { address: `127.0.0.1:${port}`, [Symbol.asyncDispose]: stop };
}

Deno.test("createClient() loses no call to nginx's keepalive_requests GOAWAY", async () => {
  await using server = await startServer({ port: 0 });
  await using nginx = await startNginx(server.port, 20);
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
