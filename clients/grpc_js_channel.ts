/**
 * The grpc-js transport: the helpers' calls over a `@grpc/grpc-js` client, for what only
 * grpc-js has (name resolution, load balancing and retries by service config, proxies, call
 * credentials, interceptors, channel options).
 *
 * Every call is a grpc-js bidirectional call whose messages are already encoded: the helpers
 * encode and decode with the codecs of `proto/definitions.ts`, as over the default transport,
 * so both transports give the same values, errors and statuses. The channel is set up from
 * a client's options in `grpc_js_options.ts`; each call runs in `grpc_js_call.ts`.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { Buffer } from "node:buffer";
import { toBuffer } from "../proto/bytes.ts";
import { MAX_TIMER_MS } from "../proto/limits.ts";
import { GrpcError, Status } from "./grpc_error.ts";
import type { CallSetup, Transport, TransportCall } from "./transport.ts";
import {
  CANCEL_RESET_OPTION,
  KEEP_MESSAGES_OPTION,
  keepMessagesBeforeStatus,
  resetCancelledCalls,
} from "../internals/grpc_js_subchannel_call.ts";
import {
  CONNECT_TIMEOUT_OPTION,
  GOAWAY_GUARD_OPTION,
  guardGrpcJsSessions,
  limitGrpcJsConnectTime,
} from "../internals/grpc_js_subchannel_connector.ts";
import { withRetryBufferLimit } from "./grpc_js_retry_buffer.ts";
import { resetWhenQuiet } from "./stream_reset.ts";
import { inCallContext, startClientCall } from "./telemetry.ts";
import { GrpcJsCall } from "./grpc_js_call.ts";
import { explainGrpcJsStatus, type GrpcJsTarget } from "./grpc_js_errors.ts";
import type { GrpcJsChannelSetup } from "./grpc_js_options.ts";

/** The caller's checked metadata (text, or base64 for `-bin` keys) as grpc-js metadata. */
function toMetadata(headers: Record<string, string | string[]>): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(headers)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      metadata.add(
        key,
        key.endsWith("-bin") ? Buffer.from(item, "base64") : item,
      );
    }
  }
  return metadata;
}

function identity(message: Buffer): Buffer {
  return message;
}

/**
 * A grpc-js client for the helpers' calls. The target is anything grpc-js resolves
 * (`host:port`, `dns:///host:port`, `ipv4:a:p,b:p`, `unix:path`, …).
 */
export class GrpcJsChannel implements Transport {
  #client: grpc.Client;
  #authority: string;
  #target: GrpcJsTarget;
  #interceptors: grpc.Interceptor[];
  #waitForReady: boolean;
  #closed = false;

  /**
   * @param target The grpc-js target.
   * @param options Credentials, channel options and interceptors, checked.
   * @throws {TypeError} If grpc-js cannot parse or resolve the target's scheme.
   */
  constructor(target: string, options: GrpcJsChannelSetup) {
    // The grpc-js workarounds of internals/: see each for what it fixes and when it can go.
    keepMessagesBeforeStatus();
    guardGrpcJsSessions();
    resetCancelledCalls(resetWhenQuiet);
    limitGrpcJsConnectTime();
    this.#interceptors = options.interceptors;
    this.#waitForReady = options.waitForReady;
    // What the telemetry names as the server: the target without a `dns:` scheme.
    this.#authority = target.replace(/^dns:(\/\/[^/]*\/)?/, "");
    this.#target = {
      authority: this.#authority,
      // `_isSecure` is part of grpc-js's typings: how its own channel tells TLS from plaintext.
      tls: options.credentials._isSecure(),
    };
    try {
      this.#client = new grpc.Client(target, options.credentials, {
        ...withRetryBufferLimit(options.channelOptions),
        [KEEP_MESSAGES_OPTION]: 1,
        [GOAWAY_GUARD_OPTION]: 1,
        [CANCEL_RESET_OPTION]: 1,
        ...(Number.isFinite(options.connectTimeoutMs)
          ? { [CONNECT_TIMEOUT_OPTION]: options.connectTimeoutMs }
          : {}),
      });
    } catch (cause) {
      // A missing permission is not the target's fault: it says which flag to add.
      if (cause instanceof Deno.errors.NotCapable) throw cause;
      throw new TypeError(
        `Target is not one grpc-js can dial: ${target}: ${
          cause instanceof Error ? cause.message : cause
        }`,
        { cause },
      );
    }
  }

  startCall(path: string, setup: CallSetup): TransportCall {
    const { headers = {}, deadline, listener } = setup;
    if (this.#closed) throw new TypeError("Client is closed");
    const waitForReady = setup.waitForReady ?? this.#waitForReady;
    const callOptions: grpc.CallOptions = {
      interceptors: this.#interceptors,
    };
    // A far deadline stays with this side's timer: a grpc-js server meets a timeout longer
    // than a timer can wait by expiring the call at once.
    if (deadline !== undefined && deadline - Date.now() <= MAX_TIMER_MS) {
      callOptions.deadline = deadline;
    }
    const requestHeaders: Record<string, string | string[]> = { ...headers };
    const telemetry = startClientCall(path, {
      authority: this.#authority,
      headers: requestHeaders,
    });
    const metadata = toMetadata(requestHeaders);
    // grpc-js takes wait-for-ready from the metadata's options.
    if (waitForReady) metadata.setOptions({ waitForReady });
    let stream: grpc.ClientDuplexStream<Uint8Array, Buffer>;
    try {
      stream = inCallContext(
        telemetry,
        () =>
          this.#client.makeBidiStreamRequest(
            path,
            toBuffer,
            identity,
            metadata,
            callOptions,
          ),
      );
    } catch (cause) {
      telemetry?.end(Status.UNAVAILABLE, String(cause));
      throw new GrpcError(
        Status.UNAVAILABLE,
        `Cannot start a call: ${
          cause instanceof Error ? cause.message : cause
        }`,
        { cause },
      );
    }
    const target = this.#target;
    return new GrpcJsCall(stream, {
      listener,
      deadline,
      telemetry,
      explain: (status) => explainGrpcJsStatus(status, target),
    });
  }

  close(): void {
    this.#closed = true;
    this.#client.close();
  }
}
