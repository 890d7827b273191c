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
 * Only a sentinel of the latest round, accepted soon after it was sent, proves the queue empty:
 * one that waited (an earlier round's, or any on a busy event loop) can have peers'
 * connections queued right behind it, which the close would reset. Deno often accepts a
 * connection before the sentinel's own connect callback has run, so a sentinel connects from a
 * local port it chose, known at its accept; without leave to bind that port (`--allow-net`
 * naming the listener's host and port only) it lets the kernel choose, and is known once its
 * connect callback has run. The close itself waits for the end of the batch of connections
 * Deno took from the kernel with the sentinel: closing inside the callback of one of them
 * would reset the others.
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

/**
 * How long a round's sentinel may take to be accepted for the close to follow it: the
 * connections that came in behind it while it waited would be reset.
 */
const QUICK_ROUND_MS = 5;

/** How many sentinels a round sends into a group sharing the port (one reaches a lone socket). */
const SHARED_SENTINELS = 4;

/** How often a closed socket of a group asks whether the others have closed too. */
const GROUP_CLOSED_POLL_MS = 50;

/** The longest wait for the other sockets of a group to close. */
const GROUP_CLOSED_WAIT_MS = 1_500;

/** Options for {@linkcode acceptQueuedBeforeClose}. */
export interface AcceptQueueOptions {
  /**
   * Whether the listener is one socket of a group sharing its port (`SO_REUSEPORT`).
   *
   * @default {listensOnOwnSocket(listener)}
   */
  shared?: boolean;
}

/**
 * Holds back `close()` of `listener` until the connections already waiting in its accept queue
 * have been accepted: it closes in the callback that accepts a sentinel of the latest round,
 * unless another connection came in during that round (a peer still connecting) or the
 * sentinel waited longer than {@linkcode QUICK_ROUND_MS}, when it probes again; past
 * {@linkcode ACCEPT_QUEUE_WAIT_MS}, at the next sentinel accepted whatever else came, or
 * {@linkcode LAST_ROUND_WAIT_MS} later at the most. The connections accepted this way are
 * served (and drained) like the others.
 *
 * @param listener A listening server whose `close()` is about to be called.
 * @param options Whether the listener shares its port.
 * @returns A promise that resolves once the listener has closed.
 */
export function acceptQueuedBeforeClose(
  listener: net.Server,
  options: AcceptQueueOptions = {},
): Promise<void> {
  const close = listener.close;
  const { promise, resolve } = Promise.withResolvers<void>();
  listener.close = function closeAfterQueue(
    callback?: (error?: Error) => void,
  ): net.Server {
    listener.close = close;
    const address = listener.address();
    const shared = options.shared ?? listensOnOwnSocket(listener);
    if (
      address === null || typeof address === "string" ||
      (cluster.isWorker && !shared)
    ) {
      resolve();
      return close.call(listener, callback);
    }
    new QueueFlush(listener, {
      address,
      shared,
      close: () => {
        close.call(listener, callback);
        if (shared) portRefuses(address).then(() => resolve());
        else resolve();
      },
    }).start();
    return listener;
  } as typeof listener.close;
  return promise;
}

/** Where a flush stands: probing, probing past its longest wait, or done. */
type FlushState =
  | { kind: "probing"; round: number; others: number; startedAt: number }
  | { kind: "last round"; round: number }
  | { kind: "closed" };

/** The ports a sentinel may choose to connect from: above those Linux picks itself. */
const SENTINEL_PORTS = { first: 61_000, count: 4_500 };

/** The rounds of sentinels before one listener's close. */
class QueueFlush {
  #state: FlushState = {
    kind: "probing",
    round: 0,
    others: 0,
    startedAt: performance.now(),
  };
  readonly #listener: net.Server;
  readonly #host: string;
  readonly #port: number;
  readonly #shared: boolean;
  readonly #close: () => void;
  /** By port, the round of each sentinel whose port is known and which is not yet accepted. */
  readonly #sentinelRounds = new Map<number, number>();
  /** The ports of connections accepted this round and not known as sentinels when accepted. */
  readonly #acceptedThisRound = new Set<number>();
  readonly #sentinels: net.Socket[] = [];
  #roundTimer: ReturnType<typeof setTimeout> | undefined;
  #waitTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #onConnection = (socket: net.Socket): void => this.#accepted(socket);

  constructor(
    listener: net.Server,
    { address, shared, close }: {
      address: net.AddressInfo;
      shared: boolean;
      close: () => void;
    },
  ) {
    this.#listener = listener;
    this.#shared = shared;
    this.#close = close;
    this.#port = address.port;
    this.#host = ownHost(address);
  }

  start(): void {
    this.#listener.on("connection", this.#onConnection);
    this.#waitTimer = setTimeout(() => {
      if (this.#state.kind !== "probing") return;
      this.#state = { kind: "last round", round: this.#state.round };
      this.#waitTimer = setTimeout(() => this.#finish(), LAST_ROUND_WAIT_MS);
      this.#startRound();
    }, ACCEPT_QUEUE_WAIT_MS);
    this.#startRound();
  }

  #finish(): void {
    if (this.#state.kind === "closed") return;
    this.#state = { kind: "closed" };
    clearTimeout(this.#waitTimer);
    clearTimeout(this.#roundTimer);
    this.#listener.off("connection", this.#onConnection);
    for (const sentinel of this.#sentinels) sentinel.destroy();
    // After the connections Deno took from the kernel with the sentinel: it takes every
    // connection ready at once and hands them over one callback each, and a close inside one
    // of those callbacks resets the rest (`internal_backlog.clear()` in its `uv_close`). A
    // microtask runs once they all have (`accept_queue_test.ts` checks it), sooner than a
    // `setImmediate`: a connection reaching the kernel between the last accept and the close
    // is reset, and under load a `setImmediate` left it 3.4 ms or more in one close of ten,
    // a microtask 0.2 ms.
    queueMicrotask(this.#close);
  }

  /** A free port of {@linkcode SENTINEL_PORTS} this process may bind, if it may. */
  #localPort(): number | undefined {
    const port = SENTINEL_PORTS.first +
      Math.floor(Math.random() * SENTINEL_PORTS.count);
    if (this.#sentinelRounds.has(port)) return undefined;
    return mayUse(this.#host, port) ? port : undefined;
  }

  #startRound(): void {
    const state = this.#state;
    if (state.kind === "closed") return;
    const round = state.round + 1;
    this.#state = state.kind === "probing"
      ? { kind: "probing", round, others: 0, startedAt: performance.now() }
      : { kind: "last round", round };
    this.#acceptedThisRound.clear();
    clearTimeout(this.#roundTimer);
    const count = this.#shared ? SHARED_SENTINELS : 1;
    let failed = 0;
    for (let index = 0; index < count; index++) {
      const sentinel = new net.Socket();
      this.#sentinels.push(sentinel);
      const localPort = this.#localPort();
      if (localPort !== undefined) this.#sentinelRounds.set(localPort, round);
      sentinel.on("error", (error: NodeJS.ErrnoException) => {
        if (localPort !== undefined) this.#sentinelRounds.delete(localPort);
        if (error.code === "EADDRINUSE") {
          // The port it chose is taken: another round picks others.
          if (this.#state.kind !== "closed" && round === this.#state.round) {
            this.#startRound();
          }
          return;
        }
        // Another socket of the group closing refuses or resets one; none left is the end.
        failed += 1;
        if (failed === count) this.#finish();
      });
      try {
        sentinel.connect(
          {
            host: this.#host,
            port: this.#port,
            ...(localPort === undefined
              ? {}
              : { localAddress: this.#host, localPort }),
          },
          () => {
            if (localPort === undefined) this.#connected(sentinel, round);
          },
        );
      } catch {
        // Without leave to connect to its own address (`--allow-net` naming only other
        // hosts), the close comes at once, as it would have.
        this.#finish();
        return;
      }
    }
    if (this.#shared) {
      this.#roundTimer = setTimeout(() => this.#startRound(), SHARED_ROUND_MS);
    }
  }

  /** The connect callback of a sentinel of `round` that let the kernel choose its port. */
  #connected(sentinel: net.Socket, round: number): void {
    const port = sentinel.localPort ?? -1;
    if (!this.#acceptedThisRound.delete(port)) {
      // Only an open socket holds its port: a closed one's may come back as a peer's.
      this.#sentinelRounds.set(port, round);
      sentinel.once("close", () => this.#sentinelRounds.delete(port));
      return;
    }
    // Accepted before this callback ran, and taken for another connection then.
    const state = this.#state;
    if (state.kind === "closed") return;
    if (state.kind === "probing") {
      this.#state = { ...state, others: state.others - 1 };
    }
    if (round === state.round) this.#roundDone();
  }

  #accepted(socket: net.Socket): void {
    const state = this.#state;
    if (state.kind === "closed") return;
    const port = socket.remotePort;
    if (port === undefined) return;
    const round = this.#sentinelRounds.get(port);
    if (round !== undefined) {
      this.#sentinelRounds.delete(port);
      socket.destroy();
      // A sentinel of an earlier round proves nothing of what came in behind it, except past
      // the longest wait, when any sentinel ends it.
      if (round === state.round || state.kind === "last round") {
        this.#roundDone();
      }
      return;
    }
    this.#acceptedThisRound.add(port);
    if (state.kind === "probing") {
      this.#state = { ...state, others: state.others + 1 };
    }
  }

  // A round in which another connection came in means a peer is still connecting, and a
  // sentinel that waited long in the queue may have peers' connections right behind it: one
  // more round, so that the close does not fall on them.
  #roundDone(): void {
    const state = this.#state;
    if (
      state.kind === "probing" &&
      (state.others > 0 ||
        performance.now() - state.startedAt > QUICK_ROUND_MS)
    ) {
      this.#startRound();
    } else {
      this.#finish();
    }
  }
}

/**
 * Resolves once the port of a group sharing it refuses connections: every socket of the group
 * has closed (or after {@linkcode GROUP_CLOSED_WAIT_MS}). Until then a worker that has closed
 * its own does not drain its connections: a proxy that a GOAWAY makes open new connections
 * would open them into another worker's queue just as that one closes, which resets them.
 */
function portRefuses(address: net.AddressInfo): Promise<void> {
  const host = ownHost(address);
  if (!mayUse(host, address.port)) return Promise.resolve();
  const { promise, resolve } = Promise.withResolvers<void>();
  let next: ReturnType<typeof setTimeout> | undefined;
  let done = false;
  function finish(): void {
    done = true;
    clearTimeout(next);
    clearTimeout(giveUp);
    resolve();
  }
  const giveUp = setTimeout(finish, GROUP_CLOSED_WAIT_MS);
  function ask(): void {
    const probe = net.connect({ host, port: address.port });
    probe.once("connect", () => {
      probe.destroy();
      if (!done) next = setTimeout(ask, GROUP_CLOSED_POLL_MS);
    });
    probe.once("error", finish);
  }
  ask();
  return promise;
}

/** The address a listener on `address` reaches itself at. */
function ownHost(address: net.AddressInfo): string {
  return address.address === "0.0.0.0"
    ? "127.0.0.1"
    : address.address === "::"
    ? "::1"
    : address.address;
}

/**
 * Whether this process may connect to or bind `host:port`: Deno reports a refused one
 * asynchronously, as an uncaught error, so it is asked first.
 */
function mayUse(host: string, port: number): boolean {
  const target = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  return Deno.permissions.querySync({ name: "net", host: target }).state ===
    "granted";
}
