/**
 * The lifecycle of one call of the default transport (`grpc_call.ts`), as one state type.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type { CallStatus } from "./transport.ts";

/**
 * Where a call stands, from its request to its status:
 * - `requested`: the stream is open, no response headers yet. `early` holds body chunks that
 *   came before them, until the headers say whether the body is gRPC at all: Deno 2.7.5 to
 *   the pinned version emit "data" before "response" when both arrive in one read (denoland/deno#35947;
 *   this can go once a Deno with its fix, denoland/deno#35959, is the oldest supported).
 *   `unsent` says nghttp2 reported the stream's HEADERS frame never sent.
 * - `answered`: the response headers came; messages are read as they arrive.
 * - `status received`: trailers (or a trailers-only response) said how the call ended; the
 *   end of the body is awaited, so every message before the status is handed up first.
 * - `body ended`: the body ended with no status; the stream's close says how the call went.
 *   `answered` and `unsent` are what `requested` knew, for a transparent retry.
 * - `awaiting retry`: the server refused the call unprocessed, and its retry waits (as the
 *   call did) for the channel to be ready; `forget` stops the wait.
 * - `finished`: the status is reported, or about to be.
 */
export type CallState =
  | { phase: "requested"; early: Buffer[]; unsent: boolean }
  | { phase: "answered" }
  | { phase: "status received"; status: CallStatus }
  | { phase: "body ended"; answered: boolean; unsent: boolean }
  | { phase: "awaiting retry"; forget: () => void }
  | { phase: "finished"; status: CallStatus };
