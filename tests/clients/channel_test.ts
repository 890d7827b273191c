import {
  deepStrictEqual,
  doesNotMatch,
  match,
  ok,
  rejects,
  strictEqual,
  throws,
} from "node:assert";
import { Buffer } from "node:buffer";
import type http2 from "node:http2";
import { startHttp2Server, type StreamHandler } from "../_util/http2_server.ts";
import denoConfig from "../../deno.json" with { type: "json" };
import { createClient, GrpcError, startServer, Status } from "../../mod.ts";
import { encodeSumReply } from "../../proto/codec.ts";
import {
  RUN_PERMISSIONS,
  startServerProcess,
  unusedPort,
} from "../_util/subprocess.ts";
import { delay, failure, forever } from "../_util/test_utils.ts";

const RAW_SERVER = new URL("../fixtures/raw_http2_server.ts", import.meta.url)
  .pathname;

function isStatus(code: number): (error: unknown) => boolean {
  return (error) => {
    if (!(error instanceof GrpcError)) throw error;
    strictEqual(error.code, code, String(error));
    return true;
  };
}

Deno.test("createClient() keeps its connection when a server goes on sending after a cancel", async (t) => {
  await t.step("after a deadline", async () => {
    await using server = await startServerProcess([
      "run",
      ...RUN_PERMISSIONS,
      RAW_SERVER,
    ]);
    using client = createClient(server.addresses[0]!);
    await rejects(
      Array.fromAsync(client.pow(1, { count: 1_000_000, timeout: 100 })),
      isStatus(Status.DEADLINE_EXCEEDED),
    );
    deepStrictEqual(await Array.fromAsync(client.pow(2, { count: 3 })), [
      1n,
      2n,
      4n,
    ]);
    deepStrictEqual(
      server.process.stdout.filter((line) => line === "connection"),
      ["connection"],
    );
  });

  await t.step("after leaving for await early", async () => {
    await using server = await startServerProcess([
      "run",
      ...RUN_PERMISSIONS,
      RAW_SERVER,
    ]);
    using client = createClient(server.addresses[0]!);
    let seen = 0;
    for await (const _ of client.pow(1, { count: 1_000_000 })) {
      if (++seen === 1_000) break;
    }
    deepStrictEqual(await Array.fromAsync(client.pow(2, { count: 3 })), [
      1n,
      2n,
      4n,
    ]);
    await server.process.waitForLine("stdout", /^reset$/);
    deepStrictEqual(
      server.process.stdout.filter((line) => line === "connection"),
      ["connection"],
    );
    ok(true);
  });
});

/** A gRPC message with its 5-byte prefix. */
function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** Answers every call with `replies`, then the trailers (which hold the status). */
function answer(
  replies: Uint8Array[],
  trailers: http2.OutgoingHttpHeaders,
  seen?: http2.IncomingHttpHeaders[],
): StreamHandler {
  return (stream, headers) => {
    seen?.push(headers);
    stream.resume();
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
      waitForTrailers: true,
    });
    stream.on("wantTrailers", () => stream.sendTrailers(trailers));
    for (const reply of replies) stream.write(grpcFrame(reply));
    stream.end();
  };
}

Deno.test("createClient() reports a response that is not gRPC by its HTTP status", async (t) => {
  await t.step("a 503 with an HTML page is UNAVAILABLE", async () => {
    await using server = await startHttp2Server((stream) => {
      stream.respond({ ":status": 503, "content-type": "text/html" });
      stream.end("<html><body>Service Unavailable</body></html>");
    });
    using client = createClient(server.address);
    const error = await failure(Array.fromAsync(client.pow(2)));
    strictEqual(error.codeName, "UNAVAILABLE", String(error));
    match(error.details, /HTTP status 503 \(text\/html\)/);
  });

  await t.step("a 404 is UNIMPLEMENTED", async () => {
    await using server = await startHttp2Server((stream) => {
      stream.respond({ ":status": 404, "content-type": "text/plain" });
      stream.end("Not Found");
    });
    using client = createClient(server.address);
    strictEqual((await failure(client.sum([1]))).codeName, "UNIMPLEMENTED");
  });

  await t.step("a 200 with text/plain is UNKNOWN", async () => {
    await using server = await startHttp2Server((stream) => {
      stream.respond({ ":status": 200, "content-type": "text/plain" });
      stream.end("\u0001 not a gRPC body");
    });
    using client = createClient(server.address);
    const error = await failure(Array.fromAsync(client.sqrt([4])));
    strictEqual(error.codeName, "UNKNOWN");
    match(error.details, /content type text\/plain/);
  });
});

