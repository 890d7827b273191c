/**
 * Serve and call the three kinds of gRPC streaming of the classic Go streaming demo —
 * server streaming (`Pow`), client streaming (`Sum`) and bidirectional streaming (`Sqrt`) —
 * from Deno, wire-compatible with the original Go clients and servers. The server runs on
 * `@grpc/grpc-js`; the client helpers run on the module's own gRPC-over-`node:http2` client,
 * or on a grpc-js client with `createClient(target, { transport: "grpc-js" })` for name
 * resolution, load balancing, retries, call credentials and interceptors.
 * A server also hosts the standard health service and server reflection, so tools such as
 * `buf curl` and `grpcurl` work without the `.proto` files, and serves TLS or mutual TLS when
 * given a certificate (`startServer({ tls })`, `createClient(address, { tls })`).
 *
 * @example Serve on a free port, then call all three methods
 * ```ts
 * import { createClient, startServer } from "@streamrpc/grpc-stream";
 *
 * await using server = await startServer({ port: 0 });
 * using client = createClient(server.addresses[0]!);
 *
 * for await (const power of client.pow(2)) console.log(power); // 1n … 512n
 * console.log(await client.sum([1, 2, 3])); // 6n
 * for await (const root of client.sqrt([4, 9])) console.log(root); // 2, 3
 * ```
 *
 * @module
 */
// First: grpc-js must load under the view of the environment that a missing --allow-env
// cannot break.
import "./internals/grpc_js.ts";
export {
  DEFAULT_GRACE_PERIOD_MS,
  type FaultMethod,
  type FaultRule,
  type ServerLogger,
  type ServerTlsOptions,
  startServer,
  type StartServerOptions,
  type StreamServer,
} from "./services/server.ts";
export {
  type CallOptions,
  type ClientOptions,
  type ClientTlsOptions,
  type ClientTransport,
  type ConnectOptions,
  createClient,
  DEFAULT_ADDRESSES,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type GrpcJsChannelOptions,
  type GrpcJsCredentials,
  type GrpcJsInterceptor,
  type Int64Source,
  type MetadataInit,
  type NumberSource,
  pow,
  type PowCallOptions,
  type PowOptions,
  sqrt,
  type StreamCallOptions,
  type StreamClient,
  sum,
} from "./clients/client.ts";
export {
  GrpcError,
  type GrpcErrorOptions,
  type ResponseMetadata,
  Status,
  type StatusName,
  type Trailers,
} from "./clients/grpc_error.ts";
export { type Address, parseAddress } from "./clients/address.ts";
export {
  listenForShutdown,
  type ShutdownListener,
} from "./services/shutdown_signals.ts";
export { INT64_MAX, INT64_MIN, MAX_UINT32 } from "./proto/limits.ts";
