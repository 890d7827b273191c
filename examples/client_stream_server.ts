/**
 * The article's client-streaming server (`client_stream_server.go`): answers
 * `stream.ClientStream/Sum` on 127.0.0.1:8081 and logs `Recved N` for each number and
 * `client closed` when the client has sent them all. Like every server of this module it also
 * answers `Pow` and `Sqrt`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env=GRPC_* examples/client_stream_server.ts [--port 8081]
 * ```
 *
 * It prints `Serving gRPC on 127.0.0.1:PORT` once it listens (`--port 0` picks a free port),
 * and on SIGINT (Ctrl-C) or SIGTERM lets calls in flight finish, then exits 0.
 *
 * @module
 */
import { runArticleServer } from "./_article_server.ts";

if (import.meta.main) {
  Deno.exit(await runArticleServer("client_stream_server.ts", 8081));
}
