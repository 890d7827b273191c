/**
 * The options every call takes, checked and turned into request headers and a deadline.
 *
 * @module
 */
import { toBuffer } from "../proto/bytes.ts";
import type { ResponseMetadata } from "./grpc_error.ts";
import type { RequestHeaders } from "./transport.ts";

/**
 * Request metadata: each key with one value or several. Keys ending in `-bin` carry bytes,
 * every other key carries text.
 */
export type MetadataInit = Record<
  string,
  string | Uint8Array | readonly (string | Uint8Array)[]
>;

/** Options every call takes. */
export interface CallOptions {
  /**
   * Cancels the call when aborted; the call then rejects with the signal's reason.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * How long the call may take, in milliseconds, before it ends with `DEADLINE_EXCEEDED`.
   *
   * @default {undefined} (no limit)
   */
  timeout?: number;
  /**
   * When the call must be over, as a `Date` or epoch milliseconds. With `timeout` too, the
   * earlier of the two applies.
   *
   * @default {undefined} (no limit)
   */
  deadline?: Date | number;
  /**
   * Metadata sent with the request.
   *
   * @default {{}}
   */
  metadata?: MetadataInit;
  /**
   * Whether the call, made while the client is connecting or waiting to dial again after a
   * failed attempt, waits for the connection (within its deadline) instead of failing at
   * once with `UNAVAILABLE`: gRPC's wait-for-ready. A call that waits past its deadline ends
   * with `DEADLINE_EXCEEDED`. Overrides the client's `waitForReady`.
   *
   * @default {The client's waitForReady, false unless set}
   */
  waitForReady?: boolean;
  /**
   * Called once with the server's response headers (`content-type` and the server's own
   * metadata), when they arrive, before the first reply; as nice-grpc's `onHeader`. Not
   * called when the server answers with its status alone (a trailers-only response, as a
   * server sends for a call it fails before any reply) or never answers. A callback that
   * throws cancels the call, which then rejects with what it threw.
   *
   * @default {undefined}
   */
  onHeader?: (headers: ResponseMetadata) => void;
  /**
   * Called once when the call ends, successfully or not, with the server's trailers (the
   * same object a failure's `GrpcError.trailers` holds), before the call's result is
   * delivered; as nice-grpc's `onTrailer`. `grpc-status` and `grpc-message` are not in
   * them: they are the call's outcome. A call ended on this side or by a lost connection
   * (cancelled, past its deadline, unreachable) has none: `{}`. A callback that throws makes
   * the call reject with what it threw.
   *
   * @default {undefined}
   */
  onTrailer?: (trailers: ResponseMetadata) => void;
}

/** A call's options, checked and ready for the transport. */
export interface PreparedCall {
  /** The request metadata as HTTP/2 headers. */
  headers: RequestHeaders;
  /** When the call must end, in epoch milliseconds. */
  deadline: number | undefined;
  /** The abort signal, if any. */
  signal: AbortSignal | undefined;
  /** Whether the call waits for a connection; `undefined` leaves it to the client. */
  waitForReady: boolean | undefined;
  /** Hears the response headers, if the caller asked to. */
  onHeader: ((headers: ResponseMetadata) => void) | undefined;
  /** Hears the trailers, if the caller asked to. */
  onTrailer: ((trailers: ResponseMetadata) => void) | undefined;
}

const METADATA_KEY = /^[0-9a-z_.-]+$/;
// Set by the transport itself, or forbidden in HTTP/2 (connection-specific headers).
const RESERVED_KEYS = new Set([
  "content-type",
  "te",
  "user-agent",
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function toHeaders(init: MetadataInit | undefined): RequestHeaders {
  const headers: RequestHeaders = {};
  if (init === undefined) return headers;
  if (typeof init !== "object" || init === null) {
    throw new TypeError(
      `Metadata must be an object of keys and values: ${init}`,
    );
  }
  for (const [name, value] of Object.entries(init)) {
    const key = name.toLowerCase();
    if (
      !METADATA_KEY.test(key) || key.startsWith("grpc-") ||
      RESERVED_KEYS.has(key)
    ) {
      throw new TypeError(`Metadata key is not allowed: ${name}`);
    }
    const binary = key.endsWith("-bin");
    const values: readonly (string | Uint8Array)[] = Array.isArray(value)
      ? value
      : [value];
    headers[key] = values.map((item) => {
      if (binary) {
        if (!(item instanceof Uint8Array)) {
          throw new TypeError(
            `Metadata value of a -bin key must be a Uint8Array: ${name}`,
          );
        }
        // Unpadded, as gRPC's spec asks senders; receivers accept both.
        return toBuffer(item).toString("base64").replace(/=+$/, "");
      }
      if (typeof item !== "string" || !PRINTABLE_ASCII.test(item)) {
        throw new TypeError(
          `Metadata value must be printable ASCII text: ${name}`,
        );
      }
      return item;
    });
  }
  return headers;
}

/** When a call must end, in epoch milliseconds; `undefined` (or an infinite time) is never. */
function toDeadline(options: CallOptions): number | undefined {
  let deadline: number | undefined;
  if (options.timeout !== undefined) {
    if (typeof options.timeout !== "number" || !(options.timeout >= 0)) {
      throw new RangeError(
        `Timeout must be a number of milliseconds >= 0: ${options.timeout}`,
      );
    }
    deadline = Date.now() + options.timeout;
  }
  if (options.deadline !== undefined) {
    const at = options.deadline instanceof Date
      ? options.deadline.getTime()
      : options.deadline;
    if (typeof at !== "number" || Number.isNaN(at)) {
      throw new RangeError(
        `Deadline must be a Date or epoch milliseconds: ${options.deadline}`,
      );
    }
    deadline = deadline === undefined ? at : Math.min(deadline, at);
  }
  return deadline === undefined || !Number.isFinite(deadline)
    ? undefined
    : deadline;
}

/**
 * Checks a call's options and prepares them for the transport.
 *
 * @param options The caller's options.
 * @returns The request headers, the deadline, the signal and whether to wait for ready.
 * @throws {RangeError} If the timeout or deadline is not a valid time.
 * @throws {TypeError} If the metadata, the signal, `waitForReady`, `onHeader` or `onTrailer`
 * is malformed.
 */
export function prepareCall(options: CallOptions): PreparedCall {
  const { signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("Signal must be an AbortSignal");
  }
  const { waitForReady } = options;
  if (waitForReady !== undefined && typeof waitForReady !== "boolean") {
    throw new TypeError(
      `Wait for ready must be a boolean: ${typeof waitForReady}`,
    );
  }
  const { onHeader, onTrailer } = options;
  for (
    const [name, callback] of [["On header", onHeader], [
      "On trailer",
      onTrailer,
    ]]
  ) {
    if (callback !== undefined && typeof callback !== "function") {
      throw new TypeError(`${name} must be a function: ${typeof callback}`);
    }
  }
  return {
    headers: toHeaders(options.metadata),
    deadline: toDeadline(options),
    signal,
    waitForReady,
    onHeader,
    onTrailer,
  };
}
