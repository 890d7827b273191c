/**
 * The client side of the module's OpenTelemetry: a CLIENT span per call, W3C trace context
 * in the request metadata, and the `rpc.client.*` metrics. See `proto/telemetry.ts`.
 *
 * @module
 */
import { context, propagation } from "../internals/npm/opentelemetry_api.ts";
import {
  type CallRecorder,
  callsRecorded,
  startCallRecorder,
} from "../telemetry/call_recorder.ts";
import {
  ATTRIBUTES,
  parseMethodPath,
  splitHostPort,
} from "../telemetry/conventions.ts";

export type { CallRecorder } from "../telemetry/call_recorder.ts";

/** Where a call goes and what it sends first, for {@linkcode startClientCall}. */
export interface ClientCallSetup {
  /** The server's `host:port`. */
  authority: string;
  /** The request headers, to which the trace context is added. */
  headers: Record<string, unknown>;
}

/**
 * Starts the telemetry of one outgoing call and writes the trace context into its request
 * headers: `traceparent` and `tracestate` from the caller's active context, through the
 * registered propagator (Deno's W3C one under `OTEL_DENO=true`), with this call's span as
 * the parent the server sees.
 *
 * @param path The method path, e.g. `/stream.ServerStream/Pow`.
 * @param call The server's `host:port`, and the request headers, to which the trace
 * context is added.
 * @returns The call's recorder, or `undefined` when OpenTelemetry is off.
 */
export function startClientCall(
  path: string,
  call: ClientCallSetup,
): CallRecorder | undefined {
  const { authority, headers } = call;
  const parent = context.active();
  if (!callsRecorded("client")) {
    // A propagator alone (OTEL_DENO_TRACING=false) still passes on the caller's context.
    propagation.inject(parent, headers);
    return undefined;
  }
  const { host, port } = splitHostPort(authority);
  const recorder = startCallRecorder("client", {
    method: parseMethodPath(path),
    parent,
    attributes: port === undefined
      ? { [ATTRIBUTES.serverAddress]: host }
      : { [ATTRIBUTES.serverAddress]: host, [ATTRIBUTES.serverPort]: port },
  });
  // Also when nothing records: a propagator alone (OTEL_DENO_TRACING=false) still passes on a
  // context the caller extracted from elsewhere. Without one, this does nothing.
  propagation.inject(recorder?.context ?? parent, headers);
  return recorder;
}

/**
 * Runs `start` with the call's span active, so that what the runtime traces of it (Deno's
 * own span for the HTTP/2 request) is a child of the call's span.
 *
 * @param recorder The call's recorder, if any.
 * @param start What starts the call.
 * @returns What `start` returns.
 */
export function inCallContext<T>(
  recorder: CallRecorder | undefined,
  start: () => T,
): T {
  return recorder?.recording ? context.with(recorder.context, start) : start();
}
