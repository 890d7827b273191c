import assert from "node:assert/strict";
import {
  type DecodedBlock,
  type HeaderField,
  HpackDecoder,
} from "../../proto/http2/hpack_decoder.ts";

/** The octets of a hex dump as RFC 7541 prints them (spaces and line breaks ignored). */
function hex(dump: string): Uint8Array {
  const digits = dump.replace(/\s+/g, "");
  const bytes = new Uint8Array(digits.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  }
  return bytes;
}

interface Step {
  block: string;
  headers: HeaderField[];
  tableSize: number;
  tableLength: number;
}

/** The fields of a block that fits the list limit. */
function fieldsOf(decoded: DecodedBlock): HeaderField[] {
  assert.equal(decoded.oversized, false, "the list is past maxListBytes");
  return decoded.oversized ? [] : decoded.fields;
}

/** Feeds each step's block to one decoder, as one connection's blocks arrive. */
function decodeInOrder(decoder: HpackDecoder, steps: readonly Step[]): void {
  for (const [i, step] of steps.entries()) {
    assert.deepEqual(
      fieldsOf(decoder.decode(hex(step.block))),
      step.headers,
      `block ${i + 1}`,
    );
    assert.equal(
      decoder.tableSize,
      step.tableSize,
      `table size after block ${i + 1}`,
    );
    assert.equal(
      decoder.tableLength,
      step.tableLength,
      `entries after block ${i + 1}`,
    );
  }
}

const FIRST_REQUEST: HeaderField[] = [
  [":method", "GET"],
  [":scheme", "http"],
  [":path", "/"],
  [":authority", "www.example.com"],
];
const SECOND_REQUEST: HeaderField[] = [
  ...FIRST_REQUEST,
  ["cache-control", "no-cache"],
];
const THIRD_REQUEST: HeaderField[] = [
  [":method", "GET"],
  [":scheme", "https"],
  [":path", "/index.html"],
  [":authority", "www.example.com"],
  ["custom-key", "custom-value"],
];

Deno.test("HpackDecoder decodes RFC 7541 C.3's requests without Huffman coding", () => {
  decodeInOrder(new HpackDecoder(), [
    {
      block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      headers: FIRST_REQUEST,
      tableSize: 57,
      tableLength: 1,
    },
    {
      block: "8286 84be 5808 6e6f 2d63 6163 6865",
      headers: SECOND_REQUEST,
      tableSize: 110,
      tableLength: 2,
    },
    {
      block:
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
      headers: THIRD_REQUEST,
      tableSize: 164,
      tableLength: 3,
    },
  ]);
});

Deno.test("HpackDecoder decodes RFC 7541 C.4's requests with Huffman coding", () => {
  decodeInOrder(new HpackDecoder(), [
    {
      block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      headers: FIRST_REQUEST,
      tableSize: 57,
      tableLength: 1,
    },
    {
      block: "8286 84be 5886 a8eb 1064 9cbf",
      headers: SECOND_REQUEST,
      tableSize: 110,
      tableLength: 2,
    },
    {
      block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
      headers: THIRD_REQUEST,
      tableSize: 164,
      tableLength: 3,
    },
  ]);
});

