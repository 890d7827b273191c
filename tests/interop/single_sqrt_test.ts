import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import { startServer } from "../../mod.ts";
import { PYTHON } from "../peers/peers.ts";
import { recordingLogger } from "../_util/test_utils.ts";

const ROOT = new URL("../../", import.meta.url);
const CLIENT = new URL("../fixtures/reflection_client.py", import.meta.url);

/** What `tests/fixtures/reflection_client.py` prints. */
interface ReflectedCall {
  services: string[];
  method: {
    input: string;
    output: string;
    clientStreaming: boolean;
    serverStreaming: boolean;
  };
  answers: ({ reply: Record<string, unknown> } | {
    code: string;
    details: string;
  })[];
}

/**
 * Calls `method` the way grpcurl does, from a gRPC C-core client that learns the method and
 * its messages from the server's reflection alone.
 */
async function reflectedCall(
  address: string,
  call: { method: string; requests: string[] },
): Promise<ReflectedCall> {
  const output = await new Deno.Command(PYTHON, {
    args: ["-B", CLIENT.pathname, address, call.method, ...call.requests],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  strictEqual(output.code, 0, stderr);
  return JSON.parse(new TextDecoder().decode(output.stdout)) as ReflectedCall;
}

/** The section of docs/wire.md that documents the unary Sqrt. */
async function unarySqrtSection(): Promise<string> {
  const wire = await Deno.readTextFile(new URL("docs/wire.md", ROOT));
  const [, section] = /^## The unary Sqrt: `stream\.Single`\n([\s\S]*?)^## /m
    .exec(wire) ?? [];
  ok(section !== undefined, "docs/wire.md has no section on stream.Single");
  return section.replaceAll("\n", " ");
}

Deno.test("stream.Single/Sqrt answers a C-core client that knows it only from reflection, as docs/wire.md says", async (t) => {
  const logger = recordingLogger();
  await using server = await startServer({ port: 0, logger });
  const section = await unarySqrtSection();
  const result = await reflectedCall(server.addresses[0]!, {
    method: "stream.Single/Sqrt",
    requests: ['{"number": 81}', '{"number": 2}', '{"number": -1}'],
  });

  await t.step(
    "reflection lists the demo's services and stream.Single, each documented",
    async () => {
      const ours = result.services.filter((name) => name.startsWith("stream."));
      deepStrictEqual(ours, [
        "stream.BidirectionalStreamServer",
        "stream.ClientStream",
        "stream.ServerStream",
        "stream.Single",
      ]);
      const wire = await Deno.readTextFile(new URL("docs/wire.md", ROOT));
      const readme = await Deno.readTextFile(new URL("README.md", ROOT));
      for (const name of ours) {
        ok(
          wire.includes(name) || readme.includes(name),
          `${name} is listed by reflection but documented nowhere`,
        );
      }
    },
  );

  await t.step(
    "the method is unary on the bidirectional Sqrt's messages, as documented",
    () => {
      match(
        section,
        /`stream\.Single\/Sqrt` \(`proto\/single\.proto`\), a unary call/,
      );
      match(section, /one `AllStreamReq` and answers one `AllStreamResp`/);
      deepStrictEqual(result.method, {
        input: "stream.AllStreamReq",
        output: "stream.AllStreamResp",
        clientStreaming: false,
        serverStreaming: false,
      });
    },
  );

  await t.step(
    "a number gets its root; a negative one INVALID_ARGUMENT, logged as Single Sqrt",
    async () => {
      match(
        section,
        /a negative number\s+is `INVALID_ARGUMENT`, logged as `Single Sqrt …`/,
      );
      deepStrictEqual(result.answers.slice(0, 2), [
        { reply: { sqrt: 9 } },
        { reply: { sqrt: Math.SQRT2 } },
      ]);
      const refused = result.answers[2]!;
      ok("code" in refused, JSON.stringify(refused));
      strictEqual(refused.code, "INVALID_ARGUMENT");
      match(refused.details, /-1/);
      await logger.waitFor(/^warn: Single Sqrt refused: -1/);
    },
  );
});
