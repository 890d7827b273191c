/**
 * What the client reads of a `node:http2` client stream's `state` as the pinned Deno fills it:
 * nghttp2's state of the stream and what is left of its receive window. Node documents
 * `Http2Stream.state`, but Deno's polyfill fills it from its own session, and the client
 * relies on two of its fields to know when a reset is neither early nor lost
 * (`clients/stream_reset.ts`). A stream still pending (no id yet) or already closed reads
 * `{}` in Node and Deno alike: that is not a field gone. A live stream whose `state` lacks
 * the fields is said once (`missedFastPath("Deno stream state", …)`), and the caller then
 * resets without waiting on the window, as it would on a stream whose HEADERS went long ago.
 *
 * This read is a workaround of Deno's reset bugs, not an optimisation: its public
 * "fallback" is the bug, so `GRPC_STREAM_FAST_PATHS=off` leaves it on (see
 * `internals/fast_paths.ts`).
 *
 * @module
 */
import http2 from "node:http2";
import { missedFastPath } from "./fast_paths.ts";

const { NGHTTP2_STREAM_STATE_IDLE } = http2.constants;

/** The fields of `Http2Stream.state` the client reads. */
interface StreamStateView {
  /** nghttp2's state of the stream (`NGHTTP2_STREAM_STATE_*`). */
  readonly state: number;
  /** The bytes the server may still send on the stream before it waits for a window update. */
  readonly localWindowSize: number;
}

/**
 * Reads the fields of `stream.state` the client relies on.
 *
 * @param stream A client stream.
 * @returns The fields, or `undefined` when the stream is pending or closed (its state is
 * empty then), or when Deno's `state` lacks them (said once).
 */
function readStreamState(
  stream: http2.ClientHttp2Stream,
): StreamStateView | undefined {
  if (stream.pending || stream.closed || stream.destroyed) return undefined;
  let state:
    | { state?: number | undefined; localWindowSize?: number | undefined }
    | undefined;
  try {
    state = stream.state;
  } catch {
    state = undefined;
  }
  if (
    typeof state?.state !== "number" ||
    typeof state.localWindowSize !== "number"
  ) {
    missedFastPath(
      "Deno stream state",
      "Deno's Http2Stream.state.state and localWindowSize",
    );
    return undefined;
  }
  return { state: state.state, localWindowSize: state.localWindowSize };
}

/**
 * Whether `stream`'s HEADERS frame has not been sent yet, so that a reset now would be lost.
 * The pinned Deno's `node:http2` sends a request's HEADERS at the next `setImmediate` (or
 * later, behind the server's stream limit), and until then nghttp2 has no stream for it (its
 * state reads idle); its `rstStream` drops a reset for a stream nghttp2 does not have, and the
 * HEADERS still go out: the server sees a request that never ends (a `Sum` waits for numbers
 * until the connection closes). Node's own `rstStream` cancels the unsent HEADERS instead.
 * Remove once Deno's `submit_rst_stream` (ext/node/ops/http2/session.rs) hands such a reset to
 * nghttp2 (no upstream issue found as of the pinned Deno).
 *
 * @param stream A client stream.
 * @returns Whether its HEADERS wait; `false` for a stream with no id yet (its connection is
 * being set up), which a reset drops whole, and when the state cannot be read.
 */
export function headersUnsent(stream: http2.ClientHttp2Stream): boolean {
  return readStreamState(stream)?.state === NGHTTP2_STREAM_STATE_IDLE;
}

/**
 * What is left of `stream`'s receive window, in bytes.
 *
 * @param stream A client stream.
 * @returns The bytes, or `undefined` when the state cannot be read.
 */
export function localWindow(
  stream: http2.ClientHttp2Stream,
): number | undefined {
  return readStreamState(stream)?.localWindowSize;
}