Deno.test("createClient() reads metadata as grpc-js does", async (t) => {
  const seen: http2.IncomingHttpHeaders[] = [];
  await using server = await startHttp2Server(answer([], {
    "grpc-status": "9",
    "grpc-message": "As asked",
    "x-note": "hello, world",
    // Two values of a binary key, one padded and one not.
    "x-data-bin": "AQID,AQIDBA",
    "grpc-status-details-bin": "CAk",
  }, seen));
  using client = createClient(server.address);
  const error = await failure(
    client.sum([1], {
      metadata: { "x-trace-bin": new Uint8Array([1, 2, 3, 4]) },
    }),
  );

  await t.step("text values keep their commas", () => {
    deepStrictEqual(error.trailers["x-note"], ["hello, world"]);
  });

  await t.step("binary values are split and decoded, padded or not", () => {
    deepStrictEqual(error.trailers["x-data-bin"], [
      new Uint8Array([1, 2, 3]),
      new Uint8Array([1, 2, 3, 4]),
    ]);
    deepStrictEqual(error.trailers["grpc-status-details-bin"], [
      new Uint8Array([8, 9]),
    ]);
  });

  await t.step("the status is not repeated in the trailers", () => {
    strictEqual(error.codeName, "FAILED_PRECONDITION");
    strictEqual(error.details, "As asked");
    strictEqual("grpc-status" in error.trailers, false);
    strictEqual("grpc-message" in error.trailers, false);
  });

  await t.step("binary values are sent without padding", () => {
    strictEqual(seen[0]?.["x-trace-bin"], "AQIDBA");
  });

  await t.step("the user-agent names this module's version", () => {
    strictEqual(
      seen[0]?.["user-agent"],
      `grpc-stream-deno/${denoConfig.version}`,
    );
  });
});

Deno.test("createClient() accepts only a well-formed grpc-status", async (t) => {
  const cases: [string, http2.OutgoingHttpHeaders, string, RegExp][] = [
    ["an empty status", { "grpc-status": "" }, "UNKNOWN", /invalid/],
    ["a status in exponent form", { "grpc-status": "1e1" }, "UNKNOWN", /1e1/],
    ["a status with a sign", { "grpc-status": "+5" }, "UNKNOWN", /\+5/],
    [
      "a code above 16 keeps its details",
      { "grpc-status": "17", "grpc-message": "Custom failure" },
      "UNKNOWN",
      /^Custom failure$/,
    ],
  ];
  for (const [name, trailers, codeName, details] of cases) {
    await t.step(name, async () => {
      await using server = await startHttp2Server(
        answer([encodeSumReply({ sum: 1n })], trailers),
      );
      using client = createClient(server.address);
      const error = await failure(client.sum([1]));
      strictEqual(error.codeName, codeName, String(error));
      match(error.details, details);
    });
  }
});

Deno.test("sum() refuses a second reply, as grpc-js does", async () => {
  await using server = await startHttp2Server(answer(
    [encodeSumReply({ sum: 1n }), encodeSumReply({ sum: 2n })],
    { "grpc-status": "0" },
  ));
  using client = createClient(server.address);
  const error = await failure(client.sum([1]));
  strictEqual(error.codeName, "UNIMPLEMENTED");
  strictEqual(error.details, "Too many responses received");
});

Deno.test("createClient() limits the messages it sends with maxSendMessageBytes", async (t) => {
  await using server = await startServer({ port: 0 });

  await t.step(
    "a larger message ends the call with RESOURCE_EXHAUSTED",
    async () => {
      using client = createClient(server.addresses[0]!, {
        maxSendMessageBytes: 2,
      });
      // 1 encodes in 2 bytes (tag and value), 1000 in 3.
      strictEqual(await client.sum([1, 1]), 2n);
      const error = await failure(client.sum([1, 1000, 1]));
      strictEqual(error.codeName, "RESOURCE_EXHAUSTED");
      match(error.details, /^Sent message larger than max \(3 vs\. 2\)$/);
    },
  );

  await t.step("a limit that is not a size is a RangeError", () => {
    throws(
      () => createClient(server.addresses[0]!, { maxSendMessageBytes: -1 }),
      RangeError,
    );
    throws(
      () => createClient(server.addresses[0]!, { keepaliveMs: 0 }),
      RangeError,
    );
  });
});

/**
 * A TCP proxy to `target` that can stop forwarding, as a half-open connection does, or cut
 * every connection at once.
 */
