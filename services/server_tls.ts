/**
 * A server's TLS settings and the grpc-js credentials they make.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { Buffer } from "node:buffer";
import { pemBuffer } from "../proto/pem.ts";

/** TLS settings of a server: its certificate, and optionally the CA of client certificates. */
export interface ServerTlsOptions {
  /**
   * The server's certificate chain in PEM: its own certificate first, then any intermediate
   * certificates. Clients check it against the name or IP address they connect to.
   */
  cert: string | Uint8Array;
  /** The private key of `cert`, in PEM. */
  key: string | Uint8Array;
  /**
   * CA certificates in PEM that client certificates must chain to. With it, every client
   * must present such a certificate (mutual TLS), unless `requireClientCert` is `false`.
   *
   * @default {undefined}
   */
  ca?: string | Uint8Array;
  /**
   * Whether a client must present a certificate signed by `ca`; a client without one cannot
   * connect. `true` needs `ca`; `false` serves plain TLS even when `ca` is set.
   *
   * @default {true when `ca` is set, otherwise false}
   */
  requireClientCert?: boolean;
}

/**
 * The grpc-js credentials for `tls`.
 *
 * grpc-js wants `Buffer`s. When it is given no client CA, it falls back to the CA bundle named
 * by `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` and hands it to `node:tls` as `ca`; Deno's `node:tls`
 * then sends every one of those certificates to each client along with the server's own
 * chain, and OpenSSL-based clients (grpc-js under Node, gRPC C-core, `openssl s_client`) refuse
 * a Certificate message that large (`excessive message size`). Without a client CA, an empty
 * `ca` keeps the chain to what `cert` holds.
 *
 * @param tls The server's TLS options, or `undefined` for plaintext HTTP/2.
 * @returns The credentials to bind with.
 * @throws {TypeError} If the options are malformed, or require client certificates without
 * a CA.
 */
export function serverCredentials(
  tls: ServerTlsOptions | undefined,
): grpc.ServerCredentials {
  if (tls === undefined) return grpc.ServerCredentials.createInsecure();
  if (typeof tls !== "object" || tls === null) {
    throw new TypeError("TLS options must be an object");
  }
  const cert = pemBuffer(tls.cert, "TLS certificate");
  const key = pemBuffer(tls.key, "TLS key");
  const requireClientCert = tls.requireClientCert ?? tls.ca !== undefined;
  if (requireClientCert && tls.ca === undefined) {
    throw new TypeError(
      "Requiring client certificates needs the CA that signs them: tls.ca",
    );
  }
  const clientCa = requireClientCert
    ? pemBuffer(tls.ca, "TLS client CA")
    : Buffer.alloc(0);
  return grpc.ServerCredentials.createSsl(
    clientCa,
    [{ cert_chain: cert, private_key: key }],
    requireClientCert,
  );
}
