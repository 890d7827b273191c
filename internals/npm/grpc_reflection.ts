/**
 * The request handler of `@grpc/reflection`, pinned, from a file the package does not export
 * as an entry point: its `ReflectionService.addToServer` reads the reflection `.proto` files
 * from disk, which under Deno needs `--allow-read` for the npm cache, so the server registers
 * the services itself (`services/reflection.ts`) and takes only this class. A release that
 * moves the file fails at import, in every test.
 *
 * @module
 */
export { ReflectionV1Implementation } from "npm:@grpc/reflection@1.0.4/build/src/implementations/reflection-v1.js";
