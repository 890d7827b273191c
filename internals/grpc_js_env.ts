/**
 * What grpc-js reads of the environment as it loads, answered only where Deno grants it.
 *
 * grpc-js 1.14.7 reads its `GRPC_*` variables (`GRPC_NODE_VERBOSITY`, `GRPC_VERBOSITY`,
 * `GRPC_NODE_TRACE`, `GRPC_TRACE`, `GRPC_NODE_USE_ALTERNATIVE_RESOLVER`,
 * `GRPC_NODE_DEBUG_SEND_ERROR_DETAILS`, `GRPC_EXPERIMENTAL_ENABLE_OUTLIER_DETECTION`,
 * `GRPC_SSL_CIPHER_SUITES`, `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`) from `process.env` while its
 * modules load. Deno throws `NotCapable` for a variable outside `--allow-env`, so without the
 * permission a program importing this module died at import with a stack of grpc-js frames,
 * or prompted for each variable at a terminal. While grpc-js loads, `process.env` is a view
 * that answers a variable only when Deno already grants it and `undefined` otherwise, as if
 * it were unset: grpc-js then runs on its defaults, and `--allow-env=GRPC_*` is what lets a
 * user turn on its tracing. The real `process.env` is back as soon as grpc-js has loaded
 * ({@linkcode restoreProcessEnv}, called by `grpc_js.ts`).
 *
 * `process.env` is a writable property in Node and in Deno; a Deno where it is not leaves
 * grpc-js to read the real one, and the view is simply not there.
 *
 * @module
 */
import process from "node:process";

const realEnv = process.env;

/** Whether Deno grants reading `variable` without asking. */
export function envGranted(variable: string): boolean {
  return Deno.permissions.querySync({ name: "env", variable }).state ===
    "granted";
}

const grantedView: NodeJS.ProcessEnv = new Proxy({}, {
  get(_target, name) {
    return typeof name === "string" && envGranted(name)
      ? Deno.env.get(name)
      : undefined;
  },
  has(_target, name) {
    return typeof name === "string" && envGranted(name) &&
      Deno.env.has(name);
  },
});

try {
  process.env = grantedView;
} catch {
  // Not writable on this Deno: grpc-js reads the real environment.
}

/** Puts the real `process.env` back once grpc-js has loaded. */
export function restoreProcessEnv(): void {
  if (process.env === grantedView) process.env = realEnv;
}
