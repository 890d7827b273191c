/**
 * What `serve --workers N` reads of a grpc-js server beyond its public API to give each worker
 * a listening socket of its own on the shared port (`SO_REUSEPORT`, `node:net`'s `reusePort`):
 * grpc-js's `Server.createHttp2Server`, the method `bindAsync` makes each port's HTTP/2 server
 * with, whose `listen(address)` gets `reusePort` and `exclusive` added. Without it a worker
 * listens through `node:cluster`'s round-robin handle in the primary, where Deno 2.9 now and
 * then loses a connection that arrives while a worker starts (the handoff's descriptor never
 * reaches a session). A workaround, not an optimisation: `GRPC_STREAM_FAST_PATHS=off` leaves
 * it on. When the method is gone (another grpc-js) the view says so once ("own listening
 * socket") and the worker takes the round-robin handle.
 *
 * @module
 */
import { missedFastPath, usedFastPath } from "./fast_paths.ts";

/** A `node:net` server's `listen`, as far as this view calls it. */
type Listen = (this: unknown, ...args: unknown[]) => unknown;

/** The HTTP/2 servers that listen on a socket of their own. */
const ownSockets = new WeakSet<object>();

/**
 * Whether `listener` listens on a socket of its own in a group sharing its port, made so by
 * {@linkcode listenOnOwnSocket}.
 *
 * @param listener One of a grpc-js server's HTTP/2 servers.
 * @returns `true` once it listens with `reusePort`.
 */
export function listensOnOwnSocket(listener: object): boolean {
  return ownSockets.has(listener);
}

/** grpc-js's server, as far as this view reaches into it. */
interface ListenView {
  createHttp2Server?: unknown;
}

/**
 * Makes every port `server` binds from now on listen on a socket of its own with
 * `SO_REUSEPORT`, so that several processes bind the same port and the kernel spreads the
 * connections among them. Port 0 still picks a free port; the other processes then bind the
 * port it picked.
 *
 * @param server A grpc-js server, before `bindAsync`.
 * @returns Whether grpc-js had the method; `false` (said once) leaves the server as it was.
 */
export function listenOnOwnSocket(server: object): boolean {
  const view = server as ListenView;
  const create = view.createHttp2Server;
  if (typeof create !== "function") {
    missedFastPath("own listening socket", "grpc-js server.createHttp2Server");
    return false;
  }
  usedFastPath("own listening socket");
  view.createHttp2Server = function (this: unknown, ...args: unknown[]) {
    const http2Server = create.apply(this, args) as { listen: Listen };
    const listen = http2Server.listen;
    http2Server.listen = function (this: unknown, ...listenArgs: unknown[]) {
      const [address, ...rest] = listenArgs;
      // grpc-js 1.14 listens with `{ host, port }` (or `{ path }` for a Unix socket).
      if (
        typeof address === "object" && address !== null && "port" in address
      ) {
        ownSockets.add(http2Server);
        return listen.call(
          this,
          { ...address, reusePort: true, exclusive: true },
          ...rest,
        );
      }
      return listen.apply(this, listenArgs);
    };
    return http2Server;
  };
  return true;
}
