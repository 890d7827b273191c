/**
 * `@grpc/proto-loader`, pinned: what turns the parsed `.proto` files into grpc-js service
 * definitions.
 *
 * @module
 */
export * from "npm:@grpc/proto-loader@0.8.1";
