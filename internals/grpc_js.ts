/**
 * Loads grpc-js under `grpc_js_env.ts`'s view of the environment, so that a program without
 * `--allow-env` loads it as if its `GRPC_*` variables were unset rather than dying at import.
 * `mod.ts` imports this module before anything else: the first import of grpc-js is the one
 * that runs it, and ES modules run their imports in order, depth first.
 *
 * @module
 */
import { restoreProcessEnv } from "./grpc_js_env.ts";
import "./npm/grpc_js.ts";

restoreProcessEnv();
