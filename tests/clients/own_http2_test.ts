/**
 * The client's own HTTP/2 (`clients/http2/`) against a raw server that breaks the protocol
 * (`tests/fixtures/h2_raw_server.py`): the call ends with a status that says why, and the
 * server hears the error code RFC 9113 asks for.
 *
 * @module
 */
import { deepStrictEqual, match, strictEqual } from "node:assert";
import { createClient } from "../../mod.ts";
import { probeClient } from "../../clients/_testing.ts";
import { DenoProcess } from "../_util/subprocess.ts";
import { failure } from "../_util/test_utils.ts";

const RAW_SERVER = new URL("../fixtures/h2_raw_server.py", import.meta.url)
  .pathname;

/** The HTTP/2 error codes the checks expect (RFC 9113 §7). */
const PROTOCOL_ERROR = 0x1;
const FLOW_CONTROL_ERROR = 0x3;
const COMPRESSION_ERROR = 0x9;

/** What the raw server saw of the client: see tests/fixtures/h2_raw_server.py. */
interface Seen {
  goaways: [number, number][];
  resets: Record<string, number[]>;
  closed: boolean;
}

/** A client on the own HTTP/2, whatever `GRPC_STREAM_HTTP2` says. */
function ownClient(address: string): ReturnType<typeof createClient> {
  const options = {};
  probeClient(options).ownHttp2 = true;
  return createClient(address, options);
}

/**
 * Runs `call` against a raw server in `mode`.
 *
 * @returns How the call failed, and what the server saw.
 */
async function against(
  mode: string,
  call: (address: string) => Promise<unknown>,
): Promise<{ error: Awaited<ReturnType<typeof failure>>; seen: Seen }> {
  await using server = DenoProcess.spawn([RAW_SERVER, mode], {
    program: "/usr/bin/python3",
  });
  const [, port] = await server.waitForLine("stdout", /^listening (\d+)$/);
  const error = await failure(call(`127.0.0.1:${port}`));
  const [line] = await server.waitForLine("stdout", /^\{.*\}$/, 10_000);
  return { error, seen: JSON.parse(line) as Seen };
}

Deno.test("createClient() ends its connection to a server that breaks HTTP/2, saying why", async (t) => {
  await t.step(
    "HEADERS on a stream it never opened: GOAWAY PROTOCOL_ERROR, UNAVAILABLE",
    async () => {
      const { error, seen } = await against("unknown-stream", (address) => {
        using client = ownClient(address);
        return Array.fromAsync(client.pow(2, { count: 3 }));
      });
      strictEqual(error.codeName, "UNAVAILABLE", String(error));
      match(error.details, /never opened/);
      deepStrictEqual(seen.goaways.map(([, code]) => code), [PROTOCOL_ERROR]);
      strictEqual(seen.closed, true);
    },
  );

  await t.step(
    "a header block HPACK cannot decode: GOAWAY COMPRESSION_ERROR, UNAVAILABLE",
    async () => {
      const { error, seen } = await against("bad-hpack", (address) => {
        using client = ownClient(address);
        return client.sum([1, 2]);
      });
      strictEqual(error.codeName, "UNAVAILABLE", String(error));
      match(error.details, /COMPRESSION_ERROR/);
      deepStrictEqual(seen.goaways.map(([, code]) => code), [
        COMPRESSION_ERROR,
      ]);
      strictEqual(seen.closed, true);
    },
  );
});

Deno.test("createClient() resets a stream whose response has a value with a line feed", async () => {
  const { error, seen } = await against("newline-value", async (address) => {
    using client = ownClient(address);
    try {
      return await client.sum([1, 2]);
    } finally {
      // The connection stays a while: its reset goes before the client closes it.
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });
  strictEqual(error.codeName, "INTERNAL", String(error));
  match(error.details, /Invalid value in response header: x-bad/);
  deepStrictEqual(Object.values(seen.resets), [[PROTOCOL_ERROR]]);
  deepStrictEqual(seen.goaways, []);
});

Deno.test("createClient() resets a stream whose server sends past its window", async () => {
  const { error, seen } = await against("window-overflow", async (address) => {
    using client = ownClient(address);
    const powers = client.pow(2, { count: 1_000_000 });
    // One value taken, then none: the reader stops, and so does the stream's window.
    await powers.next();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for await (const _ of powers);
  });
  strictEqual(error.codeName, "INTERNAL", String(error));
  match(error.details, /FLOW_CONTROL_ERROR/);
  deepStrictEqual(Object.values(seen.resets), [[FLOW_CONTROL_ERROR]]);
  deepStrictEqual(seen.goaways, []);
});
