/**
 * The server's HPACK coding against another stack's: python's hpack package, in a
 * subprocess (tests/fixtures/hpack_peer.py), decodes our blocks, and encodes blocks (Huffman
 * coding, incremental indexing, table size updates) for our decoder, one connection's worth
 * in order.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { HpackDecoder } from "../../proto/http2/hpack_decoder.ts";
import {
  encodeHeaderBlock,
  type HeaderField,
} from "../../proto/http2/hpack_encoder.ts";

const PEER = fileURLToPath(
  new URL("../fixtures/hpack_peer.py", import.meta.url),
);

/** One block for python's encoder to write. */
interface EncodeStep {
  fields: HeaderField[];
  /** The table size to set before the block, which opens it with a size update. */
  tableSize?: number;
  /** Names to send as never indexed. */
  neverIndexed?: string[];
}

/** Sends one request to the python peer and returns its answer. */
async function askPeer<T>(request: unknown): Promise<T> {
  const child = new Deno.Command("/usr/bin/python3", {
    args: [PEER],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(request)));
  await writer.close();
  const output = await child.output();
  assert.ok(
    output.success,
    `hpack_peer.py failed: ${new TextDecoder().decode(output.stderr)}`,
  );
  return JSON.parse(new TextDecoder().decode(output.stdout)) as T;
}

function hex(octets: Uint8Array): string {
  return Array.from(octets, (octet) => octet.toString(16).padStart(2, "0"))
    .join("");
}

function fromHex(text: string): Uint8Array {
  return Uint8Array.from(
    { length: text.length / 2 },
    (_, i) => parseInt(text.slice(2 * i, 2 * i + 2), 16),
  );
}

/** A list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it. */
function listBytes(fields: readonly HeaderField[]): number {
  let size = 0;
  for (const [name, value] of fields) size += name.length + value.length + 32;
  return size;
}

/** Every octet a value may hold, one character each. */
const EVERY_OCTET = Array.from(
  { length: 256 },
  (_, octet) => String.fromCharCode(octet),
).join("").replace(/[\0\n\r]/g, "");

Deno.test("python's hpack decodes encodeHeaderBlock's responses and trailers", async () => {
  const blocks: HeaderField[][] = [
    [
      [":status", "200"],
      ["content-type", "application/grpc"],
      ["grpc-accept-encoding", "identity,deflate,gzip"],
      ["grpc-encoding", "identity"],
    ],
    [["grpc-status", "0"]],
    [
      ["grpc-status", "3"],
      ["grpc-message", "Count%20must%20be%20positive%3A%20-1"],
    ],
    [[":status", "404"], ["content-length", "0"], ["date", ""]],
    [
      ["x-every-octet", EVERY_OCTET],
      ["x-long", "v".repeat(30_000)],
      ["trace-bin", "AAECAwQFBgcICQ=="],
    ],
    [[":status", "200"], ["content-type", "application/grpc"]],
  ];
  const answer = await askPeer<{ lists: HeaderField[][] }>({
    decode: blocks.map((fields) => hex(encodeHeaderBlock(fields))),
  });
  assert.deepEqual(answer.lists, blocks);
});

Deno.test("HpackDecoder decodes python's hpack blocks on one connection, an oversized list among them", async () => {
  const request: HeaderField[] = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/stream.ServerStream/Pow"],
    [":authority", "127.0.0.1:50051"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["grpc-accept-encoding", "identity,deflate,gzip"],
    ["user-agent", "grpc-node-js/1.14.7"],
  ];
  const oversized: HeaderField[] = [
    ...request,
    ...Array.from(
      { length: 40 },
      (_, i): HeaderField => [`x-filler-${i}`, `${i}`.repeat(60)],
    ),
  ];
  const steps: EncodeStep[] = [
    { fields: request },
    { fields: request },
    {
      fields: [...request, ["authorization", "Bearer secret"]],
      neverIndexed: ["authorization"],
    },
    // Smaller: python's encoder opens the block with a size update and evicts.
    { fields: [...request, ["x-every-octet", EVERY_OCTET]], tableSize: 512 },
    // Past maxListBytes; it still indexes its fillers, evicting the request's fields.
    { fields: oversized, tableSize: 4096 },
    // Refers to entries the oversized block left: only a decoder in step reads it right.
    { fields: [...request, ["x-filler-39", "39".repeat(60)]] },
    { fields: request, tableSize: 0 },
    { fields: request, tableSize: 4096 },
  ];
  const { blocks } = await askPeer<{ blocks: string[] }>({ encode: steps });
  const maxListBytes = 2048;
  assert.ok(listBytes(oversized) > maxListBytes);
  const decoder = new HpackDecoder({ maxListBytes });
  for (const [i, step] of steps.entries()) {
    const bytes = listBytes(step.fields);
    const expected = bytes > maxListBytes
      ? { oversized: true, listBytes: bytes }
      : {
        oversized: false,
        fields: step.fields,
        listBytes: bytes,
        forbiddenValues: step.fields.some(([, value]) =>
          /[\0\r\n]/.test(value)
        ),
      };
    assert.deepEqual(
      decoder.decode(fromHex(blocks[i]!)),
      expected,
      `block ${i + 1}`,
    );
  }
  // Python's encoder indexed more than one block's worth: the table did evict.
  assert.ok(decoder.tableSize <= 4096);
});
