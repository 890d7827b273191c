import { ok, strictEqual } from "node:assert";
import { createClient, startServer, type StreamClient } from "../../mod.ts";
import { probeServer, type ServerProbe } from "../../services/_testing.ts";
import { testCertificates } from "../_util/certificates.ts";
import { assertServes, numbersUpTo } from "../_util/test_utils.ts";
import { fastPathsSwitchedOff } from "../_util/fast_paths_switch.ts";

const H2_PEER = new URL("../fixtures/h2_peer.py", import.meta.url).pathname;

/**
 * Checks what the tap handed over: with GRPC_STREAM_FAST_PATHS=off the tap is off and
 * nothing (the requests reach the reader through nghttp2 and grpc-js), otherwise at least
 * `least` bytes.
 */
function assertTapped(tapped: number, least: number): void {
  if (fastPathsSwitchedOff()) strictEqual(tapped, 0);
  else ok(tapped >= least, `The tap handed over only ${tapped} bytes`);
}

/**
 * Sums 0 … count-1 through `client` and checks the sum, and that the tap handed over most of
 * the request: each number takes 5 + 1 + up to 3 bytes, and all but the first socket reads
 * are tapped.
 */
async function assertTappedSum(
  { client, probe }: { client: StreamClient; probe: ServerProbe },
  count: number,
): Promise<void> {
  probe.takeTappedBytes();
  strictEqual(
    await client.sum(numbersUpTo(count)),
    BigInt(count * (count - 1) / 2),
  );
  assertTapped(probe.takeTappedBytes(), count * 4 + 1);
}

Deno.test("startServer() reads request DATA frames from the socket's bytes before nghttp2", async (t) => {
  const options = { port: 0 };
  const probe = probeServer(options);
  // The tap reads what goes to nghttp2: the connections must stay on node:http2's sessions.
  probe.ownHttp2 = false;
  await using server = await startServer(options);

  await t.step("a long sum arrives whole and exact", async () => {
    using client = createClient(server.addresses[0]!);
    await assertTappedSum({ client, probe }, 200_000);
  });

  await t.step(
    "padded DATA frames, cut anywhere by the socket, lose their padding and nothing else",
    async () => {
      const count = 20_000;
      probe.takeTappedBytes();
      const output = await new Deno.Command("/usr/bin/python3", {
        args: [
          H2_PEER,
          server.hostname,
          String(server.port),
          "padded-sum",
          String(count),
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "inherit",
      }).output();
      strictEqual(
        new TextDecoder().decode(output.stdout).trim(),
        `answered 0 ${count * (count - 1) / 2}`,
      );
      assertTapped(probe.takeTappedBytes(), 1);
    },
  );

  await t.step("sqrt answers every number in order", async () => {
    using client = createClient(server.addresses[0]!);
    const count = 50_000;
    let position = 0;
    for await (const root of client.sqrt(numbersUpTo(count))) {
      strictEqual(root, Math.sqrt(position));
      position += 1;
    }
    strictEqual(position, count);
  });

  await t.step("the server still answers", () => assertServes(server));
});

Deno.test("startServer() over TLS reads request DATA frames from the decrypted bytes", async (t) => {
  const certificates = await testCertificates();
  const options = {
    port: 0,
    tls: { cert: certificates.serverCert, key: certificates.serverKey },
  };
  const probe = probeServer(options);
  await using server = await startServer(options);
  using client = createClient(server.addresses[0]!, {
    tls: { ca: certificates.ca, serverName: "localhost" },
  });

  await t.step("a long sum arrives whole and exact", async () => {
    await assertTappedSum({ client, probe }, 100_000);
  });
});
