/**
 * Keeps the pinned grpc-js's retry buffer from decoupling a client stream from the network, for
 * the channels of the grpc-js transport.
 *
 * Until a call is committed (response headers arrive, or its requests outgrow the per-call
 * retry buffer), grpc-js's `RetryingCall` acknowledges each write on the next tick, whether
 * or not the transport has taken it, so a writer that honours `drain` still pushes up to
 * `grpc.per_rpc_retry_buffer_size` bytes of messages (1 MiB by default) ahead of the
 * network; every completed write then copies what is left of that queue
 * (`clearSentMessages` slices `writeBuffer`). Against a server that reads nothing, a `Sum`
 * writer got 118,352 numbers ahead with the default and 8,224 with a 16 KiB buffer (8,208
 * with none); 200,000 numbers to our server went through at about 11,000 messages/s with
 * the default and about 29,000 with 16 KiB (2 busy cores, load average 5-6).
 *
 * The transport therefore sets a 16 KiB per-call buffer unless the caller chose one: calls
 * whose requests fit in it (every `Pow`, short `Sum` and `Sqrt` calls) can still be retried
 * by a service config's `retryPolicy`. No upstream issue tracks it; drop the default when
 * grpc-js holds writes back until the transport has them (check against
 * `tests/clients/sum_test.ts`, "sum() stops pulling numbers a server does not read").
 *
 * @module
 */
import type * as grpc from "../internals/npm/grpc_js.ts";

/** The channel option that sizes grpc-js's per-call retry buffer, in bytes. */
const PER_RPC_RETRY_BUFFER_OPTION = "grpc.per_rpc_retry_buffer_size";

/** The per-call retry buffer the grpc-js transport uses unless told otherwise, in bytes. */
const DEFAULT_PER_RPC_RETRY_BUFFER_BYTES = 16_384;

/**
 * Adds the transport's per-call retry buffer size to `options` unless they set one.
 *
 * @param options The caller's grpc-js channel options.
 * @returns The options to create the channel with.
 */
export function withRetryBufferLimit(
  options: grpc.ChannelOptions,
): grpc.ChannelOptions {
  if (options[PER_RPC_RETRY_BUFFER_OPTION] !== undefined) return options;
  return {
    ...options,
    [PER_RPC_RETRY_BUFFER_OPTION]: DEFAULT_PER_RPC_RETRY_BUFFER_BYTES,
  };
}
