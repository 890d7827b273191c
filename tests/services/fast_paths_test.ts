import { deepStrictEqual, strictEqual } from "node:assert";
import { FAST_PATHS } from "../../services/fast_paths.ts";
import { RUN_PERMISSIONS, runDeno } from "../_util/subprocess.ts";

const PROBE = new URL("../fixtures/fast_paths_probe.ts", import.meta.url).href;

interface ProbeRecord {
  answers: string;
  used: string[];
  missed: Record<string, string>;
  warnings: string[];
}

async function probe(mode: "use" | "fall-back"): Promise<
  ProbeRecord & { stderr: string[] }
> {
  const { code, stdout, stderr } = await runDeno([
    "run",
    ...RUN_PERMISSIONS,
    PROBE,
    mode,
  ]);
  strictEqual(code, 0, stderr.join("\n"));
  return { ...JSON.parse(stdout.at(-1)!) as ProbeRecord, stderr };
}

Deno.test("startServer() takes every fast path on the pinned grpc-js and Deno", async (t) => {
  const record = await probe("use");

  await t.step("the calls are answered", () => {
    strictEqual(record.answers, "62 5050 2,3,4");
  });

  await t.step("every fast path found the private fields it needs", () => {
    deepStrictEqual(record.missed, {});
    deepStrictEqual([...record.used].sort(), [...FAST_PATHS].sort());
  });

  await t.step("nothing was said about a fallback", () => {
    deepStrictEqual(record.warnings, []);
  });
});

Deno.test("a fast path that falls back says so once", async (t) => {
  const record = await probe("fall-back");

  await t.step("through the logger of the server running", () => {
    deepStrictEqual(record.warnings, [
      "Fast path off: call telemetry: a field for the test not found (the private fields of grpc-js 1.14.7 and Deno 2.9.6 it relies on changed); calls go on through the public API",
    ]);
  });

  await t.step("through console.warn when no server logs", () => {
    deepStrictEqual(
      record.stderr.filter((line) => line.startsWith("Fast path off")),
      [
        "Fast path off: reply writer: another field for the test not found (the private fields of grpc-js 1.14.7 and Deno 2.9.6 it relies on changed); calls go on through the public API",
      ],
    );
  });

  await t.step("the record names both", () => {
    deepStrictEqual(record.missed, {
      "call telemetry": "a field for the test",
      "reply writer": "another field for the test",
    });
  });
});
