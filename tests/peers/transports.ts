/**
 * The transports of our client that the interop tests run over, declared in one place so
 * that a new transport is one more entry here.
 *
 * @module
 */
import type { ClientOptions } from "../../mod.ts";

/** A transport of `createClient`, by name, and the options that select it. */
export interface Transport {
  /** Its name in test names. */
  readonly name: string;
  /** What to pass to `createClient` to call over it. */
  readonly options: ClientOptions;
}

/** Every transport of `createClient`. */
export const TRANSPORTS: readonly Transport[] = [
  { name: "http2", options: {} },
];
