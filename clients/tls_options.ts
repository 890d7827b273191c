/**
 * A client's TLS options, checked and turned into the settings a channel of either transport
 * connects with, and the TLS connection the default transport opens with them.
 *
 * @module
 */
import { checkPem } from "../proto/pem.ts";
import net from "node:net";
import tls from "node:tls";
import type { ChannelTls } from "./channel_options.ts";

/** The line that starts a certificate in PEM. */
const CERTIFICATE_BLOCK = /^-----BEGIN CERTIFICATE-----\r?$/m;

/** PEM text, from text or its bytes. */
function pemText(pem: string | Uint8Array): string {
  return typeof pem === "string" ? pem : new TextDecoder().decode(pem);
}

/** How a client checks the server's certificate, and the client's own for mutual TLS. */
export interface ClientTlsOptions {
  /**
   * CA certificates in PEM to trust for the server's certificate, instead of Deno's default
   * root store (which `--cert` and `DENO_TLS_CA_STORE` also adjust).
   *
   * @default {undefined}
   */
  ca?: string | Uint8Array;
  /**
   * The client's certificate chain in PEM, for a server that requires client certificates
   * (mutual TLS). Needs `key`.
   *
   * @default {undefined}
   */
  cert?: string | Uint8Array;
  /**
   * The private key of `cert`, in PEM.
   *
   * @default {undefined}
   */
  key?: string | Uint8Array;
  /**
   * The name the server's certificate must be valid for, when it differs from the host of
   * the address (for example when calling by IP address a server whose certificate names
   * only its host name).
   *
   * @default {The host of the address}
   */
  serverName?: string;
}

/**
 * Checks a client's `tls` option and turns it into what a channel connects with.
 *
 * @param tls The option as the caller gave it.
 * @returns The settings, or `undefined` for plaintext.
 * @throws {TypeError} If the option or a PEM in it is malformed, `ca` holds no certificate,
 * or `cert` and `key` do not come together.
 */
export function toChannelTls(
  tls: boolean | ClientTlsOptions | undefined,
): ChannelTls | undefined {
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return {};
  if (typeof tls !== "object" || tls === null) {
    throw new TypeError(
      `TLS options must be a boolean or an object: ${
        tls === null ? "null" : typeof tls
      }`,
    );
  }
  checkPem(tls.ca, "TLS CA");
  if (tls.ca !== undefined && !CERTIFICATE_BLOCK.test(pemText(tls.ca))) {
    // A key given as the CA would otherwise fail only at the handshake, as "unable to verify
    // the first certificate".
    throw new TypeError(
      "No certificate in tls.ca: it takes PEM with -----BEGIN CERTIFICATE-----",
    );
  }
  checkPem(tls.cert, "TLS certificate");
  checkPem(tls.key, "TLS key");
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError(
      "TLS client certificate and key go together: set both cert and key",
    );
  }
  if (
    tls.serverName !== undefined &&
    (typeof tls.serverName !== "string" || tls.serverName === "")
  ) {
    throw new TypeError(
      `TLS server name must be a non-empty string: ${tls.serverName}`,
    );
  }
  return {
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    serverName: tls.serverName,
  };
}

/**
 * Opens a TLS connection that offers only HTTP/2 (ALPN `h2`), as gRPC requires. A handshake
 * that fails (an untrusted or mismatched certificate, a refused client certificate) ends
 * the calls on it with `UNAVAILABLE`.
 *
 * @param address The server's host and port.
 * @param settings The channel's TLS settings.
 * @returns The connecting socket.
 */
export function connectTls(
  { host, port }: { host: string; port: number },
  settings: ChannelTls,
): tls.TLSSocket {
  const serverName = settings.serverName ?? host;
  return tls.connect({
    host,
    port,
    ALPNProtocols: ["h2"],
    // SNI carries host names only; an IP address is checked against the certificate's
    // IP addresses without it (Deno refuses an IP address as `servername`).
    ...(net.isIP(serverName) === 0 ? { servername: serverName } : {}),
    ...(settings.serverName === undefined ? {} : {
      checkServerIdentity: (_: string, certificate: tls.PeerCertificate) =>
        tls.checkServerIdentity(serverName, certificate),
    }),
    ...(settings.ca === undefined ? {} : { ca: settings.ca }),
    ...(settings.cert === undefined ? {} : { cert: settings.cert }),
    ...(settings.key === undefined ? {} : { key: settings.key }),
  } as tls.ConnectionOptions);
}