Deno.test("HpackDecoder evicts as RFC 7541 C.6's Huffman-coded responses require", () => {
  const date = "Mon, 21 Oct 2013 20:13:21 GMT";
  const location = "https://www.example.com";
  // C.6 runs on a 256-octet table, so its second and third responses evict entries.
  decodeInOrder(new HpackDecoder({ maxTableBytes: 256 }), [
    {
      block:
        `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
        2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      headers: [
        [":status", "302"],
        ["cache-control", "private"],
        ["date", date],
        ["location", location],
      ],
      tableSize: 222,
      tableLength: 4,
    },
    {
      block: "4883 640e ffc1 c0bf",
      headers: [
        [":status", "307"],
        ["cache-control", "private"],
        ["date", date],
        ["location", location],
      ],
      tableSize: 222,
      tableLength: 4,
    },
    {
      block:
        `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
        77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
        9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
      headers: [
        [":status", "200"],
        ["cache-control", "private"],
        ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
        ["location", location],
        ["content-encoding", "gzip"],
        [
          "set-cookie",
          "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        ],
      ],
      tableSize: 215,
      tableLength: 3,
    },
  ]);
});

Deno.test("HpackDecoder decodes every octet's Huffman code", () => {
  // Octets 0 to 255 in order, Huffman-coded by Python's hpack package, as a literal
  // without indexing with the new name "x".
  const coded = hex([
    "ffc7fffd8fffffe2fffffe3fffffe4fffffe5fffffe6fffffe7fffffe8ffffeafffffff3fffffa7f",
    "ffffabffffffdfffffebfffffecfffffedfffffeefffffefffffff0ffffff1ffffff2fffffffbfff",
    "ffcffffffd3fffffd7fffffdbfffffdffffffe3fffffe7fffffebfffffed4fe3f9ffaffcabf1febf",
    "afefe7fdfd2cbb00089969b71d79fb9f7fff20ffbff3ff50ddbd7f061c58f265cd9f469d5af66ddd",
    "bf871e5f9cff7ff7fffc3ff9ffe45fff4719242cb34e6e9d68a6a3d7dac426defe3cfaf7fffbfe7f",
    "fbffdffffffcfffe6ffff4bfff9ffffa3fffd3ffff53fffd5ffffb3fffeb7fffdaffffb7ffff73ff",
    "feeffffdeffffebffffbfffffd9ffffdbfffebffffe0ffffeeffffc3ffff8bffff1ffffe4fffee7f",
    "ffb1ffff97fffd9ffffcdffff9fffffbffffdafffeeffff4ffffb7fffee7fffe8ffffd3fffdeffff",
    "d5fffeeffffbdffffe1fffdfffff7fffff5ffffecffff07fff87fffe0ffff17fffedffff87ffff77",
    "fffeffffeaffff8bfffe3ffff93ffff87fffcbffff37ffff1fffff83ffffe1fffebfffe3ffff3fff",
    "ff2ffffa3ffffd9fffff17ffffc7fffff27ffffdefffffbffffff2fffff8fffffb7fff97fff8ffff",
    "fe6fffffc1fffff87ffffe7fffffc5ffffe5fffe4ffff2fffffd1fffff4ffffffefffffe3fffffc9",
    "fffff97fffb3ffffcffffb7fffcdffff4ffff9ffffd1ffffcffffeaffffafffffddffffeffffff4f",
    "ffff5fffffabffffa7ffffd7fffff9bffffecfffffb7fffff3fffffe8fffffd3fffffabfffff5fff",
    "ffff7ffffecfffffdbfffffbbfffff7ffffff0fffffbbf",
  ].join(""));
  const rest = coded.length - 127;
  assert.ok(rest >= 0 && rest < 128 * 128);
  // Name "x" (new name), then the value's length: 127 in the 7-bit prefix, the rest in two octets.
  const block = Uint8Array.of(
    0x00,
    0x01,
    0x78,
    0xff,
    0x80 | (rest % 128),
    rest >> 7,
    ...coded,
  );
  const octets = Array.from(
    { length: 256 },
    (_, octet) => String.fromCharCode(octet),
  ).join("");
  assert.deepEqual(fieldsOf(new HpackDecoder().decode(block)), [["x", octets]]);
});

Deno.test("HpackDecoder applies table size updates and refuses bad blocks", async (t) => {
  await t.step(
    "an update to 0 empties the table, one back to 4096 is allowed",
    () => {
      const decoder = new HpackDecoder();
      decoder.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"));
      assert.equal(decoder.tableSize, 57);
      assert.deepEqual(fieldsOf(decoder.decode(hex("20 82"))), [[
        ":method",
        "GET",
      ]]);
      assert.equal(decoder.tableSize, 0);
      assert.equal(decoder.tableLength, 0);
      decoder.decode(hex("3fe11f 4003 6b65 7905 7661 6c75 65"));
      assert.equal(decoder.tableSize, 3 + 5 + 32);
      assert.deepEqual(fieldsOf(decoder.decode(hex("be"))), [["key", "value"]]);
    },
  );
  await t.step("an update past the limit or after a field is refused", () => {
    assert.throws(() => new HpackDecoder().decode(hex("3fe21f")), {
      name: "RangeError",
      message: "Table size update exceeds the limit: 4097 > 4096",
    });
    assert.throws(() => new HpackDecoder().decode(hex("82 20")), {
      name: "RangeError",
      message: "Table size update follows a header field",
    });
  });
  await t.step(
    "an index past the tables, truncation, EOS and bad padding are refused",
    () => {
      const refusals: [string, string][] = [
        ["be", "Header index is out of the tables: 62"],
        ["80", "Header index 0 is not allowed"],
        ["0f", "Header block is truncated: in an integer"],
        ["0f 10 05 6162", "Header block is truncated: in a string of 5 octets"],
        ["00 01 78", "Header block is truncated: before a string"],
        ["00 01 78 84 ffff ffff", "Huffman string holds EOS"],
        ["00 01 78 81 00", "Huffman string has bad padding"],
        ["00 01 78 82 1f ff", "Huffman string has bad padding"],
        ["ff ff ff ff ff 7f", "Header integer is too large"],
      ];
      for (const [block, message] of refusals) {
        assert.throws(() => new HpackDecoder().decode(hex(block)), {
          name: "RangeError",
          message,
        }, block);
      }
    },
  );
});

Deno.test("HpackDecoder holds table size updates to maxTableBytes and to a block's start", async (t) => {
  await t.step(
    "several updates may open a block, and a later block's too",
    () => {
      const decoder = new HpackDecoder({ maxTableBytes: 100 });
      // To 0, then to 100 (31 + 69), then `key: value` indexed: 3 + 5 + 32 = 40 octets.
      decoder.decode(hex("20 3f45 4003 6b65 7905 7661 6c75 65"));
      assert.equal(decoder.tableSize, 40);
      assert.deepEqual(fieldsOf(decoder.decode(hex("3f45 be"))), [[
        "key",
        "value",
      ]]);
      // Two more entries of 40: the table keeps to 100 by evicting the oldest.
      decoder.decode(
        hex("4003 6b65 7905 7661 6c75 65 4003 6b65 7905 7661 6c75 65"),
      );
      assert.equal(decoder.tableSize, 80);
      assert.equal(decoder.tableLength, 2);
    },
  );
  await t.step("an update past the limit given is refused", () => {
    assert.throws(
      () => new HpackDecoder({ maxTableBytes: 100 }).decode(hex("3f46")),
      {
        name: "RangeError",
        message: "Table size update exceeds the limit: 101 > 100",
      },
    );
    assert.throws(
      () => new HpackDecoder({ maxTableBytes: 0 }).decode(hex("21")),
      {
        name: "RangeError",
        message: "Table size update exceeds the limit: 1 > 0",
      },
    );
  });
  await t.step("an update anywhere after a field is refused", () => {
    assert.throws(() => new HpackDecoder().decode(hex("20 82 20")), {
      name: "RangeError",
      message: "Table size update follows a header field",
    });
  });
});

Deno.test("HpackDecoder refuses integers and strings no block can hold", () => {
  const refusals: [string, string][] = [
    // A value length of 2^32 and more.
    ["00 01 78 7f ff ff ff ff 0f", "Header integer is too large"],
    // A run of continuation octets past 2^32's reach, even of zeros.
    ["ff 80 80 80 80 80 00", "Header integer is too large"],
    // A value of 16 MiB in a block of 9 octets.
    [
      "00 01 78 7f ff ff ff 07",
      "Header block is truncated: in a string of 16777342 octets",
    ],
    ["ff 80 80 80 80 01", "Header index is out of the tables: 268435583"],
  ];
  for (const [block, message] of refusals) {
    assert.throws(() => new HpackDecoder().decode(hex(block)), {
      name: "RangeError",
      message,
    }, block);
  }
});

Deno.test("HpackDecoder reports a list past maxListBytes and keeps its table in step", async (t) => {
  await t.step(
    "a list of exactly maxListBytes fits, one octet more does not",
    () => {
      // `:method: GET` counts 7 + 3 + 32 = 42 octets.
      assert.deepEqual(
        new HpackDecoder({ maxListBytes: 84 }).decode(hex("82 82")),
        {
          oversized: false,
          fields: [[":method", "GET"], [":method", "GET"]],
          listBytes: 84,
          forbiddenValues: false,
        },
      );
      assert.deepEqual(
        new HpackDecoder({ maxListBytes: 83 }).decode(hex("82 82")),
        {
          oversized: true,
          listBytes: 84,
        },
      );
    },
  );
  await t.step(
    "an oversized block's indexed fields serve the next blocks",
    () => {
      const decoder = new HpackDecoder({ maxListBytes: 100 });
      const long = "v".repeat(80);
      // `:method: GET`, then `a: v…` (1 + 80 + 32 = 113 octets), `b: w` and `c: x` (34 each),
      // all three indexed: the list passes 100 at the second field, and the block goes on to
      // its end.
      const block = Uint8Array.of(
        0x82,
        ...[0x40, 0x01, 0x61, 80, ...new TextEncoder().encode(long)],
        ...[0x40, 0x01, 0x62, 0x01, 0x77],
        ...[0x40, 0x01, 0x63, 0x01, 0x78],
      );
      assert.deepEqual(decoder.decode(block), {
        oversized: true,
        listBytes: 223,
      });
      assert.equal(decoder.tableSize, 181);
      assert.deepEqual(fieldsOf(decoder.decode(hex("be bf"))), [
        ["c", "x"],
        ["b", "w"],
      ]);
      assert.deepEqual(decoder.decode(hex("c0")), {
        oversized: true,
        listBytes: 113,
      });
      assert.equal(decoder.tableLength, 3);
    },
  );
});

/** A literal field with incremental indexing and a new name (RFC 7541 section 6.2.1). */
function indexedLiteral(name: string, value: string): number[] {
  const bytes = new TextEncoder();
  return [
    0x40,
    name.length,
    ...bytes.encode(name),
    value.length,
    ...bytes.encode(value),
  ];
}

Deno.test("HpackDecoder says whether a value holds NUL, CR or LF, each checked once", async (t) => {
  function forbidden(decoded: DecodedBlock): boolean {
    assert.equal(decoded.oversized, false);
    return (decoded as { forbiddenValues: boolean }).forbiddenValues;
  }
  await t.step("a clean block, from the tables and from literals", () => {
    const decoder = new HpackDecoder();
    assert.equal(forbidden(decoder.decode(hex("82 86 84"))), false);
    assert.equal(
      forbidden(decoder.decode(Uint8Array.of(...indexedLiteral("a", "b")))),
      false,
    );
    assert.equal(forbidden(decoder.decode(hex("be"))), false);
  });
  for (const [name, value] of [["LF", "x\ny"], ["CR", "x\r"], ["NUL", "\0"]]) {
    await t.step(`a literal with ${name}, then the table entry it made`, () => {
      const decoder = new HpackDecoder();
      assert.equal(
        forbidden(
          decoder.decode(Uint8Array.of(0x82, ...indexedLiteral("a", value!))),
        ),
        true,
      );
      // The entry, referred to by index in the next block, is still forbidden.
      assert.equal(forbidden(decoder.decode(hex("82 be"))), true);
      assert.equal(forbidden(decoder.decode(hex("82"))), false);
    });
  }
  await t.step("an evicted forbidden entry leaves clean ones behind it", () => {
    const decoder = new HpackDecoder({ maxTableBytes: 70 });
    decoder.decode(Uint8Array.of(...indexedLiteral("a", "x\n")));
    // 32 + 1 + 2 = 35 octets each: the second fits beside the first, the third evicts it.
    decoder.decode(Uint8Array.of(...indexedLiteral("b", "ok")));
    decoder.decode(Uint8Array.of(...indexedLiteral("c", "ok")));
    assert.equal(decoder.tableLength, 2);
    assert.equal(forbidden(decoder.decode(hex("be bf"))), false);
  });
});

Deno.test("HpackDecoder refuses every block after an error, and bad limits", async (t) => {
  await t.step("a block after an error is refused", () => {
    const decoder = new HpackDecoder();
    assert.throws(() => decoder.decode(hex("be")), {
      name: "RangeError",
      message: "Header index is out of the tables: 62",
    });
    assert.throws(() => decoder.decode(hex("82")), {
      name: "RangeError",
      message:
        "HPACK decoder failed on an earlier block: Header index is out of the tables: 62",
    });
  });
  await t.step("limits out of range are refused", () => {
    for (const maxTableBytes of [-1, 1.5, 2 ** 32, NaN]) {
      assert.throws(() => new HpackDecoder({ maxTableBytes }), {
        name: "RangeError",
        message:
          `maxTableBytes must be an integer from 0 to 2^32 - 1: ${maxTableBytes}`,
      });
    }
    for (const maxListBytes of [-1, NaN]) {
      assert.throws(() => new HpackDecoder({ maxListBytes }), {
        name: "RangeError",
        message: `maxListBytes must be a non-negative number: ${maxListBytes}`,
      });
    }
  });
});
