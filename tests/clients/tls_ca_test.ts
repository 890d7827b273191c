/**
 * A client's `tls.ca` must hold a certificate: a key given in its place is refused when the
 * client is created, on either transport, rather than failing at the handshake as "unable
 * to verify the first certificate".
 */
import { throws } from "node:assert";
import { createClient } from "../../mod.ts";
import { testCertificates } from "../_util/certificates.ts";

Deno.test("createClient() refuses a tls.ca with no certificate", async (t) => {
  const certificates = await testCertificates();
  for (const transport of ["http2", "grpc-js"] as const) {
    await t.step(`over ${transport}, as text and as bytes`, () => {
      for (
        const ca of [
          certificates.serverKey,
          new TextEncoder().encode(certificates.serverKey),
        ]
      ) {
        throws(
          () => createClient("localhost:1", { transport, tls: { ca } }),
          {
            name: "TypeError",
            message:
              "No certificate in tls.ca: it takes PEM with -----BEGIN CERTIFICATE-----",
          },
        );
      }
    });
  }

  await t.step("a CA certificate is taken", () => {
    using _client = createClient("localhost:1", {
      tls: { ca: certificates.ca },
    });
  });
});
