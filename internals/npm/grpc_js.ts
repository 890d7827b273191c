/**
 * grpc-js, pinned. Every file of the module reaches grpc-js through this file, so that the
 * module loads from a path or a URL with no import map of the user's own, and the version is
 * written once (`tests/layout/npm_pins_test.ts` holds it to `internals/versions.ts`).
 *
 * @module
 */
export * from "npm:@grpc/grpc-js@1.14.7";
