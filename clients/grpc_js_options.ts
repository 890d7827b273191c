/**
 * How the grpc-js transport is set up from a client's options: which targets grpc-js can
 * dial, its credentials (the caller's, or TLS from `tls`), and its channel options.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import net from "node:net";
import { pemBuffer } from "../proto/pem.ts";
import { parseAddress } from "./address.ts";
import { DEFAULT_BACKOFF_MULTIPLIER } from "./channel_options.ts";
import type { CheckedClientOptions, ClientOptions } from "./client_options.ts";
import { proxyChannelOptions } from "./grpc_js_proxy.ts";
import { toChannelTls } from "./tls_options.ts";

/** How a grpc-js channel connects, checked. */
export interface GrpcJsChannelSetup {
  /** The credentials: insecure, TLS, or TLS with call credentials. */
  credentials: grpc.ChannelCredentials;
  /** grpc-js channel options, already merged with the module's defaults. */
  channelOptions: grpc.ChannelOptions;
  /** Interceptors run on every call, outermost first. */
  interceptors: grpc.Interceptor[];
  /** How long a connection attempt may take, in milliseconds; `Infinity` is no limit. */
  connectTimeoutMs: number;
  /** Whether calls that do not say otherwise wait for ready. */
  waitForReady: boolean;
}

/** What {@linkcode grpcJsSetup} starts from. */
export interface GrpcJsSetupInit extends CheckedClientOptions {
  /** The caller's options, for what only the grpc-js transport takes. */
  raw: ClientOptions;
}

/** The target schemes of grpc-js's own resolvers, and what must follow each. */
const TARGET_SCHEMES = /^(dns|ipv4|ipv6|unix|unix-abstract):(.+)$/;

function isHostPort(address: string): boolean {
  try {
    parseAddress(address);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether grpc-js can dial `target`: `host:port`, `[ipv6]:port`, or one of grpc-js's own
 * schemes (`dns:[//authority/]host:port`, `ipv4:` or `ipv6:` with a comma-separated list of
 * addresses and ports, `unix:path`, `unix-abstract:name`). grpc-js itself takes almost any
 * string and fails each call later; a typo is better caught here.
 */
function isGrpcJsTarget(target: unknown): boolean {
  if (typeof target !== "string" || /\s/.test(target)) return false;
  if (isHostPort(target)) return true;
  const match = TARGET_SCHEMES.exec(target);
  if (match === null) return false;
  const scheme = match[1] ?? "";
  const rest = match[2] ?? "";
  switch (scheme) {
    case "dns":
      return isHostPort(rest.replace(/^\/\/[^/]*\//, ""));
    case "ipv4":
    case "ipv6":
      return rest.split(",").every((entry) => {
        const host = entry.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
        return isHostPort(entry) &&
          net.isIP(host) === (scheme === "ipv4" ? 4 : 6);
      });
    default:
      return true;
  }
}

/**
 * Checks what only the grpc-js transport takes, and turns a client's options into a grpc-js
 * channel's: its credentials, and the shared options in grpc-js's own names beneath the
 * caller's channel options.
 *
 * @param target The grpc-js target.
 * @param options The caller's options, and the shared ones checked.
 * @returns How to set up the channel.
 * @throws {TypeError} If the target, the credentials, the interceptors or the channel options
 * are malformed, or an option needs the default transport.
 * @throws {Deno.errors.NotCapable} If the channel may read only some of grpc-js's proxy
 * variables, or asks for a proxy without the permission to read them.
 */
export function grpcJsSetup(
  target: string,
  options: GrpcJsSetupInit,
): GrpcJsChannelSetup {
  if (!isGrpcJsTarget(target)) {
    throw new TypeError(
      `Target must be "host:port", "[ipv6]:port", "dns:[//authority/]host:port", "ipv4:a:p[,b:p]", "ipv6:[a]:p[,[b]:p]", "unix:path" or "unix-abstract:name": ${target}`,
    );
  }
  const { channelOptions = {}, credentials, interceptors = [] } = options.raw;
  if (typeof channelOptions !== "object" || channelOptions === null) {
    throw new TypeError(
      `Channel options must be an object: ${
        channelOptions === null ? "null" : typeof channelOptions
      }`,
    );
  }
  if (
    credentials !== undefined &&
    !(credentials instanceof grpc.ChannelCredentials)
  ) {
    throw new TypeError("Credentials must be grpc-js ChannelCredentials");
  }
  if (credentials !== undefined && options.raw.tls !== undefined) {
    throw new TypeError("Set either tls or credentials, not both");
  }
  if (
    !Array.isArray(interceptors) ||
    interceptors.some((interceptor) => typeof interceptor !== "function")
  ) {
    throw new TypeError("Interceptors must be an array of functions");
  }
  const tls = toChannelTls(options.raw.tls);
  if (options.backoffMultiplier !== DEFAULT_BACKOFF_MULTIPLIER) {
    throw new TypeError(
      `Option backoffMultiplier needs transport "http2": grpc-js's is fixed at ${DEFAULT_BACKOFF_MULTIPLIER}`,
    );
  }
  const defaults: grpc.ChannelOptions = {
    "grpc.use_local_subchannel_pool": 1,
    "grpc.max_receive_message_length": options.maxReceiveMessageBytes,
    "grpc.initial_reconnect_backoff_ms": options.initialBackoffMs,
    "grpc.max_reconnect_backoff_ms": options.maxBackoffMs,
  };
  // The options both transports share, in grpc-js's own names.
  if (
    options.maxSendMessageBytes !== undefined &&
    options.maxSendMessageBytes !== Infinity
  ) {
    defaults["grpc.max_send_message_length"] = options.maxSendMessageBytes;
  }
  if (options.keepaliveMs !== undefined && options.keepaliveMs !== Infinity) {
    defaults["grpc.keepalive_time_ms"] = options.keepaliveMs;
    defaults["grpc.keepalive_timeout_ms"] = options.keepaliveTimeoutMs;
  }
  if (tls?.serverName !== undefined) {
    defaults["grpc.ssl_target_name_override"] = tls.serverName;
  }
  return {
    credentials: credentials ??
      (tls === undefined
        ? grpc.credentials.createInsecure()
        : grpc.credentials.createSsl(
          tls.ca === undefined ? null : pemBuffer(tls.ca, "TLS CA"),
          tls.key === undefined ? null : pemBuffer(tls.key, "TLS key"),
          tls.cert === undefined
            ? null
            : pemBuffer(tls.cert, "TLS certificate"),
        )),
    channelOptions: {
      ...defaults,
      ...proxyChannelOptions(channelOptions as grpc.ChannelOptions),
      ...channelOptions,
    } as grpc.ChannelOptions,
    interceptors: interceptors as grpc.Interceptor[],
    connectTimeoutMs: options.connectTimeoutMs,
    waitForReady: options.waitForReady,
  };
}
