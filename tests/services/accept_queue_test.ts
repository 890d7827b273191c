import { deepStrictEqual, ok } from "node:assert";
import net from "node:net";
import { acceptQueuedBeforeClose } from "../../services/accept_queue.ts";

/** Keeps the event loop busy, as a server on a loaded machine is between two accepts. */
function busyFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Nothing: the point is that nothing else runs.
  }
}

/** A listener sharing its port, answering each connection's first bytes with one line. */
async function listenShared(port: number): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    // After the request: a socket closed with unread data resets its connection.
    socket.once("data", () => socket.end("served\n"));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(
      { host: "127.0.0.1", port, reusePort: true, exclusive: true },
      resolve,
    );
  });
  return server;
}

/**
 * Peers that each connect after their delay (ms) from the line "go" on their stdin, send a
 * line at once as nginx sends its request, and print what they read back: "served", "reset"
 * or "refused".
 */
function peers(port: number, delays: readonly number[]): Deno.ChildProcess {
  const script = `
import socket, sys, threading, time
port = int(sys.argv[1])
results = {}
def peer(index, delay):
    time.sleep(delay / 1000)
    try:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"request\\n")
        data = b""
        while True:
            chunk = s.recv(100)
            if not chunk: break
            data += chunk
        results[index] = data.decode().strip() or "closed"
    except ConnectionResetError:
        results[index] = "reset"
    except ConnectionRefusedError:
        results[index] = "refused"
threads = [threading.Thread(target=peer, args=(i, int(d))) for i, d in enumerate(sys.argv[2:])]
print("ready", flush=True)
sys.stdin.readline()
for t in threads: t.start()
for t in threads: t.join()
print(" ".join(results[i] for i in range(len(threads))), flush=True)
`;
  return new Deno.Command("/usr/bin/python3", {
    args: ["-c", script, String(port), ...delays.map(String)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

Deno.test("acceptQueuedBeforeClose() resets no connection that came in behind its sentinel while the event loop was busy", async () => {
  const listener = await listenShared(0);
  const port = (listener.address() as net.AddressInfo).port;
  const closed = acceptQueuedBeforeClose(listener, { shared: true });
  const peer = peers(port, [5, 10, 15, 20, 25, 30]);
  const lines = peer.stdout.pipeThrough(new TextDecoderStream());
  const reader = lines.getReader();
  let output = "";
  while (!output.includes("ready\n")) output += (await reader.read()).value;
  // The first connection accepted after the close, the first round's sentinel, holds the
  // event loop: the peers' connections come in behind it meanwhile. (Deno sends a connect
  // only once the event loop runs, so a busy turn begun in the same turn as the close would
  // put them ahead of the sentinel instead.)
  let busy = true;
  listener.prependListener("connection", () => {
    if (busy) busyFor(150);
    busy = false;
  });
  const go = peer.stdin.getWriter();
  await go.write(new TextEncoder().encode("go\n"));
  await go.close();
  listener.close();
  await closed;
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    output += next.value;
  }
  await peer.status;
  const answers = output.trim().split("\n").at(-1)!.split(" ");
  deepStrictEqual(
    answers.filter((answer) => answer === "reset"),
    [],
    output,
  );
  // A peer later than the close is refused, which a proxy retries elsewhere; the busy turn
  // holds the close back past those that connected during it.
  ok(answers.includes("served"), output);
});

Deno.test("acceptQueuedBeforeClose() relies on Deno handing over every connection it took at once before a microtask runs", async () => {
  // The close follows its sentinel's batch of accepted connections in a microtask: were one
  // to run between two connections of a batch, the close would reset the rest of it.
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const order: string[] = [];
  let accepted = 0;
  server.on("connection", () => {
    const index = ++accepted;
    order.push(`connection ${index}`);
    queueMicrotask(() => order.push(`microtask ${index}`));
  });
  const connecting = Array.from(
    { length: 4 },
    () =>
      new Promise<void>((resolve) => {
        const socket = net.connect(port, "127.0.0.1", () => {
          // The server's accept, a turn or more later, is what is watched.
          resolve();
        });
        socket.on("error", () => resolve());
        socket.on("close", () => {});
        socket.resume();
      }),
  );
  // Deno sends the connects once this turn ends; the next turn, held busy, lets all four
  // reach the kernel's queue before the listener is polled.
  setTimeout(() => busyFor(100), 0);
  await Promise.all(connecting);
  while (accepted < 4) await new Promise((resolve) => setTimeout(resolve, 10));
  await new Promise<void>((resolve) => server.close(() => resolve()));
  deepStrictEqual(order, [
    "connection 1",
    "connection 2",
    "connection 3",
    "connection 4",
    "microtask 1",
    "microtask 2",
    "microtask 3",
    "microtask 4",
  ]);
});
