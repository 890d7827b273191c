/**
 * What the client puts on the wire for a short call, read frame by frame by a bare TCP peer.
 *
 * @module
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { createClient, type StreamClient } from "../../mod.ts";

const PREFACE_LENGTH = 24;
const DATA = 0;
const HEADERS = 1;
const RST_STREAM = 3;
const SETTINGS = 4;
const END_STREAM = 1;
const ACK = 1;
const CANCEL = 8;
/**
 * How long the peer waits for the stream to end before it stops recording: a client that
 * sends neither END_STREAM nor RST_STREAM fails the test instead of hanging it.
 */
const STALL_MS = 5_000;

/** One HTTP/2 frame as the client sent it. */
interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Uint8Array;
}

function frame(type: number, flags: number): Uint8Array {
  // An empty frame on stream 0: length 0, type, flags, stream 0.
  return new Uint8Array([0, 0, 0, type, flags, 0, 0, 0, 0]);
}

/**
 * Accepts one connection, answers the client's SETTINGS, and records the frames of the
 * client's second stream until its END_STREAM or its RST_STREAM (or {@linkcode STALL_MS});
 * then drops the connection (the calls fail, which the tests expect: only what the client
 * sent counts). The first stream, once its
 * request is complete, resolves `connected`: a call that starts on a connection still
 * being set up waits for it, and Deno 2.9.6's `node:http2` then sends its END_STREAM apart.
 */
async function recordSecondStream(
  listener: Deno.TcpListener,
  connected: () => void,
): Promise<Frame[]> {
  const connection = await listener.accept();
  const frames: Frame[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<"stalled">((resolve) => {
    timer = setTimeout(() => resolve("stalled"), STALL_MS);
  });
  try {
    await connection.write(frame(SETTINGS, 0));
    let bytes = new Uint8Array(0);
    let prefaceSeen = false;
    const chunk = new Uint8Array(65536);
    while (true) {
      const read = await Promise.race([connection.read(chunk), stalled]);
      if (read === null || read === "stalled") return frames;
      const joined = new Uint8Array(bytes.length + read);
      joined.set(bytes);
      joined.set(chunk.subarray(0, read), bytes.length);
      bytes = joined;
      if (!prefaceSeen) {
        if (bytes.length < PREFACE_LENGTH) continue;
        bytes = bytes.subarray(PREFACE_LENGTH);
        prefaceSeen = true;
      }
      while (bytes.length >= 9) {
        const length = (bytes[0]! << 16) | (bytes[1]! << 8) | bytes[2]!;
        if (bytes.length < 9 + length) break;
        const view = new DataView(bytes.buffer, bytes.byteOffset);
        const next: Frame = {
          type: bytes[3]!,
          flags: bytes[4]!,
          stream: view.getUint32(5) & 0x7fffffff,
          payload: bytes.slice(9, 9 + length),
        };
        bytes = bytes.subarray(9 + length);
        if (next.type === SETTINGS && (next.flags & ACK) === 0) {
          await connection.write(frame(SETTINGS, ACK));
        }
        if (next.stream === 1 && next.flags & END_STREAM) connected();
        if (next.stream !== 3) continue;
        frames.push(next);
        if (next.flags & END_STREAM || next.type === RST_STREAM) return frames;
      }
    }
  } finally {
    clearTimeout(timer);
    connection.close();
  }
}

/** The gRPC messages in `payload`, each without its 5-byte prefix. */
function messages(payload: Uint8Array): Uint8Array[] {
  const found: Uint8Array[] = [];
  let offset = 0;
  while (offset + 5 <= payload.length) {
    const length = new DataView(payload.buffer, payload.byteOffset + offset)
      .getUint32(1);
    found.push(payload.slice(offset + 5, offset + 5 + length));
    offset += 5 + length;
  }
  strictEqual(offset, payload.length, "The body ends inside a message");
  return found;
}

/** The frames of `call`'s request, made on a client whose connection is set up. */
async function framesOf(
  call: (client: StreamClient) => Promise<unknown>,
): Promise<Frame[]> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { promise: ready, resolve: connected } = Promise.withResolvers<void>();
  const recorded = recordSecondStream(listener, connected);
  using client = createClient(`127.0.0.1:${listener.addr.port}`);
  // The connection is dropped once the request is recorded, so both calls fail.
  const first = Array.fromAsync(client.pow(2)).catch(() => {});
  await ready;
  await call(client).catch(() => {});
  await first;
  return await recorded;
}

