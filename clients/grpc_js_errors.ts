/**
 * The grpc-js transport's connection failures in the default transport's words: grpc-js says
 * `No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:8082 (DATE).
 * Resolution note: ` where the default transport says `Cannot reach 127.0.0.1:8082:
 * Connection refused`. The call's `cause` keeps grpc-js's own error.
 *
 * @module
 */
import { type Address, parseAddress } from "./address.ts";
import {
  describeConnectionError,
  describeServerBytes,
  missingNetPermission,
} from "./connection_errors.ts";
import { Status } from "./grpc_error.ts";
import { probeServer } from "./protocol_probe.ts";
import type { CallStatus } from "./transport.ts";

/** grpc-js's details for a call that found no connection, with the last connection error. */
const NO_CONNECTION =
  /^No connection established\. Last error: (?:\w*Error: )?(.*?)(?: \(\d{4}-\d\d-\d\dT[\d:.]+Z\))?\. Resolution note: ?/s;

/** The Node error codes of a connection that never was, as grpc-js's text carries them. */
const NEVER_CONNECTED =
  /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)\b/;

/** Where a grpc-js channel dials, for {@linkcode explainGrpcJsStatus}. */
export interface GrpcJsTarget {
  /** The target without a `dns:` scheme: `host:port` for the targets this can explain. */
  authority: string;
  /** Whether the channel speaks TLS. */
  tls: boolean;
}

/**
 * Words a grpc-js call's `UNAVAILABLE` as the default transport would: a server outside
 * `--allow-net` as the `Deno.errors.NotCapable` naming the flag; a refused connection as
 * `Cannot reach HOST:PORT: Connection refused`; and a plaintext connection the server closed
 * or answered in another protocol by what a short probe (see `protocol_probe.ts`) shows it
 * speaks ("Server speaks TLS", "Server does not speak HTTP/2").
 *
 * @param status The status grpc-js gave the call.
 * @param target Where the channel dials.
 * @returns The status in these words, at once or after the probe.
 */
export function explainGrpcJsStatus(
  status: CallStatus,
  target: GrpcJsTarget,
): CallStatus | Promise<CallStatus> {
  if (status.code !== Status.UNAVAILABLE) return status;
  const { authority } = target;
  let address: Address;
  try {
    address = parseAddress(authority);
  } catch {
    return status;
  }
  const denied = missingNetPermission(authority, status.cause);
  if (denied !== undefined) {
    return {
      ...status,
      details: `Cannot reach ${authority}: ${denied.message}`,
      cause: denied,
    };
  }
  const lastError = NO_CONNECTION.exec(status.details)?.[1];
  if (lastError === undefined) return status;
  const code = NEVER_CONNECTED.exec(lastError)?.[1];
  const words = describeConnectionError(
    Object.assign(new Error(lastError), code === undefined ? {} : { code }),
  );
  const plain = { ...status, details: `Cannot reach ${authority}: ${words}` };
  // A server that took the connection and then dropped it, or spoke something else.
  if (code !== undefined || target.tls) return plain;
  return probeServer(address).then(describeServerBytes).then((answer) =>
    answer === undefined
      ? plain
      : { ...status, details: `Cannot reach ${authority}: ${answer}` }
  );
}
