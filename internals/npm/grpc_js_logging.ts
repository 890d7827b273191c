/**
 * grpc-js's private `logging` module, for `internals/grpc_js_logging.ts`, of the grpc-js that
 * `grpc_js.ts` pins.
 *
 * @module
 */
export * from "npm:@grpc/grpc-js@1.14.7/build/src/logging.js";
