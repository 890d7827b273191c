/**
 * What the tests expect of `GRPC_STREAM_FAST_PATHS=off` (`deno task test:fallbacks`): the
 * servers they start, in process or as subprocesses (which inherit the variable), take every
 * fast path's public fallback, and each process says so once.
 *
 * @module
 */

/** The line a server process says once when its fast paths are switched off. */
export const SWITCHED_OFF_LINE =
  "Fast paths off: GRPC_STREAM_FAST_PATHS=off; the optimisations take their public-API fallbacks";

/** Whether this test process runs with the fast paths switched off. */
export function fastPathsSwitchedOff(): boolean {
  return Deno.env.get("GRPC_STREAM_FAST_PATHS")?.trim().toLowerCase() === "off";
}

/**
 * The warnings a server process prints on its own, before any of a test's: the switch's line
 * when the fast paths are off, none otherwise.
 *
 * @returns The lines, in order.
 */
export function switchWarnings(): string[] {
  return fastPathsSwitchedOff() ? [SWITCHED_OFF_LINE] : [];
}
