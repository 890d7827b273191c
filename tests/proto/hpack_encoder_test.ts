import assert from "node:assert/strict";
import { HpackDecoder } from "../../proto/http2/hpack_decoder.ts";
import {
  encodeFrozenHeaderBlock,
  encodeHeaderBlock,
  encodeHeaderBlockInto,
  type HeaderField,
} from "../../proto/http2/hpack_encoder.ts";

/** `text`'s octets, one per character (latin1). */
function octets(text: string): number[] {
  return Array.from(text, (character) => character.charCodeAt(0));
}

/** A list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it. */
function listBytes(fields: readonly HeaderField[]): number {
  let size = 0;
  for (const [name, value] of fields) size += name.length + value.length + 32;
  return size;
}

Deno.test("encodeHeaderBlock writes each field in the shortest form that leaves the peer's table alone", async (t) => {
  const cases: [string, HeaderField, number[]][] = [
    ["a whole static field as its index", [":status", "200"], [0x88]],
    ["an empty static value as its index", ["accept", ""], [0x80 | 19]],
    [
      "a static name below 15 in the 4-bit prefix",
      [":status", "418"],
      [0x08, 0x03, ...octets("418")],
    ],
    [
      "a static name from 15 on past the prefix",
      ["content-type", "application/grpc"],
      [0x0f, 31 - 15, 16, ...octets("application/grpc")],
    ],
    [
      "a new name written out, without indexing",
      ["grpc-status", "0"],
      [0x00, 11, ...octets("grpc-status"), 1, ...octets("0")],
    ],
    [
      "a value of 200 octets with its length past the 7-bit prefix",
      ["x", "a".repeat(200)],
      [0x00, 1, ...octets("x"), 0x7f, 200 - 127, ...octets("a".repeat(200))],
    ],
    [
      "octets past 0x7f as themselves",
      ["x-bytes", "\u00e9\u00ff\u0080"],
      [0x00, 7, ...octets("x-bytes"), 3, 0xe9, 0xff, 0x80],
    ],
  ];
  for (const [name, field, expected] of cases) {
    await t.step(name, () => {
      assert.deepEqual(Array.from(encodeHeaderBlock([field])), expected);
      // Twice: the second time from the memo of fields met before.
      assert.deepEqual(Array.from(encodeHeaderBlock([field])), expected);
    });
  }
});

Deno.test("encodeHeaderBlockInto writes into the caller's buffer and refuses what does not fit", async (t) => {
  const fields: HeaderField[] = [
    [":status", "200"],
    ["content-type", "application/grpc"],
    ["grpc-message", "x".repeat(300)],
  ];
  const expected = encodeHeaderBlock(fields);
  await t.step(
    "the same octets as encodeHeaderBlock, from the view's start",
    () => {
      const frame = new Uint8Array(9 + 1024).fill(0xaa);
      const length = encodeHeaderBlockInto(fields, frame.subarray(9));
      assert.equal(length, expected.length);
      assert.deepEqual(frame.subarray(9, 9 + length), expected);
      assert.deepEqual(frame.subarray(0, 9), new Uint8Array(9).fill(0xaa));
    },
  );
  await t.step("a block one octet too long for the buffer is refused", () => {
    assert.equal(
      encodeHeaderBlockInto(fields, new Uint8Array(expected.length)),
      expected.length,
    );
    assert.throws(
      () => encodeHeaderBlockInto(fields, new Uint8Array(expected.length - 1)),
      {
        name: "RangeError",
        message:
          `Header block does not fit: ${expected.length} octets or more for ${
            expected.length - 1
          }`,
      },
    );
  });
});

Deno.test("encodeHeaderBlock refuses characters HTTP/2 does not allow", () => {
  const refusals: [HeaderField, string][] = [
    [
      ["Content-Type", "x"],
      'Header name holds a character HTTP/2 does not allow: "Content-Type" at 0, U+0043',
    ],
    [
      ["x y", "x"],
      'Header name holds a character HTTP/2 does not allow: "x y" at 1, U+0020',
    ],
    [
      ["x", "a\r\nb"],
      'Header value holds a character HTTP/2 does not allow: "x" at 1, U+000d',
    ],
    [
      ["grpc-message", "\u010a"],
      'Header value holds a character HTTP/2 does not allow: "grpc-message" at 0, U+010a',
    ],
    [
      ["x", "\0"],
      'Header value holds a character HTTP/2 does not allow: "x" at 0, U+0000',
    ],
  ];
  for (const [field, message] of refusals) {
    assert.throws(() => encodeHeaderBlock([field]), {
      name: "RangeError",
      message,
    }, field[0]);
    // A long value skips the memo: the check holds there too.
    const long: HeaderField = [field[0], field[1] + "y".repeat(200)];
    assert.throws(() => encodeHeaderBlock([long]), { name: "RangeError" });
  }
});

Deno.test("encodeHeaderBlock's blocks decode back through HpackDecoder on one connection", () => {
  const all = Array.from(
    { length: 256 },
    (_, octet) => String.fromCharCode(octet),
  ).join("").replace(/[\0\n\r]/g, "");
  const blocks: HeaderField[][] = [
    [[":status", "200"], ["content-type", "application/grpc"], [
      "grpc-accept-encoding",
      "identity,deflate,gzip",
    ]],
    [["grpc-status", "0"], ["grpc-message", ""]],
    [["grpc-status", "13"], ["grpc-message", "bad%20thing%0Ahappened"]],
    [["x-every-octet", all], ["x-long", "z".repeat(20_000)]],
    [["trace-bin", "AAECAwQ="], [":status", "200"], ["accept", ""]],
  ];
  const decoder = new HpackDecoder({ maxListBytes: Infinity });
  for (let round = 0; round < 2; round++) {
    for (const fields of blocks) {
      assert.deepEqual(decoder.decode(encodeHeaderBlock(fields)), {
        oversized: false,
        fields,
        listBytes: listBytes(fields),
        forbiddenValues: fields.some(([, value]) => /[\0\r\n]/.test(value)),
      });
    }
  }
  // Nothing was indexed: the peer's table is as empty as at the start.
  assert.equal(decoder.tableLength, 0);
});

Deno.test("encodeFrozenHeaderBlock() encodes a frozen list once and refuses one that may change", async (t) => {
  await t.step("the same block each time, which decodes back", () => {
    const fields = Object.freeze([
      Object.freeze([":status", "200"] as const),
      Object.freeze(["content-type", "application/grpc+proto"] as const),
    ]);
    const block = encodeFrozenHeaderBlock(fields);
    assert.equal(encodeFrozenHeaderBlock(fields), block);
    assert.deepEqual(block, encodeHeaderBlock(fields));
    const decoded = new HpackDecoder().decode(block);
    assert.deepEqual(decoded.oversized ? [] : decoded.fields, fields);
  });
  await t.step("a TypeError for a list that is not frozen", () => {
    assert.throws(
      () => encodeFrozenHeaderBlock([["grpc-status", "0"]]),
      TypeError,
    );
  });
});
