/**
 * Opens the transport a client's options ask for. The options go one way: checked
 * (`client_options.ts`), then set up for one transport (`tls_options.ts` and `address.ts` for
 * the default one, `grpc_js_options.ts` for grpc-js), then handed to its channel.
 *
 * @module
 */
import { clientProbeOf } from "./_testing.ts";
import { parseAddress } from "./address.ts";
import { Channel } from "./channel.ts";
import { checkClientOptions, type ClientOptions } from "./client_options.ts";
import { GrpcJsChannel } from "./grpc_js_channel.ts";
import { grpcJsSetup } from "./grpc_js_options.ts";
import { toChannelTls } from "./tls_options.ts";
import type { Transport } from "./transport.ts";

/** The options only the grpc-js transport takes. */
const GRPC_JS_ONLY = ["channelOptions", "credentials", "interceptors"] as const;

/**
 * Opens a channel to `address` over the transport the options name.
 *
 * @param address The server's `host:port`, or over grpc-js any target it resolves.
 * @param options The client's options.
 * @returns The channel; no connection is made until the first call.
 * @throws {TypeError} If the address or an option is malformed.
 * @throws {RangeError} If a limit, a timeout or a backoff is out of range.
 */
export function openTransport(
  address: string,
  options: ClientOptions,
): Transport {
  const checked = checkClientOptions(options);
  if (checked.transport === "grpc-js") {
    return new GrpcJsChannel(
      address,
      grpcJsSetup(address, { ...checked, raw: options }),
    );
  }
  for (const key of GRPC_JS_ONLY) {
    if (options[key] !== undefined) {
      throw new TypeError(`Option ${key} needs transport "grpc-js"`);
    }
  }
  parseAddress(address);
  const { transport: _, ...settings } = checked;
  return new Channel(address, {
    ...settings,
    tls: toChannelTls(options.tls),
    ownHttp2: clientProbeOf(options)?.ownHttp2,
  });
}
