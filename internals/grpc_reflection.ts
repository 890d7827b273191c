/**
 * The request handler of `@grpc/reflection`, from a file the package does not export as an
 * entry point: its `ReflectionService.addToServer` reads the reflection `.proto` files from
 * disk, which under Deno needs `--allow-read` for the npm cache, so the server registers the
 * services itself (`services/reflection.ts`) and takes only this class. The version is pinned
 * in `deno.json`'s import map; a release that moves the file fails at import, in every test.
 *
 * @module
 */
export { ReflectionV1Implementation } from "@grpc/reflection/build/src/implementations/reflection-v1.js";
