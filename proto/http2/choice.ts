/**
 * Whether the module's own HTTP/2 carries cleartext connections, on both sides: it does
 * unless the environment says `GRPC_STREAM_HTTP2=node`, which leaves every connection to
 * Deno's `node:http2` (the way to tell a fault of the own HTTP/2 from one elsewhere).
 *
 * @module
 */
import { envGranted } from "../../internals/grpc_js_env.ts";

/**
 * The environment variable that, set to `node`, leaves every connection to `node:http2`.
 */
export const HTTP2_VARIABLE = "GRPC_STREAM_HTTP2";

/**
 * Whether the environment leaves the own HTTP/2 on: it does unless `GRPC_STREAM_HTTP2=node`
 * (read only with permission for it).
 *
 * @returns `true` unless the variable says `node`.
 */
export function ownHttp2Chosen(): boolean {
  return !(envGranted(HTTP2_VARIABLE) &&
    Deno.env.get(HTTP2_VARIABLE) === "node");
}
