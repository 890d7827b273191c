import { ok, strictEqual } from "node:assert";
import { DenoProcess, startCliServer } from "../_util/subprocess.ts";
import { delay } from "../_util/test_utils.ts";
import { fastPathsSwitchedOff } from "../_util/fast_paths_switch.ts";

const H2_PEER = new URL("../fixtures/h2_peer.py", import.meta.url).pathname;

/** How long the zero-window connection is held while the server's CPU time is measured. */
const HELD_MS = 5_000;

/**
 * The most CPU time the server may spend over the held period, as a share of its wall time.
 * A server that waits for its writes to be framed (which needs a WINDOW_UPDATE) spends next
 * to none (0-1.2% measured); one that looks again every turn of the event loop takes a core
 * (99% measured with such a writer), and 52-126% was reported once. 10% leaves a wide margin
 * both ways, and CPU time, unlike wall time, does not grow when a busy machine makes the
 * server wait for a core.
 */
const MAX_HELD_CPU_SHARE = 0.1;

/** Runs `program` with `args` and returns its stdout. */
async function output(program: string, args: string[]): Promise<string> {
  const { stdout, success } = await new Deno.Command(program, { args })
    .output();
  ok(success, `${program} failed`);
  return new TextDecoder().decode(stdout);
}

/**
 * The CPU time a process has used (user and system), in seconds, from `/proc/<pid>/stat`.
 * Read through `cat`, since Deno asks for `--allow-all` to read `/proc` itself.
 */
async function cpuSeconds(
  pid: number,
  ticksPerSecond: number,
): Promise<number> {
  const stat = await output("cat", [`/proc/${pid}/stat`]);
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15, the 12th and 13th after the name.
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** Starts the raw HTTP/2 peer (python3-h2) in `mode` against `address`. */
function startPeer(address: string, args: string[]): DenoProcess {
  const [hostname, port] = address.split(":");
  return DenoProcess.spawn([H2_PEER, hostname!, port!, ...args], {
    program: "/usr/bin/python3",
    stdin: true,
  });
}

Deno.test("serve waits without spinning for a peer whose flow-control window is zero", async (t) => {
  await using server = await startCliServer(["--port", "0", "--log", "none"]);
  const address = server.addresses[0]!;
  const ticksPerSecond = Number(await output("getconf", ["CLK_TCK"]));

  await t.step(
    "after a burst of calls cancelled after their first answer",
    async () => {
      await using canceller = startPeer(address, ["cancel-rate", "100", "3"]);
      if (fastPathsSwitchedOff()) {
        // With GRPC_STREAM_FAST_PATHS=off the frame tap does not take the resets of
        // answered calls, and nghttp2 ends such a connection after a few hundred cancels
        // (`tests/services/fault_test.ts` says more): the burst still ends, as it must
        // before the windows below are measured.
        await canceller.waitForLine(
          "stdout",
          /^(open|goaway [02]) \d+$/,
          10_000,
        );
        return;
      }
      const [, cancels] = await canceller.waitForLine(
        "stdout",
        /^open (\d+)$/,
        10_000,
      );
      ok(Number(cancels) >= 200, `Only ${cancels} calls were cancelled`);
    },
  );

  await t.step(
    "200 Pow calls held by a window of 0 cost the server no CPU",
    async () => {
      await using peer = startPeer(address, [
        "zero-window",
        "200",
        "1000000",
      ]);
      // The server takes 100 calls (its stream limit) and refuses the rest.
      await peer.waitForLine("stdout", /^started 100 100$/);
      // Let the calls' first replies settle in their streams before measuring.
      await delay(500);
      const cpuBefore = await cpuSeconds(server.process.pid, ticksPerSecond);
      const wallBefore = performance.now();
      await delay(HELD_MS);
      const cpu = await cpuSeconds(server.process.pid, ticksPerSecond) -
        cpuBefore;
      const wall = (performance.now() - wallBefore) / 1000;
      await peer.write("\n");
      // Still open, nothing sent past the window, no call reset by the server.
      await peer.waitForLine("stdout", /^held 100 0 100$/);
      ok(
        cpu / wall < MAX_HELD_CPU_SHARE,
        `The server used ${(100 * cpu / wall).toFixed(1)}% CPU (${
          cpu.toFixed(2)
        } s in ${wall.toFixed(1)} s) while the window was closed`,
      );
      strictEqual((await peer.finished()).code, 0);
    },
  );
});
