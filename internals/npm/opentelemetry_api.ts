/**
 * `@opentelemetry/api`, pinned: the API both sides record their calls through, which Deno's
 * built-in OpenTelemetry implements.
 *
 * @module
 */
export * from "npm:@opentelemetry/api@1.10.0";
