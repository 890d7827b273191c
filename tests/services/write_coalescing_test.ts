import { ok, strictEqual } from "node:assert";
import net from "node:net";
import { createClient, startServer } from "../../mod.ts";

/** Calls sent together in one turn, so that the server reads them in one socket read. */
const CALLS = 20;
/**
 * The most socket writes the answers may take: two when the calls arrive in one read (the
 * answers, then the trailers Deno sends a turn later), more on a busy machine that reads them
 * in pieces, 60 without coalescing.
 */
const MAX_WRITES = CALLS / 2;

type WriteMethod = "_write" | "_writev";

/**
 * Counts the writes the server's sockets hand to the system (`_write` and `_writev` of every
 * `net.Socket` whose local port is `port()`), until disposed.
 */
function countSocketWrites(port: () => number): {
  readonly count: number;
  reset(): void;
  [Symbol.dispose](): void;
} {
  const prototype = net.Socket.prototype as unknown as Record<
    WriteMethod,
    (this: net.Socket, ...args: unknown[]) => unknown
  >;
  const originals = {
    _write: prototype._write,
    _writev: prototype._writev,
  };
  let count = 0;
  for (const method of ["_write", "_writev"] as const) {
    const original = originals[method];
    prototype[method] = function (this: net.Socket, ...args: unknown[]) {
      if (this.localPort === port()) count++;
      return original.apply(this, args);
    };
  }
  return {
    get count(): number {
      return count;
    },
    reset(): void {
      count = 0;
    },
    [Symbol.dispose](): void {
      prototype._write = originals._write;
      prototype._writev = originals._writev;
    },
  };
}

Deno.test("the server answers calls read together in a few socket writes", async (t) => {
  let port = -1;
  using writes = countSocketWrites(() => port);
  await using server = await startServer({ port: 0 });
  port = server.port;
  using client = createClient(`127.0.0.1:${port}`);
  // Connected and warm: the counts below are the calls' answers alone.
  strictEqual(await client.sum([1, 2]), 3n);

  // Each answer is three frames (HEADERS, DATA, trailers), and Deno's node:http2 writes every
  // frame to the socket on its own: 60 writes for 20 calls, without coalescing.
  await t.step("pow", async () => {
    writes.reset();
    const answers = await Promise.all(
      Array.from(
        { length: CALLS },
        (_, i) => Array.fromAsync(client.pow(i, { count: 2 })),
      ),
    );
    answers.forEach((powers, i) => {
      strictEqual(powers.join(), `1,${i}`);
    });
    ok(
      writes.count <= MAX_WRITES,
      `${writes.count} socket writes for ${CALLS} calls`,
    );
  });

  await t.step("sum", async () => {
    writes.reset();
    const totals = await Promise.all(
      Array.from({ length: CALLS }, (_, i) => client.sum([i, 1, 2])),
    );
    totals.forEach((total, i) => strictEqual(total, BigInt(i + 3)));
    ok(
      writes.count <= MAX_WRITES,
      `${writes.count} socket writes for ${CALLS} calls`,
    );
  });

  await t.step("sqrt", async () => {
    writes.reset();
    const roots = await Promise.all(
      Array.from(
        { length: CALLS },
        (_, i) => Array.fromAsync(client.sqrt([i * i])),
      ),
    );
    roots.forEach((answers, i) => strictEqual(answers.join(), String(i)));
    ok(
      writes.count <= MAX_WRITES,
      `${writes.count} socket writes for ${CALLS} calls`,
    );
  });
});
