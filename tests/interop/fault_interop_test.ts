/**
 * grpc-go and gRPC C-core (python grpcio) clients against `serve --fault`: what another
 * stack's tests see of each fault (docs/faults.md says the same).
 */
import { deepStrictEqual, notStrictEqual } from "node:assert";
import { GO_PEER, PYTHON_PEER } from "../peers/peers.ts";
import { startCliServer } from "../_util/subprocess.ts";

for (const peer of [GO_PEER, PYTHON_PEER]) {
  Deno.test(`${peer.name} client against serve --fault`, async (t) => {
    await t.step(
      "status, drop stream and drop connection on one client",
      async () => {
        await using server = await startCliServer([
          "--port",
          "0",
          "--log",
          "calls",
          "--fault",
          "Sum:after=3:status=UNAVAILABLE",
          "--fault",
          "Pow:after=2:drop=stream",
          "--fault",
          "Sqrt:after=1:drop=connection",
        ]);
        const results = await peer.call(server.addresses[0]!, [
          { method: "sum", upTo: 10 },
          { method: "pow", number: "2", count: 5 },
          { method: "sum", numbers: ["1", "2"] },
          { method: "sqrt", numbers: ["4", "9"], hold: true },
          { method: "sum", numbers: ["3", "4"] },
        ]);
        deepStrictEqual(
          results.map(({ code, received }) => [code, received]),
          [
            ["UNAVAILABLE", 0],
            // RST_STREAM INTERNAL_ERROR after the two replies before it.
            ["INTERNAL", 2],
            ["OK", 1],
            // The cut connection: the one answer before it, then UNAVAILABLE.
            ["UNAVAILABLE", 1],
            ["OK", 1],
          ],
        );
        deepStrictEqual(results[0]!.details, "Fault injected by the server");
        deepStrictEqual(results[2]!.values, ["3"]);
        deepStrictEqual(results[4]!.values, ["7"]);
        // From the server's side: the reset stream left the connection up, and the cut one was
        // replaced by a new connection.
        const callers = await server.process.waitForLines(
          "stdout",
          /^(?:Pow|Sum|Sqrt) called by (\S+)$/,
          { count: 5 },
        );
        const ports = callers.map((match) => match[1]!);
        deepStrictEqual(new Set(ports.slice(0, 4)).size, 1, ports.join(" "));
        notStrictEqual(ports[4], ports[0]);
      },
    );
    await t.step("delay", async () => {
      await using server = await startCliServer([
        "--port",
        "0",
        "--fault",
        "Sqrt:delay=400",
      ]);
      const results = await peer.call(server.addresses[0]!, [
        { method: "sqrt", numbers: ["4"], timeoutMs: 100 },
        { method: "sqrt", numbers: ["4"] },
      ]);
      // The delay holds the answer past the first call's deadline, not the second's.
      deepStrictEqual(
        results.map(({ code, values }) => [code, values ?? []]),
        [["DEADLINE_EXCEEDED", []], ["OK", ["2"]]],
      );
    });
  });
}
