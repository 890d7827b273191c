import { deepStrictEqual, throws } from "node:assert";
import { decodePowReply, decodePowRequest } from "../../proto/codec.ts";

/** A Pow reply (field 1 = 8) around an unknown field of each wire type, groups included. */
const WITH_UNKNOWN_FIELDS = new Uint8Array([
  ...[0x10, 0x96, 0x01], // field 2, varint 150
  ...[0x19, 1, 2, 3, 4, 5, 6, 7, 8], // field 3, fixed64
  ...[0x22, 2, 0xaa, 0xbb], // field 4, 2 bytes
  ...[0x2b], // field 5, start group
  ...[0x08, 1], //   field 1 inside the group, varint
  ...[0x33, 0x08, 2, 0x34], //   field 6, a nested group holding field 1
  ...[0x2c], // field 5, end group
  ...[0x3d, 1, 2, 3, 4], // field 7, fixed32
  ...[0x08, 8], // field 1, the value
]);

Deno.test("decodePowReply() skips unknown fields of every wire type", async (t) => {
  await t.step("groups, nested groups and scalars around the value", () => {
    deepStrictEqual(decodePowReply(WITH_UNKNOWN_FIELDS), { number: 8n });
    deepStrictEqual(decodePowRequest(WITH_UNKNOWN_FIELDS), {
      number: 8n,
      count: 150,
    });
  });

  await t.step("a group that does not end is a RangeError", () => {
    throws(() => decodePowReply(new Uint8Array([0x2b, 0x08, 1])), RangeError);
  });

  await t.step("a group closed by another field's end is a RangeError", () => {
    throws(() => decodePowReply(new Uint8Array([0x2b, 0x34])), RangeError);
  });

  await t.step("an end-group tag alone is a RangeError", () => {
    throws(() => decodePowReply(new Uint8Array([0x2c])), RangeError);
  });

  await t.step("groups nested too deeply are a RangeError", () => {
    const deep = new Uint8Array(2 * 200).fill(0x2b, 0, 200).fill(0x2c, 200);
    throws(() => decodePowReply(deep), RangeError);
  });
});
