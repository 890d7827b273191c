import { deepStrictEqual, strictEqual } from "node:assert";
import { killedGoClient, type PeerCall, PYTHON } from "../peers/peers.ts";
import { DenoProcess, startCliServer } from "../_util/subprocess.ts";
import type { ServerProcess } from "../_util/subprocess.ts";
import { delay } from "../_util/test_utils.ts";
import {
  fastPathsSwitchedOff,
  switchWarnings,
} from "../_util/fast_paths_switch.ts";

const H2_PEER = new URL("../fixtures/h2_peer.py", import.meta.url).pathname;

/** As many clients as were killed in the reports of calls going unlogged. */
const CLIENTS = 20;

/** How long the server may take to log a dead call's end once its clients are gone. */
const LOG_WAIT_MS = 5_000;

/** Every line of the server's log, stdout (info) and stderr (warnings, failures) together. */
function serverLog(server: ServerProcess): string[] {
  return [...server.process.stdout, ...server.process.stderr];
}

/**
 * Waits until `enough` says that the server has logged enough lines matching `outcome`, or gives
 * up after {@linkcode LOG_WAIT_MS} (the caller's assertions then say what is missing), and
 * a moment more for any line that should not come.
 *
 * @returns The lines matching `outcome`.
 */
async function outcomeLines(
  server: ServerProcess,
  { outcome, enough }: {
    outcome: RegExp;
    enough: (outcomes: number, log: string[]) => boolean;
  },
): Promise<string[]> {
  const until = Date.now() + LOG_WAIT_MS;
  while (Date.now() < until) {
    const log = serverLog(server);
    if (enough(log.filter((line) => outcome.test(line)).length, log)) break;
    await delay(50);
  }
  await delay(200);
  return serverLog(server).filter((line) => outcome.test(line));
}

/** A call of grpc-go's client killed `index * 5` ms after its 20,000th message. */
function killedCall(call: PeerCall, index: number): PeerCall {
  // Spread the kills so that they land on every part of the stream: between frames, in the
  // middle of a message split by flow control, with messages still in the socket.
  return { ...call, killAfter: 20_000, killDelayMs: index * 5, quiet: true };
}

Deno.test("serve logs how each call of a killed grpc-go client ended", async (t) => {
  const cases: {
    method: string;
    call: PeerCall;
    start: RegExp;
    outcome: RegExp;
    cancelled: RegExp;
  }[] = [
    {
      method: "Sum",
      call: { method: "sum", upTo: 100_000_000 },
      start: /^Sum called by /,
      outcome: /^Sum (cancelled|completed|failed|refused|ended)/,
      cancelled: /^Sum cancelled by the client$/,
    },
    {
      method: "Sqrt",
      call: { method: "sqrt", upTo: 100_000_000 },
      start: /^Sqrt called by /,
      outcome: /^Sqrt (cancelled|completed|failed|refused|ended)/,
      cancelled: /^Sqrt cancelled by the client after \d+ numbers$/,
    },
    {
      method: "Pow",
      call: { method: "pow", number: "1", count: 1_000_000 },
      start: /^Pow called by /,
      // Also the lines of a call that never started: a started one must not get one too.
      outcome: /^Pow(\(1\))? (cancelled|completed|stopped|refused|ended)/,
      cancelled: /^Pow\(1\) cancelled after \d+ of 1000000 powers$/,
    },
  ];
  for (const { method, call, start, outcome, cancelled } of cases) {
    // With GRPC_STREAM_FAST_PATHS=off grpc-js writes each 7-byte power as a DATA frame of its
    // own, about 20 times slower than the reply writer's chunks: 20 clients would not all
    // reach their 20,000th power within the peer's 30 s, so 5 show the same outcome.
    const clients = method === "Pow" && fastPathsSwitchedOff() ? 5 : CLIENTS;
    await t.step(
      `${clients} ${method} clients, each killed after 20,000 messages, are ${clients} cancelled calls`,
      async () => {
        await using server = await startCliServer([
          "--port",
          "0",
          "--log",
          "calls",
        ]);
        const address = server.addresses[0]!;
        const sent = await Promise.all(
          Array.from(
            { length: clients },
            (_, index) => killedGoClient(address, killedCall(call, index)),
          ),
        );
        // Each client got 20,000 messages through, past the first 64 KiB window the server grants:
        // the server saw every call, and logged its start.
        deepStrictEqual(sent, Array(clients).fill(20_000));
        const outcomes = await outcomeLines(server, {
          outcome,
          enough: (count, log) =>
            count >= log.filter((line) => start.test(line)).length,
        });
        const started = serverLog(server).filter((line) => start.test(line));
        strictEqual(started.length, clients, serverLog(server).join("\n"));
        deepStrictEqual(
          outcomes.filter((line) => !cancelled.test(line)),
          [],
          "Every killed call ends cancelled, not otherwise",
        );
        strictEqual(outcomes.length, clients, "One outcome line per call");
      },
    );
  }
});

