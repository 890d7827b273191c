import { deepStrictEqual, strictEqual } from "node:assert";
import { Buffer } from "node:buffer";
import * as grpc from "../../internals/npm/grpc_js.ts";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { startServer, type StartServerOptions } from "../../mod.ts";
import { probeServer, type ServerProbe } from "../../services/_testing.ts";
import { leanPathRefusal } from "../../services/lean_calls.ts";
import {
  encodePowRequest,
  encodeSqrtRequest,
  encodeSumRequest,
} from "../../proto/codec.ts";
import {
  fastPathsSwitchedOff,
  SWITCHED_OFF_LINE,
} from "../_util/fast_paths_switch.ts";

const POW = "/stream.ServerStream/Pow";
const SUM = "/stream.ClientStream/Sum";
const SQRT = "/stream.BidirectionalStreamServer/Sqrt";
const SINGLE = "/stream.Single/Sqrt";

/** What a raw HTTP/2 client saw of one call, with what the server logged for it. */
interface Seen {
  headers: Record<string, unknown>;
  trailers: Record<string, unknown>;
  data: string;
  lines: string[];
}

/** One call, written frame by frame as a test asks. */
interface RawCall {
  path: string;
  messages?: Uint8Array[];
  headers?: Record<string, string>;
  /** Leaves the request open; with `resetAfterMs`, resets it after that long. */
  open?: boolean;
  resetAfterMs?: number;
}

function frame(message: Uint8Array, compressed = false): Uint8Array {
  const framed = Buffer.alloc(5 + message.length);
  framed[0] = compressed ? 1 : 0;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  return framed;
}

/** Headers as compared: the date and the ports of the peers left out. */
function comparable(headers: Record<string, unknown>): Record<string, unknown> {
  const { date: _date, ...rest } = headers;
  return rest;
}

function rawCall(address: string, call: RawCall): Promise<Omit<Seen, "lines">> {
  const session = http2.connect(`http://${address}`);
  return new Promise((resolve, reject) => {
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": call.path,
      "content-type": "application/grpc",
      te: "trailers",
      ...call.headers,
    });
    let headers: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    const data: Buffer[] = [];
    stream.on("response", (received) => headers = { ...received });
    stream.on("trailers", (received) => trailers = { ...received });
    stream.on("data", (chunk: Buffer) => data.push(chunk));
    // A request left open ends once the server has answered.
    stream.on("end", () => stream.close());
    stream.on("error", () => {});
    stream.on("close", () => {
      session.close();
      resolve({
        headers: comparable(headers),
        trailers: comparable(trailers),
        data: Buffer.concat(data).toString("hex"),
      });
    });
    for (const message of call.messages ?? []) stream.write(message);
    if (call.resetAfterMs !== undefined) {
      setTimeout(
        () => stream.close(http2.constants.NGHTTP2_CANCEL),
        call.resetAfterMs,
      );
    } else if (!call.open) {
      stream.end();
    }
  });
}

/** A server on the lean path, or on grpc-js's. */
async function serve(
  path: "lean" | "grpc-js",
  channelOptions: Record<string, number> = {},
): Promise<
  {
    server: AsyncDisposable & { addresses: readonly string[] };
    probe: ServerProbe;
    lines: string[];
  }
