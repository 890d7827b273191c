import { deepStrictEqual, strictEqual } from "node:assert";
import { startServer } from "../../mod.ts";

const H2_PEER = new URL("../fixtures/h2_peer.py", import.meta.url).pathname;

/** Keeps the event loop busy, as a server on a loaded machine is between two accepts. */
function busyFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Nothing: the point is that nothing else runs.
  }
}

/** A raw HTTP/2 peer in `mode` against `server`, once it has said it is ready. */
async function readyPeer(
  server: { hostname: string; port: number },
  mode: string[],
): Promise<{
  process: Deno.ChildProcess;
  lines: AsyncIterator<string>;
  output: string;
}> {
  const process = new Deno.Command("/usr/bin/python3", {
    args: [H2_PEER, server.hostname, String(server.port), ...mode],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = process.stdout.pipeThrough(new TextDecoderStream())[
    Symbol.asyncIterator
  ]();
  let output = "";
  while (!output.includes("ready\n")) {
    const { value, done } = await lines.next();
    if (done) break;
    output += value;
  }
  return { process, lines, output };
}

Deno.test("close() answers a call whose connection waited in the accept queue", async () => {
  await using server = await startServer({ port: 0 });
  // A raw HTTP/2 peer connects and sends a call at once, as nginx does on a new upstream
  // connection, while the server's event loop is busy: the connection is complete in the kernel
  // but not yet accepted when the server starts to close.
  const { process: peer, lines, output: ready } = await readyPeer(server, [
    "queued-call",
    "200",
  ]);
  let output = ready;
  // The busy turn runs just before the timer that closes the listener (the drain period of 0
  // ms), with no accept in between: the peer's connection is still queued at the close.
  setTimeout(() => busyFor(1_500), 0);
  await server.close();
  // close() must not resolve while that connection is open (the peer keeps it 1 s after its
  // answer): a process exits once close() resolves, and resets the connections it still has.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ended = await Promise.race([
    peer.status.then(() => true),
    new Promise<false>((resolve) =>
      timer = setTimeout(() => resolve(false), 300)
    ),
  ]);
  clearTimeout(timer);
  if (!ended) peer.kill();
  for (let next = await lines.next(); !next.done; next = await lines.next()) {
    output += next.value;
  }
  strictEqual(output.trim().split("\n").at(-1), "answered 0 3");
  strictEqual(
    ended,
    true,
    "close() resolved while a connection was still open",
  );
});

Deno.test("close() ends a connection only once the peer has answered its SETTINGS", async () => {
  await using server = await startServer({ port: 0 });
  // The peer's call (a Sqrt it ends once answered) comes in on a connection accepted as the
  // server closes, as nginx opens one at that moment; the peer holds back its SETTINGS ACK
  // until 300 ms after the call's answer, as a busy nginx does. nginx fails a call answered
  // in full when the connection ends while it still owes such an answer.
  const { process: peer, lines, output: ready } = await readyPeer(server, [
    "late-answers",
    "200",
    "300",
  ]);
  let output = ready;
  setTimeout(() => busyFor(1_500), 0);
  await server.close();
  for (let next = await lines.next(); !next.done; next = await lines.next()) {
    output += next.value;
  }
  strictEqual((await peer.status).code, 0);
  deepStrictEqual(output.trim().split("\n").slice(1), [
    "answered 0 1",
    "closed after our answers",
  ]);
});
