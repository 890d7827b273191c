import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { DenoProcess, RUN_PERMISSIONS } from "../_util/subprocess.ts";
import { SWITCHED_OFF_LINE } from "../_util/fast_paths_switch.ts";

const PROBE = new URL("../fixtures/stream_state_probe.ts", import.meta.url)
  .href;

interface ProbeRecord {
  before: { window?: number; unsent: boolean };
  after: { window?: number; unsent: boolean; again?: number };
  used: string[];
  missed: Record<string, string>;
  warnings: string[];
}

async function probe(env: Record<string, string>): Promise<ProbeRecord> {
  await using process = DenoProcess.spawn(["run", ...RUN_PERMISSIONS, PROBE], {
    env,
  });
  const { code, stdout, stderr } = await process.finished();
  strictEqual(code, 0, stderr.join("\n"));
  return JSON.parse(stdout.at(-1)!) as ProbeRecord;
}

const MISSING_LINE =
  /^Fast path off: Deno stream state: Deno's Http2Stream\.state\.state and localWindowSize not found \(.*\); calls go on through the public API$/;

Deno.test("the client's view of Deno's stream state says once when its fields are gone", async (t) => {
  for (
    const [name, env] of [
      ["with the fast paths on", { GRPC_STREAM_FAST_PATHS: "on" }],
      ["with GRPC_STREAM_FAST_PATHS=off, which leaves it on", {
        GRPC_STREAM_FAST_PATHS: "off",
      }],
    ] as const
  ) {
    await t.step(name, async () => {
      const record = await probe(env);
      ok(
        typeof record.before.window === "number" && record.before.window > 0,
        `window ${record.before.window} on a live stream`,
      );
      strictEqual(record.before.unsent, false);
      // Gone, the fields give the answers of a stream whose HEADERS went long ago.
      deepStrictEqual(record.after, { unsent: false });
      deepStrictEqual(Object.keys(record.missed), ["Deno stream state"]);
      const said = record.warnings.filter((line) => line !== SWITCHED_OFF_LINE);
      strictEqual(said.length, 1, said.join("\n"));
      ok(MISSING_LINE.test(said[0]!), said[0]!);
      // A workaround, not one of the server's fast paths: it never counts as used.
      deepStrictEqual(record.used, []);
    });
  }
});
