/**
 * Supplies `node:http2` constants that grpc-js uses and the pinned Deno (`versions.ts`) does not define.
 *
 * grpc-js answers a request whose `content-type` is not `application/grpc…` with
 * `:status: http2.constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE`, which Deno's `node:http2`
 * leaves `undefined` (its constants list only 10 of Node's 63 `HTTP_STATUS_*` names): the
 * response then goes out as HTTP 200 with no `grpc-status`, which the gRPC HTTP/2 protocol
 * forbids. The value is the one Node defines. No Deno issue names this yet (searched
 * 2026-11); remove this module when `ext/node/polyfills/internal/http2/constants.ts` in the
 * Deno this project requires defines `HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE`.
 *
 * @module
 */
import http2 from "node:http2";

const constants = http2.constants as Record<string, unknown>;
constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE ??= 415;
