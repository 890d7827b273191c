import { deepStrictEqual, strictEqual } from "node:assert";
import { FAST_PATHS } from "../../internals/_fast_path_record.ts";
import { DenoProcess, RUN_PERMISSIONS } from "../_util/subprocess.ts";
import {
  fastPathsSwitchedOff,
  SWITCHED_OFF_LINE,
} from "../_util/fast_paths_switch.ts";

const PROBE = new URL("../fixtures/fast_paths_probe.ts", import.meta.url).href;

/**
 * What the switch leaves on: the session guard's reach is the only door to the sessions for
 * workarounds with no public fallback (`internals/fast_paths.ts` says which).
 */
const ON_WHEN_SWITCHED_OFF = ["session guard"] as const;

interface ProbeRecord {
  answers: string;
  used: string[];
  missed: Record<string, string>;
  warnings: string[];
}

async function probe(
  mode: "use" | "fall-back",
  env: Record<string, string> = {},
): Promise<ProbeRecord & { stderr: string[] }> {
  await using process = DenoProcess.spawn(
    ["run", ...RUN_PERMISSIONS, PROBE, mode],
    { env },
  );
  const { code, stdout, stderr } = await process.finished();
  strictEqual(code, 0, stderr.join("\n"));
  return { ...JSON.parse(stdout.at(-1)!) as ProbeRecord, stderr };
}

Deno.test("startServer() takes every fast path on the pinned grpc-js and Deno", async (t) => {
  const record = await probe("use");

  await t.step("the calls are answered", () => {
    strictEqual(record.answers, "62 5050 2,3,4");
  });

  if (fastPathsSwitchedOff()) {
    // Run with GRPC_STREAM_FAST_PATHS=off (the probe inherits it), the promise under test is
    // the opposite one: no optimisation reaches a private field, and the server says so once.
    await t.step(
      "switched off, only the session guard's reach is taken",
      () => {
        deepStrictEqual(record.used, [...ON_WHEN_SWITCHED_OFF]);
        deepStrictEqual(record.missed, {});
        deepStrictEqual(record.warnings, [SWITCHED_OFF_LINE]);
      },
    );
    return;
  }

  await t.step("every fast path found the private fields it needs", () => {
    deepStrictEqual(record.missed, {});
    deepStrictEqual([...record.used].sort(), [...FAST_PATHS].sort());
  });

  await t.step("nothing was said about a fallback", () => {
    deepStrictEqual(record.warnings, []);
  });
});

Deno.test("startServer() takes no fast path with GRPC_STREAM_FAST_PATHS=off", async (t) => {
  const record = await probe("use", { GRPC_STREAM_FAST_PATHS: "off" });

  await t.step("the calls are answered through the public API", () => {
    strictEqual(record.answers, "62 5050 2,3,4");
  });

  await t.step("no optimisation reached its private fields", () => {
    deepStrictEqual(record.used, [...ON_WHEN_SWITCHED_OFF]);
  });

  await t.step("no field is reported missing: none was looked for", () => {
    deepStrictEqual(record.missed, {});
  });

  await t.step("the server's logger heard once, naming the variable", () => {
    deepStrictEqual(record.warnings, [SWITCHED_OFF_LINE]);
    deepStrictEqual(
      record.stderr.filter((line) => line.startsWith("Fast path")),
      [],
    );
  });
});

Deno.test("a fast path that falls back says so once", async (t) => {
  // The report of a missing field is made only while the paths are on: set it so even when
  // the suite runs with them off.
  const record = await probe("fall-back", { GRPC_STREAM_FAST_PATHS: "on" });

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
