import { deepStrictEqual, throws } from "node:assert";
import { parseAddress } from "../../mod.ts";

Deno.test("parseAddress() takes apart the addresses the client dials", async (t) => {
  await t.step("host:port and [ipv6]:port", () => {
    deepStrictEqual(parseAddress("localhost:8082"), {
      hostname: "localhost",
      port: 8082,
    });
    deepStrictEqual(parseAddress("[::1]:0"), { hostname: "::1", port: 0 });
  });

  await t.step("refuses other forms with a TypeError", () => {
    for (
      const address of [
        "localhost",
        "127.0.0.1:65536",
        "a b:1",
        "dns:///localhost:1",
        "[zz]:1",
        "",
      ]
    ) {
      throws(() => parseAddress(address), TypeError, address);
    }
  });
});
