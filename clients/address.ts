/**
 * The address grammar the module's own client dials and the command line accepts.
 *
 * @module
 */

/** `host:port` or `[ipv6]:port`, the only address forms the client dials. */
const ADDRESS = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/\[\]@?#]+)):(\d{1,5})$/;

/** A `host:port` address taken apart by {@linkcode parseAddress}. */
export interface Address {
  /** The host name or IP address, an IPv6 address without its brackets. */
  hostname: string;
  /** The port, 0 to 65535. */
  port: number;
}

/**
 * Takes apart a `host:port` or `[ipv6]:port` address, as
 * {@linkcode createClient} accepts it for its own transport.
 *
 * @param address The address, such as `"localhost:8082"` or `"[::1]:8082"`.
 * @returns Its host name (an IPv6 address without brackets) and port.
 * @throws {TypeError} If `address` has another form or a port past 65535.
 *
 * @example Ask for the one net permission a call to an address needs, as the command line does
 * ```ts
 * import { parseAddress } from "@streamrpc/grpc-stream";
 * import { deepStrictEqual } from "node:assert";
 *
 * const { hostname, port } = parseAddress("[::1]:8082");
 * deepStrictEqual({ hostname, port }, { hostname: "::1", port: 8082 });
 * const host = hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
 * const { state } = await Deno.permissions.query({ name: "net", host });
 * console.log(state); // "granted" with --allow-net=[::1], else "prompt" or "denied"
 * ```
 */
export function parseAddress(address: string): Address {
  const match = typeof address === "string" ? ADDRESS.exec(address) : null;
  const port = Number(match?.[3]);
  if (match === null || port > 65_535) {
    throw new TypeError(
      `Address must be "host:port" or "[ipv6]:port" with a port up to 65535: ${address}`,
    );
  }
  return { hostname: match[1] ?? match[2]!, port };
}
