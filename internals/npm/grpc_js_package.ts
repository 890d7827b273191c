/**
 * grpc-js's `package.json`, for `internals/versions.ts` to read the version in use, of the
 * grpc-js that `grpc_js.ts` pins.
 *
 * @module
 */
export { default } from "npm:@grpc/grpc-js@1.14.7/package.json" with {
  type: "json",
};
