/**
 * What the fast paths have done in this process, kept apart from `fast_paths.ts` as the
 * tests' seam: the record is per process (a fallback is said once per process), so the tests
 * read it in a process of their own (`tests/fixtures/fast_paths_probe.ts`). Not part of the
 * module's API: `mod.ts` exports nothing from `internals/`.
 *
 * @module
 */

/** A fast path of the server, by what it does. */
export type FastPath =
  /** `reply_writer.ts`: writes replies in chunks to grpc-js's HTTP/2 stream. */
  | "reply writer"
  /** `request_reader.ts`: reads Sum and Sqrt requests from grpc-js's HTTP/2 stream. */
  | "request reader"
  /** `request_frames.ts`: takes DATA frames from Deno's native stream handle. */
  | "request frames from Deno's handle"
  /** `telemetry.ts`: counts messages and takes the status where grpc-js sends them. */
  | "call telemetry"
  /**
   * `session_guard.ts`: guards the HTTP/2 sessions grpc-js keeps in a private map. Left on by
   * `GRPC_STREAM_FAST_PATHS=off`: the workarounds it carries have no public fallback.
   */
  | "session guard"
  /** `session_drain.ts`: reads Deno's session state to see streams still answering. */
  | "session drain"
  /** `frame_tap.ts`: takes request DATA frames from the socket's bytes before nghttp2. */
  | "frame tap"
  /** `call_starts.ts`: marks the HTTP/2 stream of each Pow and unary Sqrt call started. */
  | "call starts"
  /**
   * `lean_calls.ts`: answers Pow, Sum and the bidirectional Sqrt from the HTTP/2 stream, in
   * place of grpc-js's per-call machinery, through grpc-js's `'stream'` listener.
   */
  | "lean calls"
  /**
   * `services/http2/`: serves cleartext connections with the server's own HTTP/2 in place of
   * `node:http2`'s sessions, taking each socket before the `node:http2` server's
   * `connectionListener` (`node_http2_server.ts`).
   */
  | "own HTTP/2"
  /**
   * `deno_http2_stream.ts`: the client's read of Deno's `Http2Stream.state`, a workaround
   * that `GRPC_STREAM_FAST_PATHS=off` leaves on (not in `FAST_PATHS`).
   */
  | "Deno stream state"
  /**
   * `grpc_js_call_drop.ts`: the stream and socket under a call, for faults on request's
   * drops; a feature that `GRPC_STREAM_FAST_PATHS=off` leaves on (not in `FAST_PATHS`).
   */
  | "fault drops"
  /**
   * `grpc_js_listen.ts`: a listening socket of its own for each worker of `serve --workers N`,
   * a workaround that `GRPC_STREAM_FAST_PATHS=off` leaves on (not in `FAST_PATHS`).
   */
  | "own listening socket";

/** Every fast path of the server, in the order above. */
export const FAST_PATHS: readonly FastPath[] = [
  "reply writer",
  "request reader",
  "request frames from Deno's handle",
  "call telemetry",
  "session guard",
  "session drain",
  "frame tap",
  "call starts",
  "lean calls",
  "own HTTP/2",
];

/** The paths that found their fields, and those that fell back with what they missed. */
export const record: {
  readonly used: Set<FastPath>;
  readonly missed: Map<FastPath, string>;
} = { used: new Set(), missed: new Map() };

/** What the fast paths have done so far in this process. */
export interface FastPathRecord {
  /** The paths that found their fields at least once. */
  used: ReadonlySet<FastPath>;
  /** The paths that fell back, with what they did not find. */
  missed: ReadonlyMap<FastPath, string>;
}

/**
 * Returns a copy of what the fast paths have done so far in this process.
 *
 * @returns The paths used and the paths missed.
 */
export function fastPathRecord(): FastPathRecord {
  return { used: new Set(record.used), missed: new Map(record.missed) };
}
