/**
 * The close of a listening socket that resets no connection. Closing a listening socket resets
 * every connection the kernel has completed but the process has not yet accepted, and the peer
 * may already have sent a request on it: nginx then logs `recv() failed (104: Connection reset
 * by peer) while reading response header` and fails the call, since it never retries a request
 * it has sent. Deno accepts one connection at a time from JavaScript, so on a busy machine (a
 * long turn of the event loop) several can be waiting.
 *
 * The queue is first in, first out: once a connection the listener opens to itself (a
 * sentinel) is accepted, every connection queued before it has been. A worker of
 * `serve --workers N` listens on a socket of its own in a group sharing the port
 * (`SO_REUSEPORT`), where the kernel hands each new connection to one socket of the group by a
 * hash of its addresses: its sentinels go out several at a time, until one reaches its own
 * queue. In a worker listening through `node:cluster`'s round-robin handle, the queue is the
 * primary's (which hands a connection that a closed worker refuses to another worker): the
 * listener closes at once.
 *
 * @module
 */
import cluster from "node:cluster";
import net from "node:net";
import { listensOnOwnSocket } from "../internals/grpc_js_listen.ts";

/** The longest wait for the listener to accept the connections queued before its close. */
const ACCEPT_QUEUE_WAIT_MS = 1_000;

/** How long the last round, past {@linkcode ACCEPT_QUEUE_WAIT_MS}, may take at the most. */
const LAST_ROUND_WAIT_MS = 250;

/**
 * How long a round of sentinels in a shared group waits for one of them to be accepted here
 * before it sends more: the others went to other sockets of the group.
 */
const SHARED_ROUND_MS = 20;

/** How many sentinels a round sends into a group sharing the port (one reaches a lone socket). */
const SHARED_SENTINELS = 4;

/**
 * Holds back `close()` of `listener` until the connections already waiting in its accept queue
 * have been accepted: it closes in the callback that accepts one of its sentinels, unless
 * another connection came in during that round (a peer still connecting), when it probes again;
 * past {@linkcode ACCEPT_QUEUE_WAIT_MS}, at the next sentinel accepted whatever else came, or
 * {@linkcode LAST_ROUND_WAIT_MS} later at the most. The connections accepted this way are served
 * (and drained) like the others.
 *
 * @param listener A listening server whose `close()` is about to be called.
 * @returns A promise that resolves once the listener has closed.
 */
export function acceptQueuedBeforeClose(listener: net.Server): Promise<void> {
  const close = listener.close;
  let closed: () => void = () => {};
  const whenClosed = new Promise<void>((resolve) => closed = resolve);
  listener.close = function closeAfterQueue(
    callback?: (error?: Error) => void,
  ): net.Server {
    listener.close = close;
    const address = listener.address();
    const shared = listensOnOwnSocket(listener);
    if (
      address === null || typeof address === "string" ||
      (cluster.isWorker && !shared)
    ) {
      closed();
      return close.call(listener, callback);
    }
    let done = false;
    /**
     * The local ports of the sentinels still open and not yet accepted here. Only an open
     * socket holds its port: the port of one that has closed may come back as a peer's, which
     * would then be taken for a sentinel and reset.
     */
    const sentinelPorts = new Set<number>();
    /**
     * The ports of connections other than sentinels accepted since the round began. In a
     * shared group they include the other workers' sentinels while those close too, so the
     * workers keep probing each other until the longest wait, which keeps every socket of
     * the group open while a peer may still be connecting to it.
     */
    const others = new Set<number>();
    const accepted = new Set<number>();
    const sentinels: net.Socket[] = [];
    let roundTimer: ReturnType<typeof setTimeout> | undefined;
    function finish(): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(roundTimer);
      listener.off("connection", onConnection);
      for (const sentinel of sentinels) sentinel.destroy();
      close.call(listener, callback);
      closed();
    }
    // A round in which another connection came in means a peer is still connecting: one more
    // round, so that the close does not fall on the connections right behind it.
    function roundDone(): void {
      if (others.size === 0 || lastRound) finish();
      else startRound();
    }
    function onConnection(socket: net.Socket): void {
      const port = socket.remotePort;
      if (port !== undefined && sentinelPorts.has(port)) {
        sentinelPorts.delete(port);
        socket.destroy();
        roundDone();
      } else if (port !== undefined) {
        accepted.add(port);
        others.add(port);
      }
    }
    listener.on("connection", onConnection);
    const host = address.address === "0.0.0.0"
      ? "127.0.0.1"
      : address.address === "::"
      ? "::1"
      : address.address;
    // Without leave to connect to its own address (`--allow-net` naming only other hosts), or
    // with a listener that does not report connections (TLS), the close comes after the
    // longest wait or at once, as it would have.
    // Past the longest wait, one last round closes as soon as a sentinel is accepted, peers
    // still connecting or not: closing at the timer itself would reset whatever the queue
    // holds at that moment.
    let lastRound = false;
    let timer = setTimeout(() => {
      lastRound = true;
      timer = setTimeout(finish, LAST_ROUND_WAIT_MS);
      startRound();
    }, ACCEPT_QUEUE_WAIT_MS);
    const port = address.port;
    function startRound(): void {
      if (done) return;
      others.clear();
      accepted.clear();
      clearTimeout(roundTimer);
      const count = shared ? SHARED_SENTINELS : 1;
      let failed = 0;
      for (let index = 0; index < count; index++) {
        const sentinel = new net.Socket();
        sentinels.push(sentinel);
        sentinel.on("error", () => {
          // Another socket of the group closing refuses or resets one; none left is the end.
          failed += 1;
          if (failed === count) finish();
        });
        try {
          sentinel.connect({ host, port }, () => {
            const local = sentinel.localPort ?? -1;
            if (accepted.has(local)) {
              // Accepted before this callback ran: taken for another connection above.
              others.delete(local);
              roundDone();
              return;
            }
            sentinelPorts.add(local);
            sentinel.once("close", () => sentinelPorts.delete(local));
          });
        } catch {
          finish();
          return;
        }
      }
      if (shared) roundTimer = setTimeout(startRound, SHARED_ROUND_MS);
    }
    startRound();
    return listener;
  } as typeof listener.close;
  return whenClosed;
}
