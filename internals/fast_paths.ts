/**
 * The server's reliance on private fields of grpc-js and Deno's `node:http2` (the pinned
 * versions of `versions.ts`), made loud. Each fast path below reads a field neither project documents; when a field is
 * gone (an upgrade of either), the path falls back to the public API, which still answers
 * every call correctly, only slower or with less care on shutdown. The first fallback of
 * each path is said once per process through the logger of every server running (or
 * `console.warn` when none has a logger), and `tests/services/fast_paths_test.ts` fails when a path
 * is not in use on the pinned versions.
 *
 * `GRPC_STREAM_FAST_PATHS=off` in the environment (read once, and only with env permission
 * for it) makes every path take that same fallback without looking for its field, and the
 * server says so once, naming the variable; `deno task test:fallbacks` runs the whole suite
 * so, to prove the fallbacks answer every call. One path stays on: the session guard's reach
 * into grpc-js's `http2Servers` is the only door to the HTTP/2 sessions for workarounds with
 * no public fallback (the deferred close after a GOAWAY, without which a polite client can
 * crash the process on denoland/deno#36788; the handshake timeout; the reset budget), so it
 * is a correctness reach, not an optimisation. The frame tap behind it does turn off, and
 * with it the honest resets: cancels of answered calls then count as nghttp2 counts any
 * reset, and a client that cancels at a sustained rate (150 a second) has its connection
 * ended by nghttp2 (`GOAWAY INTERNAL_ERROR`) after a few hundred cancels.
 *
 * The server's reaches go through typed views, each of which records its path here:
 * `grpc_js_server.ts` (grpc-js's `http2Servers`), `grpc_js_server_call.ts` (the intercepting
 * call under a handler's: its stream, data handler and sends) and `deno_http2_session.ts`
 * (Deno's session state and native stream handles).
 *
 * Only optimisations are fast paths. The client's reaches are workarounds of bugs, whose
 * public "fallback" is the bug, so the switch leaves them on, as it always has: the grpc-js
 * prototype patches (`internals/grpc_js_subchannel_call.ts`, for `clients/grpc_js_cancel.ts`:
 * a cancel that half-closes first and a GOAWAY for DATA after a reset, and
 * `clients/grpc_js_status_order.ts`: messages lost before a non-OK status;
 * `internals/grpc_js_subchannel_connector.ts`, for `clients/grpc_js_goaway.ts`: a process crash
 * on GOAWAY, and `clients/grpc_js_connect_timeout.ts`: no connect timeout at all) and the
 * reading of `stream.state` (`internals/deno_http2_stream.ts`, for `clients/stream_reset.ts`:
 * Node's public `Http2Stream.state` as Deno fills it, to know when a reset is neither early
 * nor lost). That read is named here ("Deno stream state") so that a Deno without its fields
 * is said once, switch or no switch; it is not among the server's paths (`FAST_PATHS` in `_fast_path_record.ts`).
 * `clients/grpc_js_retry_buffer.ts` only sets a public channel option.
 *
 * @module
 */
import { PINNED_VERSIONS } from "./versions.ts";
import { type FastPath, record } from "./_fast_path_record.ts";

export type { FastPath };

/** Where a fallback is said: a server's logger, or anything with its `warn`. */
export interface FallbackLogger {
  /** One line saying a fast path fell back. */
  warn(message: string): void;
}

/** The reads the switch leaves on: a missing field is said even when it is off. */
const WORKAROUND_READS: ReadonlySet<FastPath> = new Set([
  "Deno stream state",
  "fault drops",
  "own listening socket",
]);

/** The environment variable that, set to `off`, turns every fast path off. */
const SWITCH = "GRPC_STREAM_FAST_PATHS";

/** Whether {@linkcode SWITCH} says `off`, read once; `undefined` until first asked. */
let switchedOff: boolean | undefined;

const loggers = new Set<FallbackLogger>();

function say(line: string): void {
  if (loggers.size === 0) console.warn(line);
  for (const logger of loggers) logger.warn(line);
}

function readSwitch(): string | undefined {
  // Without env permission (no flag, or one that leaves this variable out) the paths stay
  // on: a query never prompts, where a read would.
  try {
    const status = Deno.permissions.querySync({
      name: "env",
      variable: SWITCH,
    });
    return status.state === "granted" ? Deno.env.get(SWITCH) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the fast paths may reach private fields at all: `false` when the environment sets
 * `GRPC_STREAM_FAST_PATHS=off`, which makes every path take the fallback it takes when its
 * field is missing. Read once per process; the first time it answers `false` it says so
 * through the logger of every server running (or `console.warn` when none has a logger).
 *
 * @returns `true` unless the fast paths are switched off.
 */
export function fastPathsOn(): boolean {
  if (switchedOff === undefined) {
    switchedOff = readSwitch()?.trim().toLowerCase() === "off";
    if (switchedOff) {
      say(
        `Fast paths off: ${SWITCH}=off; the optimisations take their public-API fallbacks`,
      );
    }
  }
  return !switchedOff;
}

/** Records that `path` found the fields it needs. Cheap enough for every call. */
export function usedFastPath(path: FastPath): void {
  record.used.add(path);
}

/**
 * Records that `path` fell back because a private field is gone, and says so the first time.
 *
 * @param path The fast path that fell back.
 * @param missing What was not found, e.g. `grpc-js call.stream`.
 */
export function missedFastPath(path: FastPath, missing: string): void {
  // Switched off, the path did not look for its field: the switch has been said already.
  if (
    record.missed.has(path) || (!WORKAROUND_READS.has(path) && !fastPathsOn())
  ) {
    return;
  }
  record.missed.set(path, missing);
  say(
    `Fast path off: ${path}: ${missing} not found (the private fields of ${PINNED_VERSIONS} it relies on changed); calls go on through the public API`,
  );
}

/**
 * Lets a running server's logger hear of fallbacks.
 *
 * @returns A function that stops it, for when the server closes.
 */
export function reportFallbacksTo(logger: FallbackLogger): () => void {
  loggers.add(logger);
  return () => loggers.delete(logger);
}
