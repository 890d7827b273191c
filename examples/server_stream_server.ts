/**
 * The article's server-streaming server (`server_stream_server.go`): answers
 * `stream.ServerStream/Pow` on 127.0.0.1:8082 and logs `Recv Client Data N` for each request.
 * Like every server of this module it also answers `Sum` and `Sqrt`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env=GRPC_* examples/server_stream_server.ts [--port 8082]
 * ```
 *
 * It prints `Serving gRPC on 127.0.0.1:PORT` once it listens (`--port 0` picks a free port),
 * and on SIGINT (Ctrl-C) or SIGTERM lets calls in flight finish, then exits 0.
 *
 * @module
 */
import { runArticleServer } from "./_article_server.ts";

if (import.meta.main) {
  Deno.exit(await runArticleServer("server_stream_server.ts", 8082));
}
