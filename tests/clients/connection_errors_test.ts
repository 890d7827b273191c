/**
 * A call that cannot reach its server says why, on both transports and in the same words: a
 * server that speaks TLS, or no HTTP/2, is named as such from the first bytes it sends; a
 * refused connection is `Connection refused`, not Node's inner text.
 */
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import { match, rejects, strictEqual } from "node:assert";
import { createClient, GrpcError, startServer, Status } from "../../mod.ts";
import { testCertificates } from "../_util/certificates.ts";

const TRANSPORTS = ["http2", "grpc-js"] as const;

const SPEAKS_TLS =
  "Server speaks TLS: call it with the tls option (--tls or --ca on the command line)";

/** A Node server listening on a free port of 127.0.0.1, closed on disposal. */
async function listen(
  server: net.Server,
): Promise<{ port: number } & AsyncDisposable> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    async [Symbol.asyncDispose]() {
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Calls Sum once at `address` and checks it ends `UNAVAILABLE` with `details`. */
async function assertUnreachable(
  address: string,
  { details, ...options }: Parameters<typeof createClient>[1] & {
    details: string;
  },
): Promise<GrpcError> {
  using client = createClient(address, {
    connectTimeoutMs: 10_000,
    ...options,
  });
  let caught: GrpcError | undefined;
  await rejects(client.sum([1, 2]), (error) => {
    strictEqual(error instanceof GrpcError, true, String(error));
    caught = error as GrpcError;
    strictEqual(caught.code, Status.UNAVAILABLE);
    strictEqual(caught.message, `UNAVAILABLE: ${details}`);
    return true;
  });
  return caught!;
}

Deno.test("a plaintext call to a TLS server says the server speaks TLS", async (t) => {
  const certificates = await testCertificates();
  const key = { cert: certificates.serverCert, key: certificates.serverKey };
  for (const transport of TRANSPORTS) {
    await t.step(`startServer() with TLS, over ${transport}`, async () => {
      await using server = await startServer({ port: 0, tls: key });
      const address = server.addresses[0]!;
      await assertUnreachable(
        address,
        { transport, details: `Cannot reach ${address}: ${SPEAKS_TLS}` },
      );
    });

    await t.step(`a node:tls server, over ${transport}`, async () => {
      const tlsServer = tls.createServer(
        { ...key, ALPNProtocols: ["h2"] },
        (socket) => socket.end(),
      );
      // The plaintext preface is no TLS record: the server's side of it is expected.
      tlsServer.on("tlsClientError", () => {});
      await using server = await listen(tlsServer);
      const address = `127.0.0.1:${server.port}`;
      await assertUnreachable(
        address,
        { transport, details: `Cannot reach ${address}: ${SPEAKS_TLS}` },
      );
    });
  }
});

Deno.test("a call to an HTTP/1.1 server says the server does not speak HTTP/2", async (t) => {
  for (const transport of TRANSPORTS) {
    await t.step(`a node:http server, over ${transport}`, async () => {
      await using server = await listen(
        http.createServer((_request, response) => response.end("hello")),
      );
      const address = `127.0.0.1:${server.port}`;
      await assertUnreachable(
        address,
        {
          transport,
          details:
            `Cannot reach ${address}: Server does not speak HTTP/2: it answered in HTTP/1 (HTTP/1.1 400 Bad Request)`,
        },
      );
    });
  }
});

Deno.test("a TLS call to a plaintext server says the server does not speak TLS", async (t) => {
  const certificates = await testCertificates();
  await using server = await startServer({ port: 0 });
  const port = server.addresses[0]!.split(":").pop();
  // grpc-js on Deno cannot dial TLS to an IP address (it passes it as the server name).
  const address = `localhost:${port}`;
  for (const transport of TRANSPORTS) {
    await t.step(`over ${transport}`, async () => {
      await assertUnreachable(
        address,
        {
          transport,
          tls: { ca: certificates.ca },
          details:
            `Cannot reach ${address}: Server does not speak TLS: call it without the tls option (without --tls and --ca on the command line)`,
        },
      );
    });
  }
});

Deno.test("a refused connection reads the same on both transports", async (t) => {
  // A port that was just free and is closed again: nothing listens there.
  const port = await (async () => {
    await using server = await listen(net.createServer());
    return server.port;
  })();
  const address = `127.0.0.1:${port}`;
  for (const transport of TRANSPORTS) {
    await t.step(`over ${transport}`, async () => {
      const error = await assertUnreachable(
        address,
        { transport, details: `Cannot reach ${address}: Connection refused` },
      );
      // The cause keeps the transport's own words.
      match(String((error.cause as Error)?.message), /ECONNREFUSED/);
    });
  }
});