function startProxy(target: string): {
  address: string;
  freeze(): void;
  cut(): void;
} & AsyncDisposable {
  const [hostname, port] = target.split(":");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const pipes: Promise<void>[] = [];
  let frozen = false;
  async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const read = await from.read(buffer);
        if (read === null) break;
        // A frozen proxy swallows everything and answers nothing, but keeps both ends open.
        if (!frozen) await to.write(buffer.subarray(0, read));
      }
    } catch {
      // One side went away.
    }
  }
  const accepting = (async () => {
    try {
      for await (const client of listener) {
        const upstream = await Deno.connect({
          hostname: hostname!,
          port: Number(port),
        });
        conns.add(client).add(upstream);
        pipes.push(pipe(client, upstream), pipe(upstream, client));
      }
    } catch {
      // The listener was closed.
    }
  })();
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    freeze(): void {
      frozen = true;
    },
    cut(): void {
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    },
    async [Symbol.asyncDispose](): Promise<void> {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await accepting;
      await Promise.all(pipes);
    },
  };
}

/** Numbers for `sqrt` that stop coming after the first, so the call stays open. */
async function* oneThenNothing(): AsyncGenerator<number> {
  yield 4;
  await forever();
}

Deno.test("createClient() with keepaliveMs ends calls on a connection that stopped answering", async () => {
  await using server = await startServer({ port: 0 });
  await using proxy = startProxy(server.addresses[0]!);
  using client = createClient(proxy.address, {
    keepaliveMs: 100,
    keepaliveTimeoutMs: 200,
  });
  const roots = client.sqrt(oneThenNothing());
  deepStrictEqual(await roots.next(), { done: false, value: 2 });
  proxy.freeze();
  // Without keepalive the call would wait forever; the limit turns that into a failure.
  let limit: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    roots.next().then(
      (result) => `answered ${JSON.stringify(result)}`,
      (error: unknown) => error,
    ),
    new Promise<string>((resolve) => {
      limit = setTimeout(() => resolve("still waiting after 5 s"), 5_000);
    }),
  ]);
  clearTimeout(limit);
  if (!(outcome instanceof GrpcError)) throw new Error(String(outcome));
  strictEqual(outcome.codeName, "UNAVAILABLE");
  match(outcome.details, /keepalive ping within 200 ms/);
});

Deno.test("createClient() backs off between connection attempts while a server restarts", async () => {
  const port = unusedPort();
  const address = `127.0.0.1:${port}`;
  using client = createClient(address);
  {
    await using _server = await startServer({ port });
    strictEqual(await client.sum([1, 2]), 3n);
  }

  // The server is gone: the first call dials and fails; the next ones fail at once without
  // dialling, until the backoff (about a second) has passed.
  const refused = await failure(client.sum([1]));
  strictEqual(refused.codeName, "UNAVAILABLE");
  doesNotMatch(refused.details, /next attempt/);
  for (let i = 0; i < 5; i++) {
    const fast = await failure(client.sum([1]));
    strictEqual(fast.codeName, "UNAVAILABLE");
    match(fast.details, /^Cannot reach .*\(next attempt in \d+ ms\)$/);
  }

  // Back on the same port: once the backoff has passed, the next call connects.
  await using _server = await startServer({ port });
  const started = Date.now();
  let answer: bigint | undefined;
  while (answer === undefined && Date.now() - started < 5_000) {
    try {
      answer = await client.sum([2, 3]);
    } catch (error) {
      if (!(error instanceof GrpcError)) throw error;
      match(error.details, /next attempt in/);
      await delay(50);
    }
  }
  strictEqual(answer, 5n);
});

Deno.test("createClient() reports a connection its own HTTP/2 layer ended as UNAVAILABLE", async () => {
  await using server = await startServerProcess([
    "run",
    ...RUN_PERMISSIONS,
    RAW_SERVER,
    "--empty-frames",
  ]);
  using client = createClient(server.addresses[0]!);
  const error = await failure(Array.fromAsync(client.pow(1, { count: 10 })));
  strictEqual(error.codeName, "UNAVAILABLE", String(error));
  match(
    error.details,
    /^Connection to 127\.0\.0\.1:\d+ closed during the call/,
  );
});

Deno.test("createClient() reports a connection lost mid-call as UNAVAILABLE", async () => {
  await using server = await startServer({ port: 0 });
  await using proxy = startProxy(server.addresses[0]!);
  using client = createClient(proxy.address);
  const roots = client.sqrt(oneThenNothing());
  deepStrictEqual(await roots.next(), { done: false, value: 2 });
  proxy.cut();
  const error = await failure(roots.next());
  strictEqual(error.codeName, "UNAVAILABLE", String(error));
  doesNotMatch(error.details, /cancelled/i);
});
