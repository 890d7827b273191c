import { deepStrictEqual, match, ok, strictEqual, throws } from "node:assert";
import {
  createClient,
  DEFAULT_CONNECT_TIMEOUT_MS,
  GrpcError,
  pow,
  sqrt,
  sum,
} from "../../mod.ts";
import { CLI, RUN_PERMISSIONS, runDeno } from "../_util/subprocess.ts";

/**
 * A peer that accepts TCP connections and never writes a byte: a hung process, the wrong
 * port, a firewall that swallows data.
 */
function silentPeer(): { address: string } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const connection of listener) connections.push(connection);
    } catch {
      // Closed.
    }
  })();
  return {
    address: `127.0.0.1:${listener.addr.port}`,
    async [Symbol.asyncDispose](): Promise<void> {
      listener.close();
      await accepting;
      for (const connection of connections) {
        try {
          connection.close();
        } catch {
          // Already closed by the client.
        }
      }
    },
  };
}

/** How a call ends, or that it had not ended after `limitMs` (a client waiting forever). */
async function outcome(
  call: Promise<unknown>,
  limitMs: number,
): Promise<GrpcError> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([
    call.then(
      (value) => `answered ${String(value)}`,
      (error: unknown) => error,
    ),
    new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve(`still waiting after ${limitMs} ms`),
        limitMs,
      );
    }),
  ]);
  clearTimeout(timer);
  if (!(result instanceof GrpcError)) throw new Error(String(result));
  return result;
}

const HANDSHAKE_TIMEOUT =
  /^Cannot reach 127\.0\.0\.1:\d+: Server did not complete the HTTP\/2 handshake within 300 ms \(connect timeout; TCP connected, no SETTINGS frame from the server\)/;
const GRPC_JS_HANDSHAKE_TIMEOUT =
  /Server did not complete the HTTP\/2 handshake within 300 ms \(connect timeout; TCP connected, no SETTINGS frame from the server\)/;

Deno.test("createClient() gives up on a peer that accepts TCP and never answers", async (t) => {
  for (
    const [transport, details] of [
      ["http2", HANDSHAKE_TIMEOUT],
      ["grpc-js", GRPC_JS_HANDSHAKE_TIMEOUT],
    ] as const
  ) {
    await t.step(
      `over ${transport}: sum, pow and sqrt end UNAVAILABLE`,
      async () => {
        await using peer = silentPeer();
        using client = createClient(peer.address, {
          transport,
          connectTimeoutMs: 300,
        });
        const started = Date.now();
        const calls = [
          client.sum([1]),
          Array.fromAsync(client.pow(2)),
          Array.fromAsync(client.sqrt([4])),
        ];
        for (const call of calls) {
          const error = await outcome(call, 10_000);
          strictEqual(error.codeName, "UNAVAILABLE", String(error));
          match(error.details, details);
        }
        ok(
          Date.now() - started >= 290,
          `Gave up after ${Date.now() - started} ms`,
        );
      },
    );
  }

  for (const transport of ["http2", "grpc-js"] as const) {
    await t.step(
      `over ${transport} with TLS: the TLS handshake is inside it`,
      async () => {
        await using peer = silentPeer();
        // grpc-js sends the target's host as the TLS server name, which Deno's node:tls
        // refuses for an IP address: a name is given instead.
        using client = createClient(peer.address, {
          transport,
          tls: { serverName: "localhost" },
          connectTimeoutMs: 300,
        });
        const error = await outcome(client.sum([1]), 10_000);
        strictEqual(error.codeName, "UNAVAILABLE", String(error));
        match(
          error.details,
          /Server did not complete the TLS handshake within 300 ms \(connect timeout; TCP connected\)/,
        );
      },
    );
  }

  await t.step(
    "a deadline shorter than the connect timeout still applies",
    async () => {
      await using peer = silentPeer();
      using client = createClient(peer.address, { connectTimeoutMs: 10_000 });
      const error = await outcome(client.sum([1], { timeout: 200 }), 5_000);
      strictEqual(error.codeName, "DEADLINE_EXCEEDED", String(error));
    },
  );

  await t.step("the one-call sum, pow and sqrt take it too", async () => {
    await using peer = silentPeer();
    const options = { address: peer.address, connectTimeoutMs: 300 };
    for (
      const call of [
        sum([1], options),
        Array.fromAsync(pow(2, options)),
        Array.fromAsync(sqrt([4], options)),
      ]
    ) {
      const error = await outcome(call, 10_000);
      strictEqual(error.codeName, "UNAVAILABLE", String(error));
      match(error.details, HANDSHAKE_TIMEOUT);
    }
  });

  await t.step("the default is gRPC's 20 s, and bad values are refused", () => {
    strictEqual(DEFAULT_CONNECT_TIMEOUT_MS, 20_000);
    for (const connectTimeoutMs of [0, -1, 1.5, Number.NaN, 2 ** 31]) {
      throws(
        () => createClient("127.0.0.1:1", { connectTimeoutMs }),
        RangeError,
      );
    }
  });
});

Deno.test("cli pow, sum and sqrt give up on a silent peer: exit 1, UNAVAILABLE", async (t) => {
  await using peer = silentPeer();
  for (
    const args of [
      ["pow", "2", "--connect-timeout", "300ms"],
      ["sum", "1", "2", "--connect-timeout", "0.3s"],
      ["sqrt", "4", "--connect-timeout", "300"],
    ]
  ) {
    await t.step(args.join(" "), async () => {
      const result = await runDeno([
        "run",
        ...RUN_PERMISSIONS,
        CLI,
        ...args,
        "--address",
        peer.address,
      ]);
      strictEqual(result.code, 1, result.stderr.join("\n"));
      deepStrictEqual(result.stdout, []);
      match(result.stderr[0] ?? "", /^error: UNAVAILABLE: Cannot reach /);
      match(
        result.stderr[0] ?? "",
        /did not complete the HTTP\/2 handshake within 300 ms/,
      );
    });
  }

  await t.step("--timeout ends the call with DEADLINE_EXCEEDED", async () => {
    const result = await runDeno([
      "run",
      ...RUN_PERMISSIONS,
      CLI,
      "pow",
      "2",
      "--timeout",
      "0.2s",
      "--address",
      peer.address,
    ]);
    strictEqual(result.code, 1, result.stderr.join("\n"));
    match(result.stderr[0] ?? "", /^error: DEADLINE_EXCEEDED: /);
  });

  await t.step("bad durations are usage errors", async () => {
    for (
      const [option, value] of [
        ["--timeout", "soon"],
        ["--timeout", "0"],
        ["--connect-timeout", "-1s"],
        ["--connect-timeout", "5h"],
      ]
    ) {
      const result = await runDeno([
        "run",
        ...RUN_PERMISSIONS,
        CLI,
        "sum",
        "1",
        option!,
        value!,
        "--address",
        peer.address,
      ]);
      strictEqual(result.code, 2, result.stderr.join("\n"));
      match(result.stderr[0] ?? "", /timeout must be a duration/i);
      match(result.stderr[1] ?? "", /^Usage: grpc-stream sum/);
    }
  });
});
