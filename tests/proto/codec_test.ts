import { INT64_MAX, INT64_MIN } from "../../proto/limits.ts";
import { deepStrictEqual, strictEqual, throws } from "node:assert";
import protobuf from "protobufjs";
import {
  decodePowReply,
  decodePowRequest,
  decodeSqrtRequest,
  decodeSumRequest,
  encodePowReply,
  encodePowRequest,
  encodeSqrtReply,
  encodeSqrtRequest,
  encodeSumReply,
  encodeSumRequest,
  powReplyBytes,
  readSmallSumNumber,
  readSqrtNumber,
  readSumNumber,
  sqrtReplyBytes,
} from "../../proto/codec.ts";

const root = new protobuf.Root();
for (const name of ["server_stream", "client_stream", "bidirectional_stream"]) {
  const source = await Deno.readTextFile(
    new URL(`../../proto/${name}.proto`, import.meta.url),
  );
  protobuf.parse(source, root, { keepCase: true });
}
const reference = {
  powRequest: root.lookupType("stream.ServerStreamReq"),
  powReply: root.lookupType("stream.ServerStreamResp"),
  sumRequest: root.lookupType("stream.ClientStreamReq"),
  sumReply: root.lookupType("stream.ClientStreamResp"),
  sqrtRequest: root.lookupType("stream.AllStreamReq"),
  sqrtReply: root.lookupType("stream.AllStreamResp"),
};

function referenceBytes(
  type: protobuf.Type,
  fields: Record<string, unknown>,
): Uint8Array {
  return new Uint8Array(type.encode(type.fromObject(fields)).finish());
}

/** What protobufjs reads in `message` for the field `field`. */
function referenceValue(
  type: protobuf.Type,
  { message, field }: { message: Uint8Array; field: string },
): string {
  const object = type.toObject(type.decode(message), {
    longs: String,
    defaults: true,
  });
  return String(object[field]);
}

function int64Samples(): bigint[] {
  const samples = [
    0n,
    1n,
    -1n,
    127n,
    128n,
    300n,
    -300n,
    2n ** 31n - 1n,
    2n ** 31n,
    -(2n ** 31n),
  ];
  samples.push(
    2n ** 32n,
    2n ** 32n - 1n,
    -(2n ** 32n),
    2n ** 53n + 1n,
    INT64_MAX,
    INT64_MIN,
  );
  for (let shift = 0n; shift < 63n; shift += 7n) {
    samples.push(2n ** shift, -(2n ** shift));
  }
  let seed = 12345n;
  for (let i = 0; i < 500; i++) {
    seed = (seed * 6364136223846793005n + 1442695040888963407n) &
      (2n ** 64n - 1n);
    samples.push(BigInt.asIntN(64, seed) >> BigInt(i % 64));
  }
  return samples;
}

Deno.test("encodeSumRequest() and the other int64 codecs match protobufjs byte for byte", async (t) => {
  const samples = int64Samples();
  const cases = [
    {
      name: "ServerStreamResp",
      type: reference.powReply,
      field: "number",
      encode: (v: bigint) => encodePowReply({ number: v }),
      decode: (b: Uint8Array) => decodePowReply(b).number,
    },
    {
      name: "ServerStreamResp as plain bytes (powReplyBytes)",
      type: reference.powReply,
      field: "number",
      encode: (v: bigint) => powReplyBytes({ number: v }),
      decode: (b: Uint8Array) => decodePowReply(b).number,
    },
    {
      name: "ClientStreamReq",
      type: reference.sumRequest,
      field: "number",
      encode: (v: bigint) => encodeSumRequest({ number: v }),
      decode: (b: Uint8Array) => decodeSumRequest(b).number,
    },
    {
      name: "ClientStreamResp",
      type: reference.sumReply,
      field: "sum",
      encode: (v: bigint) => encodeSumReply({ sum: v }),
      decode: (b: Uint8Array) => decodeSumRequest(b).number,
    },
  ];
  for (const { name, type, field, encode, decode } of cases) {
    await t.step(name, () => {
      for (const value of samples) {
        const ours = encode(value);
        const theirs = referenceBytes(type, { [field]: value.toString() });
        // protobufjs writes an explicitly set zero; proto3 encoders such as Go's leave it out.
        if (value !== 0n) {
          deepStrictEqual(new Uint8Array(ours), theirs, `${value}`);
        }
        strictEqual(
          referenceValue(type, { message: ours, field }),
          value.toString(),
        );
        strictEqual(decode(theirs), value);
      }
    });
  }
});

Deno.test("encodePowRequest() carries number and count like protobufjs", () => {
  for (const number of [0n, 2n, -7n, INT64_MIN, INT64_MAX]) {
    for (const count of [0, 1, 10, 40, 127, 128, 1_000_000, 2 ** 32 - 1]) {
      const ours = encodePowRequest({ number, count });
      const theirs = referenceBytes(reference.powRequest, {
        number: number.toString(),
        count,
      });
      deepStrictEqual(decodePowRequest(theirs), { number, count });
      const decoded = reference.powRequest.toObject(
        reference.powRequest.decode(ours),
        {
          longs: String,
          defaults: true,
        },
      );
      deepStrictEqual(decoded, { number: number.toString(), count });
    }
  }
});