Deno.test("createClient() sends a short call's requests and END_STREAM in one DATA frame", async (t) => {
  await t.step("a 10-number sum", async () => {
    const frames = await framesOf((client) =>
      client.sum([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    );
    deepStrictEqual(frames.map((f) => [f.type, f.flags & END_STREAM]), [
      [HEADERS, 0],
      [DATA, END_STREAM],
    ]);
    strictEqual(messages(frames[1]!.payload).length, 10);
  });

  await t.step("a 10-number sqrt", async () => {
    const frames = await framesOf((client) =>
      Array.fromAsync(client.sqrt([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))
    );
    deepStrictEqual(frames.map((f) => [f.type, f.flags & END_STREAM]), [
      [HEADERS, 0],
      [DATA, END_STREAM],
    ]);
    strictEqual(messages(frames[1]!.payload).length, 10);
  });

  await t.step("pow", async () => {
    const frames = await framesOf((client) => Array.fromAsync(client.pow(2)));
    deepStrictEqual(frames.map((f) => [f.type, f.flags & END_STREAM]), [
      [HEADERS, 0],
      [DATA, END_STREAM],
    ]);
    strictEqual(messages(frames[1]!.payload).length, 1);
  });

  await t.step("a sum longer than one DATA frame, in order", async () => {
    const numbers = Array.from({ length: 5000 }, (_, i) => i);
    const frames = await framesOf((client) => client.sum(numbers));
    const data = frames.filter((f) => f.type === DATA);
    ok(data.length > 1, `${data.length} DATA frames`);
    const body = new Uint8Array(
      data.reduce((total, f) => total + f.payload.length, 0),
    );
    let filled = 0;
    for (const f of data) {
      body.set(f.payload, filled);
      filled += f.payload.length;
    }
    const all = messages(body);
    strictEqual(all.length, numbers.length);
    // Each Sum request is field 1 as a varint: 0x08 then the number.
    const decoded = all.map((m) => {
      let value = 0;
      let shift = 0;
      for (let i = 1; i < m.length; i++) {
        value += (m[i]! & 0x7f) * 2 ** shift;
        shift += 7;
      }
      return value;
    });
    deepStrictEqual(decoded, numbers);
  });
});

Deno.test("createClient() resets a call that fails in the turn it writes, with nothing queued sent", async (t) => {
  // The requests before the failure are queued for the end of the turn; the call must reach
  // the server as RST_STREAM(CANCEL), never as requests with END_STREAM (the server would
  // answer a finished Sum), and the reset must not be lost before the HEADERS go out.
  function abortedAfterTwo(client: StreamClient): Promise<bigint> {
    const controller = new AbortController();
    function* numbers(): Generator<number> {
      yield 1;
      yield 2;
      controller.abort();
      yield 3;
    }
    return client.sum(numbers(), { signal: controller.signal });
  }
  function sqrtAbortedAfterTwo(client: StreamClient): Promise<unknown> {
    const controller = new AbortController();
    function* numbers(): Generator<number> {
      yield 1;
      yield 2;
      controller.abort();
      yield 3;
    }
    return Array.fromAsync(
      client.sqrt(numbers(), { signal: controller.signal }),
    );
  }
  const cases: [string, (client: StreamClient) => Promise<unknown>][] = [
    ["a bad number after good ones", (client) => client.sum([1, 2, 2.5])],
    ["a bad number first", (client) => client.sum([2.5])],
    ["a signal aborted after two numbers", abortedAfterTwo],
    [
      "a sqrt with a bad value after good ones",
      (client) =>
        Array.fromAsync(client.sqrt([1, 2, "x" as unknown as number])),
    ],
    ["a sqrt whose signal is aborted after two numbers", sqrtAbortedAfterTwo],
  ];
  for (const [name, call] of cases) {
    await t.step(name, async () => {
      const frames = await framesOf(call);
      deepStrictEqual(frames.map((f) => [f.type, f.flags & END_STREAM]), [
        [HEADERS, 0],
        [RST_STREAM, 0],
      ]);
      strictEqual(
        new DataView(frames[1]!.payload.buffer).getUint32(0),
        CANCEL,
      );
    });
  }
});
