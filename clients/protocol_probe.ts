/**
 * A short probe of what a server speaks, for a transport that cannot see the first bytes of
 * its own failed connection (grpc-js's): it opens a plaintext connection, sends the HTTP/2
 * preface and an empty SETTINGS frame, and reads what comes back.
 *
 * @module
 */
import net from "node:net";
import type { Address } from "./address.ts";
import { FIRST_BYTES_LIMIT } from "./connection_errors.ts";

/** How long a probe waits for the server's first bytes. */
export const PROBE_TIMEOUT_MS = 2_000;

/** The client connection preface, then a SETTINGS frame with no settings. */
const PREFACE = new Uint8Array([
  ...new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
  ...[0, 0, 0, 4, 0, 0, 0, 0, 0],
]);

/**
 * Reads a server's answer to the HTTP/2 preface, for `describeServerBytes` to say what the
 * server speaks.
 *
 * @param address Where the server listens.
 * @returns The first bytes the server sent within {@linkcode PROBE_TIMEOUT_MS} (none when
 *   it could not be reached or said nothing).
 */
export function probeServer(address: Address): Promise<Uint8Array> {
  return new Promise((resolve) => {
    let seen = new Uint8Array(0);
    const socket = net.connect({ host: address.hostname, port: address.port });
    const timer = setTimeout(done, PROBE_TIMEOUT_MS);
    function done(): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(seen);
    }
    socket.once("connect", () => socket.write(PREFACE));
    socket.on("data", (chunk: Uint8Array) => {
      const bytes = new Uint8Array(seen.length + chunk.length);
      bytes.set(seen);
      bytes.set(chunk, seen.length);
      seen = bytes.subarray(0, FIRST_BYTES_LIMIT);
      if (seen.length >= FIRST_BYTES_LIMIT) done();
    });
    socket.once("error", done);
    socket.once("close", done);
  });
}
