/**
 * The article's bidirectional-streaming server (`bidirectional_stream_server.go`): answers
 * `stream.BidirectionalStreamServer/Sqrt` on 127.0.0.1:8083, logging `Recv Data:X` for each
 * number and sending its square root at once. Like every server of this module it also
 * answers `Pow` and `Sum`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env=GRPC_* examples/bidirectional_stream_server.ts [--port 8083]
 * ```
 *
 * It prints `Serving gRPC on 127.0.0.1:PORT` once it listens (`--port 0` picks a free port),
 * and on SIGINT (Ctrl-C) or SIGTERM lets calls in flight finish, then exits 0.
 *
 * @module
 */
import { runArticleServer } from "./_article_server.ts";

if (import.meta.main) {
  Deno.exit(
    await runArticleServer("bidirectional_stream_server.ts", 8083),
  );
}