> {
  const lines: string[] = [];
  function log(line: string): void {
    if (line === SWITCHED_OFF_LINE) return;
    // The client's port differs from call to call.
    lines.push(line.replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:PORT"));
  }
  const options: StartServerOptions = {
    logger: { info: log, warn: log, error: log },
    logMessages: false,
    maxPowCount: 100,
    channelOptions,
  };
  const probe = probeServer(options);
  probe.leanPath = path === "lean";
  const server = await startServer(options);
  return { server, probe, lines };
}

/** Makes `call` on a server of each path; returns what each saw, lean first. */
async function onBothPaths(
  call: RawCall,
  channelOptions: Record<string, number> = {},
): Promise<{ lean: Seen; grpcJs: Seen; leanCalls: string[] }> {
  const seen: Seen[] = [];
  let leanCalls: string[] = [];
  for (const path of ["lean", "grpc-js"] as const) {
    const { server, probe, lines } = await serve(path, channelOptions);
    await using _ = server;
    const answer = await rawCall(server.addresses[0]!, call);
    // The lines of how the call ended can follow its close by a turn or two.
    await new Promise((resolve) => setTimeout(resolve, 50));
    seen.push({ ...answer, lines: [...lines] });
    if (path === "lean") leanCalls = probe.takeLeanCalls();
    else strictEqual(probe.takeLeanCalls().length, 0);
  }
  return { lean: seen[0]!, grpcJs: seen[1]!, leanCalls };
}

/** Asserts both paths answered `call` alike, and that the lean one took it (fast paths on). */
async function assertAlike(
  call: RawCall,
  expected: { status: string; message?: string },
  channelOptions: Record<string, number> = {},
): Promise<Seen> {
  const { lean, grpcJs, leanCalls } = await onBothPaths(call, channelOptions);
  deepStrictEqual(lean, grpcJs);
  const status = lean.trailers["grpc-status"] ?? lean.headers["grpc-status"];
  strictEqual(status, expected.status);
  if (expected.message !== undefined) {
    const message = lean.trailers["grpc-message"] ??
      lean.headers["grpc-message"];
    strictEqual(decodeURI(String(message)), expected.message);
  }
  deepStrictEqual(leanCalls, fastPathsSwitchedOff() ? [] : [call.path]);
  return lean;
}

const pow = (number: bigint, count: number): Uint8Array =>
  frame(encodePowRequest({ number, count }));
const sum = (number: bigint): Uint8Array => frame(encodeSumRequest({ number }));
const sqrt = (number: number): Uint8Array =>
  frame(encodeSqrtRequest({ number }));

Deno.test("the lean path answers Pow, Sum and Sqrt as grpc-js's path does", async (t) => {
  await t.step("normal calls", async () => {
    const powSeen = await assertAlike({ path: POW, messages: [pow(2n, 2)] }, {
      status: "0",
      message: "OK",
    });
    deepStrictEqual(powSeen.lines, [
      "Pow called by 127.0.0.1:PORT",
      "Recv Client Data 2",
      "Pow(2) completed: 2 powers",
    ]);
    await assertAlike({ path: SUM, messages: [sum(1n), sum(2n), sum(3n)] }, {
      status: "0",
    });
    await assertAlike({ path: SQRT, messages: [sqrt(4)] }, { status: "0" });
  });

  await t.step("the handlers' refusals", async () => {
    await assertAlike({ path: POW, messages: [pow(2n, 101)] }, {
      status: "3",
      message: "Count is over this server's limit: 101 > 100",
    });
    await assertAlike({
      path: SUM,
      messages: [sum(9_223_372_036_854_775_807n), sum(1n)],
    }, {
      status: "11",
      message: "Sum does not fit in int64: 9223372036854775808",
    });
    await assertAlike({ path: SQRT, messages: [sqrt(4), sqrt(-1)] }, {
      status: "3",
      message: "Number has no real square root: -1 (message 2)",
    });
  });

  await t.step("requests that do not decode", async () => {
    const garbage = frame(new Uint8Array([0xff, 0xff, 0xff]));
    await assertAlike({ path: POW, messages: [garbage] }, {
      status: "13",
      message: "Error deserializing request",
    });
    await assertAlike({ path: SUM, messages: [garbage] }, { status: "13" });
  });

  await t.step("a Pow without its request, or with two", async () => {
    await assertAlike({ path: POW }, {
      status: "12",
      message:
        "Received no request message for server streaming method /stream.ServerStream/Pow",
    });
    await assertAlike({ path: POW, messages: [pow(2n, 2), pow(2n, 2)] }, {
      status: "12",
    });
  });

  await t.step("a content-type that is not gRPC's: HTTP 415", async () => {
    for (const path of [POW, SUM, SQRT]) {
      const { lean, grpcJs } = await onBothPaths({
        path,
        headers: { "content-type": "text/plain" },
      });
      deepStrictEqual(lean, grpcJs);
      strictEqual(lean.headers[":status"], 415);
    }
  });

  await t.step("messages over the limits, both ways", async () => {
    await assertAlike({ path: SUM, messages: [sum(1n << 40n)] }, {
      status: "8",
      // grpc-js's decoder reads Sum on its public path, and words it without the dot.
      message: `Received message larger than max (7 vs${
        fastPathsSwitchedOff() ? "" : "."
      } 4)`,
    }, { "grpc.max_receive_message_length": 4 });
    await assertAlike({ path: POW, messages: [pow(3n, 2)] }, {
      status: "8",
      message: "Received message larger than max (4 vs 3)",
    }, { "grpc.max_receive_message_length": 3 });
    await assertAlike({ path: POW, messages: [pow(1n << 40n, 2)] }, {
      status: "8",
    }, { "grpc.max_send_message_length": 3 });
    await assertAlike({ path: SUM, messages: [sum(1n << 40n)] }, {
      status: "8",
    }, { "grpc.max_send_message_length": 3 });
  });

  await t.step("a compressed request", async () => {
    const compressed = frame(gzipSync(encodeSumRequest({ number: 5n })), true);
    await assertAlike({
      path: SUM,
      messages: [compressed, sum(1n)],
      headers: { "grpc-encoding": "gzip" },
    }, { status: "0" });
    const powCompressed = frame(
      gzipSync(encodePowRequest({ number: 3n, count: 2 })),
      true,
    );
    await assertAlike({
      path: POW,
      messages: [powCompressed],
      headers: { "grpc-encoding": "gzip" },
    }, { status: "0" });
  });

  await t.step("a deadline that passes", async () => {
    for (const path of [POW, SUM, SQRT]) {
      await assertAlike({
        path,
        messages: path === POW ? [] : [path === SUM ? sum(1n) : sqrt(1)],
        headers: { "grpc-timeout": "30m" },
        open: true,
      }, { status: "4", message: "Deadline exceeded" });
    }
    await assertAlike({
      path: SUM,
      headers: { "grpc-timeout": "soon" },
      open: true,
    }, { status: "13", message: 'Invalid grpc-timeout value "soon"' });
  });

  await t.step("a call the client cancels", async () => {
    for (const path of [SUM, SQRT]) {
      const { lean, grpcJs, leanCalls } = await onBothPaths({
        path,
        messages: [path === SUM ? sum(1n) : sqrt(1)],
        resetAfterMs: 30,
      });
      deepStrictEqual(lean, grpcJs);
      strictEqual(
        lean.lines.at(-1),
        path === SUM
          ? "Sum cancelled by the client"
          : "Sqrt cancelled by the client after 1 numbers",
      );
      deepStrictEqual(leanCalls, fastPathsSwitchedOff() ? [] : [path]);
    }
    const { lean, grpcJs } = await onBothPaths({ path: POW, resetAfterMs: 30 });
    deepStrictEqual(lean, grpcJs);
    // The call starts need the fast paths to tell an unstarted call (`call_starts.ts`).
    deepStrictEqual(
      lean.lines,
      fastPathsSwitchedOff()
        ? []
        : ["Pow cancelled by the client before its request arrived"],
    );
  });
});

Deno.test("the lean path leaves stream.Single, health and unknown paths to grpc-js", async () => {
  const { server, probe } = await serve("lean");
  await using _ = server;
  const address = server.addresses[0]!;
  const single = await rawCall(address, {
    path: SINGLE,
    messages: [sqrt(9)],
  });
  strictEqual(single.trailers["grpc-status"], "0");
  const unknown = await rawCall(address, { path: "/stream.Nothing/Here" });
  strictEqual(unknown.headers["grpc-status"], "12");
  deepStrictEqual(probe.takeLeanCalls(), []);
});

Deno.test("leanPathRefusal() sends servers with per-call options through grpc-js", () => {
  strictEqual(leanPathRefusal({}), undefined);
  strictEqual(
    leanPathRefusal({ "grpc.max_receive_message_length": 10 }),
    undefined,
  );
  strictEqual(
    leanPathRefusal({ "grpc.server_call_metric_recording": 1 }),
    "grpc.server_call_metric_recording",
  );
  strictEqual(
    leanPathRefusal({
      interceptors: [
        (_descriptor, call) => new grpc.ServerInterceptingCall(call),
      ],
    }),
    "interceptors",
  );
});
