import { deepStrictEqual } from "node:assert";
import { DEFAULT_ADDRESSES } from "../../mod.ts";
import { planListening } from "../../cli/serve.ts";
import { ARTICLE_PORTS } from "./_article_ports.ts";

Deno.test("serve and the calling commands default to the article's ports", async (t) => {
  await t.step("serve with no --port plans 127.0.0.1:8081, 8082, 8083", () => {
    deepStrictEqual(planListening({}, "usage"), {
      hostname: "127.0.0.1",
      ports: ARTICLE_PORTS,
    });
  });

  await t.step("--port replaces the article's ports", () => {
    deepStrictEqual(planListening({ port: ["0"] }, "usage"), {
      hostname: "127.0.0.1",
      ports: [0],
    });
  });

  await t.step(
    "pow calls 8082, sum 8081 and sqrt 8083, as the article's clients",
    () => {
      deepStrictEqual(DEFAULT_ADDRESSES, {
        pow: "127.0.0.1:8082",
        sum: "127.0.0.1:8081",
        sqrt: "127.0.0.1:8083",
      });
    },
  );
});