Deno.test("serve logs a call whose client dies in the middle of a message as cancelled", async (t) => {
  const cases = [
    {
      mode: "cut-sum",
      received: /^Recved 1$/,
      outcome: /^Sum (cancelled|failed)/,
      cancelled: "Sum cancelled by the client",
    },
    {
      mode: "cut-sqrt",
      received: /^Recv Data:1$/,
      outcome: /^Sqrt (cancelled|failed)/,
      cancelled: "Sqrt cancelled by the client after 1 numbers",
    },
  ];
  for (const { mode, received, outcome, cancelled } of cases) {
    await t.step(`${mode}: killed with half a message sent`, async () => {
      await using server = await startCliServer(["--port", "0"]);
      const [host, port] = server.addresses[0]!.split(":");
      await using peer = DenoProcess.spawn([H2_PEER, host!, port!, mode], {
        program: PYTHON,
        stdin: true,
      });
      await peer.waitForLine("stdout", /^sent$/);
      // The server took the whole message, and with it the first bytes of the next one.
      await server.process.waitForLine("stdout", received);
      // The peer reads what the server sent, so that its death closes the connection with a
      // FIN: the way in which Deno ends the call's request stream before it closes it.
      await peer.write("\n");
      await peer.waitForLine("stdout", /^read$/);
      peer.kill("SIGKILL");
      strictEqual((await peer.finished()).code, 137);
      deepStrictEqual(
        await outcomeLines(server, { outcome, enough: (count) => count >= 1 }),
        [cancelled],
      );
    });
  }
});

Deno.test("serve logs how a Pow or unary Sqrt call ended before its request arrived", async (t) => {
  // grpc-js runs these handlers only once the request message and END_STREAM are in: the
  // peer sends the HEADERS alone (or with END_STREAM and no message).
  const methods = [
    { method: "Pow", path: "/stream.ServerStream/Pow" },
    { method: "Single Sqrt", path: "/stream.Single/Sqrt" },
  ];
  const ends: {
    end: string;
    mode: string;
    finish: (peer: DenoProcess) => Promise<void>;
    line: (method: string, path: string) => string;
  }[] = [
    {
      end: "killed after its HEADERS",
      mode: "headers-only",
      async finish(peer): Promise<void> {
        peer.kill("SIGKILL");
        strictEqual((await peer.finished()).code, 137);
      },
      line: (method) =>
        `${method} ended before its request arrived: connection closed`,
    },
    {
      end: "reset (CANCEL) after its HEADERS",
      mode: "headers-only",
      async finish(peer): Promise<void> {
        await peer.write("\n");
        await peer.waitForLine("stdout", /^reset$/);
      },
      line: (method) =>
        `${method} cancelled by the client before its request arrived`,
    },
    {
      end: "ended with no message",
      mode: "no-message",
      async finish(peer): Promise<void> {
        strictEqual((await peer.finished()).code, 0);
      },
      line: (method, path) =>
        `${method} failed before it started: UNIMPLEMENTED: Received no request message for server streaming method ${path}`,
    },
  ];
  for (const { method, path } of methods) {
    for (const { end, mode, finish, line } of ends) {
      await t.step(`${method}: ${end}`, async () => {
        await using server = await startCliServer([
          "--port",
          "0",
          "--log",
          "calls",
        ]);
        const [host, port] = server.addresses[0]!.split(":");
        await using peer = DenoProcess.spawn(
          [H2_PEER, host!, port!, mode, path],
          { program: PYTHON, stdin: true },
        );
        // The peer has its PING answered (headers-only) or its status (no-message): the
        // server has read the call's HEADERS.
        await peer.waitForLine("stdout", /^(sent|answered 12)$/);
        await finish(peer);
        await outcomeLines(server, {
          outcome: /./,
          enough: (_, log) => log.some((logged) => logged.startsWith(method)),
        });
        const log = serverLog(server).filter((logged) =>
          !logged.startsWith("Serving")
        );
        // With GRPC_STREAM_FAST_PATHS=off the server also says so once, as it starts; no
        // handler ran, so the call is still told unstarted (the call starts' fallback only
        // stops telling once a handler could not mark its call).
        const warnings = switchWarnings();
        deepStrictEqual(
          log.filter((logged) => warnings.includes(logged)),
          warnings,
        );
        deepStrictEqual(
          log.filter((logged) => !warnings.includes(logged)),
          [line(method, path)],
          "One line, for how the call ended",
        );
      });
    }
  }
});
