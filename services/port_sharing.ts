/**
 * The seam through which `serve --workers N` asks `startServer` for a listening
 * socket of its own on each port (`SO_REUSEPORT`), so that its workers bind the same ports
 * side by side; not part of the module's API (`mod.ts` does not export it). A library user
 * with `node:cluster` keeps its round-robin sharing, port 0 included.
 *
 * ```ts ignore
 * const options = { port: [50051] };
 * const sharing = sharePorts(options);
 * await using server = await startServer(options);
 * sharing.ownSocket; // true: another process may bind 50051 the same way
 * ```
 *
 * @module
 */

/** What one server was asked, and did. */
export class PortSharing {
  /**
   * Whether the server listens on sockets of its own: `false` when grpc-js's
   * `createHttp2Server` is gone, and the ports are shared through `node:cluster` instead.
   */
  ownSocket = false;
}

const requests = new WeakMap<object, PortSharing>();

/**
 * Asks the server started with `options` to listen on sockets of its own.
 *
 * @param options The options object `startServer` will be given.
 * @returns What the server did, filled in as it binds.
 */
export function sharePorts(options: object): PortSharing {
  const sharing = new PortSharing();
  requests.set(options, sharing);
  return sharing;
}

/**
 * What {@linkcode sharePorts} asked of the server started with `options`.
 *
 * @param options The options object given to `startServer`.
 * @returns The request, or `undefined` when none was made.
 */
export function portSharingOf(options: object): PortSharing | undefined {
  return requests.get(options);
}
