/**
 * How the server binds its ports: one grpc-js `bindAsync` as a promise, with a missing
 * permission and a port in use said plainly.
 *
 * @module
 */
import type * as grpc from "../internals/npm/grpc_js.ts";
import { withoutBindFailureLine } from "../internals/grpc_js_logging.ts";

/**
 * The address grpc-js binds: an IPv6 host in brackets.
 *
 * @param hostname The host.
 * @param port The port.
 * @returns `host:port`.
 */
export function hostPort(hostname: string, port: number): string {
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

/**
 * Binds `server` to one address, as a promise.
 *
 * @param server The grpc-js server.
 * @param options The address and the credentials.
 * @returns The port bound.
 */
export function bind(
  server: grpc.Server,
  { address, credentials }: {
    address: string;
    credentials: grpc.ServerCredentials;
  },
): Promise<number> {
  // grpc-js meets a missing permission as an exception outside any callback, which would end
  // the process; asking first turns it into an error the caller can handle.
  if (
    Deno.permissions.querySync({ name: "net", host: address }).state !==
      "granted"
  ) {
    // The flag names the host alone: a port of 0 is only known once bound.
    const host = address.slice(0, address.lastIndexOf(":"));
    return Promise.reject(
      new Deno.errors.NotCapable(
        `Requires net access to ${address}: run again with --allow-net=${host}`,
      ),
    );
  }
  return withoutBindFailureLine(() =>
    new Promise((resolve, reject) => {
      server.bindAsync(address, credentials, (error, port) => {
        if (error) {
          reject(
            new Error(`Cannot listen on ${address}: ${bindFailure(error)}`, {
              cause: error,
            }),
          );
        } else {
          resolve(port);
        }
      });
    })
  );
}

/** grpc-js's account of a failed bind, put plainly where it is a port in use. */
function bindFailure(error: Error): string {
  return /EADDRINUSE/.test(error.message)
    ? "address already in use"
    : error.message;
}
