/**
 * The names OpenTelemetry's semantic conventions for RPC give to what the client and the
 * server record (the experimental ones of v1.37 and before, which backends read today:
 * `rpc.server.duration` in ms, not v1.38's `rpc.server.call.duration` in s), and the facts
 * both sides derive from a call: its method's names, its peer's host and port, whether its
 * status is an error on this side's span. `call_recorder.ts` records them.
 *
 * @module
 */
import type { Attributes } from "../internals/npm/opentelemetry_api.ts";
import { Status } from "../proto/status.ts";

/** The instrumentation scope of every span and metric: the package's name. */
export const INSTRUMENTATION_SCOPE = "@streamrpc/grpc-stream";

/** Attribute names, from the semantic conventions unless they start with `grpc_stream.`. */
export const ATTRIBUTES = {
  rpcSystem: "rpc.system",
  rpcService: "rpc.service",
  rpcMethod: "rpc.method",
  statusCode: "rpc.grpc.status_code",
  serverAddress: "server.address",
  serverPort: "server.port",
  peerAddress: "network.peer.address",
  peerPort: "network.peer.port",
  messageType: "rpc.message.type",
  messageId: "rpc.message.id",
  /** Messages this side sent on the call: the conventions have no span attribute for it. */
  messagesSent: "grpc_stream.messages.sent",
  /** Messages this side received on the call. */
  messagesReceived: "grpc_stream.messages.received",
} as const;

/**
 * The attributes whose values are integers: `int` in the RPC conventions (the status code, the
 * ports, the message id), and the message counts.
 */
const INTEGER_ATTRIBUTES: ReadonlySet<string> = new Set([
  ATTRIBUTES.statusCode,
  ATTRIBUTES.serverPort,
  ATTRIBUTES.peerPort,
  ATTRIBUTES.messageId,
  ATTRIBUTES.messagesSent,
  ATTRIBUTES.messagesReceived,
]);

/**
 * `attributes` with their integers as an exporter takes them. Deno's exports every
 * JavaScript number as an OTLP `doubleValue`, whole or not, and a bigint as an `intValue`
 * (`attr_raw!` in ext/telemetry/lib.rs, for span, event and metric attributes alike): for
 * Deno's providers the integers go as bigints. Any other provider gets numbers: the
 * OpenTelemetry JS SDK takes no bigint as an attribute value, and its OTLP exporter sends a
 * whole number as an `intValue` by itself.
 *
 * @param attributes The attributes.
 * @param bigints Whether the exporter is Deno's.
 * @returns `attributes`, or a copy with its integers as bigints.
 */
export function withIntegers(
  attributes: Attributes,
  bigints: boolean,
): Attributes {
  if (!bigints) return attributes;
  const converted: Record<string, unknown> = { ...attributes };
  for (const [key, value] of Object.entries(attributes)) {
    if (
      INTEGER_ATTRIBUTES.has(key) && typeof value === "number" &&
      Number.isSafeInteger(value)
    ) {
      converted[key] = BigInt(value);
    }
  }
  // A bigint is not an `AttributeValue` to the API's types, only to Deno's exporter.
  return converted as Attributes;
}

/** Metric names: the conventions' histograms, and a gauge of calls in flight of our own. */
export const METRICS = {
  client: {
    duration: "rpc.client.duration",
    requests: "rpc.client.requests_per_rpc",
    responses: "rpc.client.responses_per_rpc",
    active: "rpc.client.active_calls",
  },
  server: {
    duration: "rpc.server.duration",
    requests: "rpc.server.requests_per_rpc",
    responses: "rpc.server.responses_per_rpc",
    active: "rpc.server.active_calls",
  },
} as const;

/**
 * The codes for which a server span is an error, as the semantic conventions ask: a fault on
 * the server's side. Codes that blame the request (`INVALID_ARGUMENT`, `OUT_OF_RANGE`,
 * `CANCELLED`, …) leave a server span's status unset; every non-OK code is an error on the
 * client's span.
 */
const SERVER_ERROR_CODES: ReadonlySet<number> = new Set([
  Status.UNKNOWN,
  Status.DEADLINE_EXCEEDED,
  Status.UNIMPLEMENTED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
]);

/** Which side of a call a recorder describes. */
export type CallSide = "client" | "server";

/**
 * Whether a call that ended with `code` is an error on this side's span.
 *
 * @param side The client or the server.
 * @param code The gRPC status code.
 * @returns `true` for every non-OK code on the client, and for server faults on the server.
 */
export function isErrorStatus(side: CallSide, code: number): boolean {
  if (code === Status.OK) return false;
  return side === "client" || SERVER_ERROR_CODES.has(code);
}

/** A gRPC method as the conventions name it. */
export interface RpcMethod {
  /** The full service name, e.g. `stream.ServerStream`. */
  service: string;
  /** The method name, e.g. `Pow`. */
  method: string;
  /** The span name, `service/method`. */
  name: string;
}

/**
 * Splits a method path into its service and method.
 *
 * @param path A gRPC path, `/package.Service/Method`.
 * @returns The names; a path of another shape is all service, with an empty method.
 */
export function parseMethodPath(path: string): RpcMethod {
  const trimmed = path.startsWith("/") ? path.slice(1) : path;
  const slash = trimmed.lastIndexOf("/");
  return slash < 0 ? { service: trimmed, method: "", name: trimmed } : {
    service: trimmed.slice(0, slash),
    method: trimmed.slice(slash + 1),
    name: trimmed,
  };
}

/**
 * Splits `host:port` or `[ipv6]:port` for `server.address` and `server.port`.
 *
 * @param authority The address, as dialled or as the `:authority` header gave it.
 * @returns The host (without brackets) and the port, or no port if there is none.
 */
export function splitHostPort(
  authority: string,
): { host: string; port: number | undefined } {
  const match = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(authority);
  if (match === null) {
    return {
      host: authority.startsWith("[") && authority.endsWith("]")
        ? authority.slice(1, -1)
        : authority,
      port: undefined,
    };
  }
  return { host: match[1] ?? match[2] ?? "", port: Number(match[3]) };
}
