/**
 * grpc-js's private `subchannel-call` module, for `internals/grpc_js_subchannel_call.ts`, of
 * the grpc-js that `grpc_js.ts` pins.
 *
 * @module
 */
export { default } from "npm:@grpc/grpc-js@1.14.7/build/src/subchannel-call.js";
