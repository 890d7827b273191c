/**
 * Whether Deno's built-in OpenTelemetry is on for this process (`OTEL_DENO=true`).
 *
 * @module
 */
import { trace } from "../internals/npm/opentelemetry_api.ts";

/**
 * Whether spans are recorded in this process. A span that is never ended is never exported,
 * so asking costs nothing visible.
 *
 * @returns `true` under `OTEL_DENO=true` (with tracing not turned off).
 */
export function tracingIsOn(): boolean {
  return trace.getTracer("grpc-stream-cli").startSpan("probe").isRecording();
}
