/**
 * The client transports every client test runs on, so one suite checks both.
 *
 * @module
 */
import type { ClientTransport } from "../../mod.ts";

/** The module's own HTTP/2 client (the default), then the grpc-js client. */
export const TRANSPORTS: readonly ClientTransport[] = ["http2", "grpc-js"];

/** A test's context, with the transport its clients use. */
export interface TransportTestContext extends Deno.TestContext {
  /** The transport to pass to `createClient` and the one-call helpers. */
  transport: ClientTransport;
}

/**
 * Registers the test once per transport, named `name (transport)`.
 *
 * @param name The test's name.
 * @param fn The test; `t.transport` says which transport its clients use.
 */
export function test(
  name: string,
  fn: (t: TransportTestContext) => Promise<void> | void,
): void {
  for (const transport of TRANSPORTS) {
    Deno.test(
      `${name} (${transport})`,
      (t) => fn(Object.assign(t, { transport })),
    );
  }
}
