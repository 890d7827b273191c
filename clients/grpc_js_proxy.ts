/**
 * Whether a grpc-js channel may look for an HTTP proxy in the environment: grpc-js 1.14.7
 * reads `grpc_proxy`, `https_proxy`, `http_proxy`, `no_grpc_proxy` and `no_proxy` each time
 * it creates a channel, and Deno throws `NotCapable` for a variable outside `--allow-env`.
 * The README's permissions (`--allow-env=GRPC_*`) do not cover these lower-case names, so
 * a channel without the permission for them goes without a proxy, as if none were set;
 * granting all five turns grpc-js's proxy support back on; granting only some, or asking for
 * a proxy in the channel options without them, is an error that names the flag.
 *
 * @module
 */
import type * as grpc from "../internals/npm/grpc_js.ts";
import { envGranted } from "../internals/grpc_js_env.ts";

/** The variables grpc-js reads for a proxy, in the order it reads them. */
export const PROXY_VARIABLES = [
  "grpc_proxy",
  "https_proxy",
  "http_proxy",
  "no_grpc_proxy",
  "no_proxy",
] as const;

/** The channel option that turns grpc-js's proxy support off, and the flag that allows it. */
const ENABLE_PROXY = "grpc.enable_http_proxy";
const PROXY_FLAG = `--allow-env=GRPC_*,${PROXY_VARIABLES.join(",")}`;

/**
 * The channel options that keep grpc-js from reading proxy variables it may not read.
 *
 * @param channelOptions The caller's channel options.
 * @returns `{ "grpc.enable_http_proxy": 0 }` when none of the variables may be read, or
 * nothing.
 * @throws {Deno.errors.NotCapable} If only some of the variables may be read, or the channel
 * options ask for a proxy and they may not be read.
 */
export function proxyChannelOptions(
  channelOptions: grpc.ChannelOptions,
): grpc.ChannelOptions {
  const asked = channelOptions[ENABLE_PROXY];
  if (asked === 0) return {};
  const missing = PROXY_VARIABLES.filter((name) => !envGranted(name));
  if (missing.length === 0) return {};
  if (missing.length === PROXY_VARIABLES.length && asked === undefined) {
    return { [ENABLE_PROXY]: 0 };
  }
  throw new Deno.errors.NotCapable(
    `Requires env access to ${
      missing.join(", ")
    } for the grpc-js transport's proxy: run again with ${PROXY_FLAG}`,
  );
}