Deno.test("encodeSqrtRequest() matches protobufjs, -0 and NaN included", () => {
  for (
    const value of [
      1,
      -1,
      0.5,
      Math.SQRT2,
      1e308,
      -1e-308,
      Infinity,
      -Infinity,
      -0,
      Number.NaN,
    ]
  ) {
    const ours = encodeSqrtRequest({ number: value });
    const theirs = referenceBytes(reference.sqrtRequest, { number: value });
    deepStrictEqual(new Uint8Array(ours), theirs, `${value}`);
    strictEqual(
      Object.is(decodeSqrtRequest(theirs).number, value),
      true,
      `${value}`,
    );
    const decoded = reference.sqrtReply.decode(
      encodeSqrtReply({ sqrt: value }),
    ) as unknown as {
      sqrt: number;
    };
    strictEqual(Object.is(decoded.sqrt, value), true, `${value}`);
    deepStrictEqual(
      sqrtReplyBytes({ sqrt: value }),
      new Uint8Array(encodeSqrtReply({ sqrt: value })),
      `${value}`,
    );
  }
  strictEqual(encodeSqrtRequest({ number: 0 }).length, 0);
  strictEqual(decodeSqrtRequest(new Uint8Array()).number, 0);
});

Deno.test("decodeSumRequest() and the other decoders take what other encoders send and refuse what is broken", async (t) => {
  await t.step("unknown fields are skipped, the last repeat wins", () => {
    // field 7 varint, field 8 length-delimited "hi", field 9 fixed32, field 1 twice.
    const bytes = new Uint8Array([
      0x38,
      0x05,
      0x42,
      0x02,
      0x68,
      0x69,
      0x4d,
      1,
      2,
      3,
      4,
      0x08,
      0x01,
      0x08,
      0x2a,
    ]);
    strictEqual(decodeSumRequest(bytes).number, 42n);
  });

  await t.step("an empty message is all zeros", () => {
    deepStrictEqual(decodePowRequest(new Uint8Array()), {
      number: 0n,
      count: 0,
    });
  });

  await t.step("truncated or malformed input is a RangeError", () => {
    throws(() => decodeSumRequest(new Uint8Array([0x08])), RangeError);
    throws(
      () =>
        decodeSumRequest(
          new Uint8Array([
            0x08,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0x01,
          ]),
        ),
      RangeError,
    );
    throws(
      () => decodeSqrtRequest(new Uint8Array([0x09, 1, 2, 3])),
      RangeError,
    );
    throws(
      () => decodeSumRequest(new Uint8Array([0x09, 0, 0, 0, 0, 0, 0, 0, 0])),
      RangeError,
    );
    throws(() => decodeSumRequest(new Uint8Array([0x42, 0x05, 1])), RangeError);
    throws(() => decodeSumRequest(new Uint8Array([0x00])), RangeError);
    throws(() => decodeSumRequest(new Uint8Array([0x0b])), RangeError);
  });

  await t.step("encoders refuse values that do not fit the field", () => {
    throws(() => encodeSumRequest({ number: 2n ** 63n }), RangeError);
    throws(() => encodePowRequest({ number: 1n, count: -1 }), RangeError);
    throws(() => encodePowRequest({ number: 1n, count: 2 ** 32 }), RangeError);
  });
});

Deno.test("readSmallSumNumber() and the other span readers read what protobufjs writes, in place", async (t) => {
  /** `message` inside a larger chunk, as the request reader hands it over. */
  function spanOf(message: Uint8Array): {
    bytes: Uint8Array;
    start: number;
    end: number;
  } {
    const bytes = new Uint8Array(message.length + 6).fill(0xff);
    bytes.set(message, 3);
    return { bytes, start: 3, end: 3 + message.length };
  }

  await t.step("a Sum's number below 2^28 reads without a bigint", () => {
    for (const number of [0, 1, 127, 128, 300, 2 ** 21, 2 ** 28 - 1]) {
      const span = spanOf(referenceBytes(reference.sumRequest, { number }));
      strictEqual(readSmallSumNumber(span), number);
      strictEqual(readSumNumber(span), BigInt(number));
    }
  });

  await t.step("any other Sum number is left to the full reader", () => {
    for (const number of [2n ** 28n, -1n, INT64_MAX, INT64_MIN]) {
      const span = spanOf(
        referenceBytes(reference.sumRequest, { number: number.toString() }),
      );
      strictEqual(readSmallSumNumber(span), -1);
      strictEqual(readSumNumber(span), number);
    }
    // The number's field after an unknown one, or repeated (the last wins): not the common
    // shape, though each starts like it.
    for (
      const [bytes, number] of [
        [[0x10, 0x01, 0x08, 0x05], 5n],
        [[0x08, 0x05, 0x08, 0x07], 7n],
      ] as const
    ) {
      const span = spanOf(new Uint8Array(bytes));
      strictEqual(readSmallSumNumber(span), -1);
      strictEqual(readSumNumber(span), number);
    }
  });

  await t.step("a Sqrt's number reads in either shape", () => {
    for (const number of [0, -0, 2.5, -1, 1e300, Number.NaN]) {
      const span = spanOf(referenceBytes(reference.sqrtRequest, { number }));
      strictEqual(Object.is(readSqrtNumber(span), number), true);
    }
    const unknownFirst = spanOf(
      new Uint8Array([0x10, 0x01, 0x09, ...new Uint8Array(8).fill(0)]),
    );
    strictEqual(readSqrtNumber(unknownFirst), 0);
  });

  await t.step("a broken message throws a RangeError", () => {
    throws(() => readSumNumber(spanOf(new Uint8Array([0x08]))), RangeError);
    throws(
      () => readSqrtNumber(spanOf(new Uint8Array([0x09, 0, 0]))),
      RangeError,
    );
  });
});
