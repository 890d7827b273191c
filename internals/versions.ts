/**
 * The versions of grpc-js and Deno whose private fields and bugs the files of `internals/`
 * were written against, and the one check of them. A reach into a private field is only
 * known to hold on these versions; on any other, a fast path still looks for its fields (and
 * falls back loudly when one is gone), while a prototype patch, which cannot tell a changed
 * method from a fixed bug, refuses to apply.
 *
 * @module
 */
import grpcJsPackage from "./npm/grpc_js_package.ts";

/** The grpc-js version the reaches and patches were written for. */
export const PINNED_GRPC_JS_VERSION = "1.14.7";

/** The Deno version the reaches into `node:http2` were written for. */
export const PINNED_DENO_VERSION = "2.9.6";

/** The pinned versions, as messages name them: `grpc-js 1.14.7 and Deno 2.9.6`. */
export const PINNED_VERSIONS =
  `grpc-js ${PINNED_GRPC_JS_VERSION} and Deno ${PINNED_DENO_VERSION}`;

/** The grpc-js version the import map resolved. */
export const GRPC_JS_VERSION: string = grpcJsPackage.version;

/**
 * Throws when the grpc-js in use is not the one a patch was written for: a patch of a
 * private method that changed could break calls where the fix was meant to help them.
 *
 * @param patch What the patch fixes, as a message names it, e.g. `The cancel fix for grpc-js`.
 * @throws {Error} If the grpc-js in use is not {@linkcode PINNED_GRPC_JS_VERSION}.
 */
export function requirePinnedGrpcJs(patch: string): void {
  if (GRPC_JS_VERSION !== PINNED_GRPC_JS_VERSION) {
    throw new Error(
      `${patch} was written for grpc-js ${PINNED_GRPC_JS_VERSION}, not ${GRPC_JS_VERSION}: check whether it is still needed`,
    );
  }
}
