/**
 * Where one server connection is in its life (RFC 9113 §6.8): its handshake, serving, closing
 * after a GOAWAY sent or received, and over; and what its end waits for. The connection asks
 * it what a transition allows and does the frames itself.
 *
 * @module
 */

/** The largest stream identifier: the drain's first GOAWAY names it. */
export const MAX_STREAM = 2 ** 31 - 1;

/** Where the connection is. */
type ConnectionState =
  /** Waiting for the client's preface and SETTINGS. */
  | { kind: "handshake" }
  /** Serving. */
  | { kind: "open" }
  /**
   * A GOAWAY sent or received: no stream past `lastStream` is served, and the connection ends
   * once its streams have; `final` once no more GOAWAY is to come (the drain's first is not).
   */
  | { kind: "closing"; lastStream: number; final: boolean }
  /** Over. */
  | { kind: "closed" };

/**
 * The life of one connection.
 *
 * @example
 * ```ts ignore
 * const phase = new ConnectionPhase({ handshakeTimeout: 10_000, onTimeout: destroy });
 * if (phase.closeFinally(lastStream)) writer.goAway(lastStream, { code: 0 });
 * ```
 */
export class ConnectionPhase {
  #state: ConnectionState = { kind: "handshake" };
  /** Ends a connection whose peer has not finished its handshake in time. */
  readonly #handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Whether the peer has acknowledged our SETTINGS. The connection does not end before: a
   * proxy that still owes the acknowledgement (nginx) fails the calls it has in flight on it.
   */
  #settingsAcknowledged = false;
  #pingAck: (() => void) | undefined;
  readonly #closeListeners: (() => void)[] = [];

  /**
   * A connection in its handshake.
   *
   * @param options How long the handshake may take (0 forever), and what ends it then.
   */
  constructor(
    { handshakeTimeout, onTimeout }: {
      handshakeTimeout: number;
      onTimeout: () => void;
    },
  ) {
    this.#handshakeTimer = handshakeTimeout > 0
      ? setTimeout(onTimeout, handshakeTimeout)
      : undefined;
  }

  /** Whether the connection is over. */
  get closed(): boolean {
    return this.#state.kind === "closed";
  }

  /**
   * Whether a new stream `id` goes unserved: past the last stream a GOAWAY named.
   *
   * @param id The new stream's identifier.
   * @returns `true` if it is to be ignored.
   */
  refuses(id: number): boolean {
    const state = this.#state;
    return state.kind === "closing" && id > state.lastStream;
  }

  /** The peer's SETTINGS have come: the handshake is over. */
  opened(): void {
    if (this.#state.kind !== "handshake") return;
    clearTimeout(this.#handshakeTimer);
    this.#state = { kind: "open" };
  }

  /** The peer has acknowledged our SETTINGS. */
  settingsAcknowledged(): void {
    this.#settingsAcknowledged = true;
  }

  /**
   * Starts a drain, unless the connection is closing already: the caller sends the GOAWAY
   * naming {@linkcode MAX_STREAM} and a PING, whose answer (or `pingWaitMs`) runs `then`.
   *
   * @param pingWaitMs How long to wait for the PING's answer.
   * @param then What comes once it has come or that wait is over.
   * @returns Whether the drain starts.
   */
  drain(pingWaitMs: number, then: () => void): boolean {
    const state = this.#state;
    if (state.kind === "closed" || state.kind === "closing") return false;
    this.#state = { kind: "closing", lastStream: MAX_STREAM, final: false };
    const timer = setTimeout(then, pingWaitMs);
    this.#pingAck = () => {
      clearTimeout(timer);
      this.#pingAck = undefined;
      then();
    };
    return true;
  }

  /** A PING has come back. */
  pingAcknowledged(): void {
    this.#pingAck?.();
  }

  /**
   * Moves to the final close, unless it has begun or the connection is over: the caller sends
   * the final GOAWAY naming `lastStream`.
   *
   * @param lastStream The last stream the connection serves.
   * @returns Whether the final GOAWAY is to go.
   */
  closeFinally(lastStream: number): boolean {
    const state = this.#state;
    if (state.kind === "closed") return false;
    if (state.kind === "closing" && state.final) return false;
    this.#state = { kind: "closing", lastStream, final: true };
    return true;
  }

  /**
   * The peer has sent a GOAWAY: it opens no more streams; those open finish.
   *
   * @param lastStream The last stream the peer has opened.
   */
  peerWentAway(lastStream: number): void {
    const state = this.#state;
    if (state.kind === "open" || state.kind === "handshake") {
      this.#state = { kind: "closing", lastStream, final: true };
    }
  }

  /**
   * Whether the connection may end now: closing for good, with no stream open and nothing
   * owed by the peer.
   *
   * @param openStreams How many streams are open.
   * @returns `true` once it may end.
   */
  mayEnd(openStreams: number): boolean {
    const state = this.#state;
    return state.kind === "closing" && state.final && openStreams === 0 &&
      this.#settingsAcknowledged;
  }

  /**
   * Ends the connection's life; the caller then closes its streams and calls
   * {@linkcode ended}.
   *
   * @returns Whether it was still going (`false`: it had ended already).
   */
  end(): boolean {
    if (this.#state.kind === "closed") return false;
    clearTimeout(this.#handshakeTimer);
    this.#state = { kind: "closed" };
    return true;
  }

  /** Tells the listeners of {@linkcode onClose} that the connection has ended. */
  ended(): void {
    for (const listener of this.#closeListeners.splice(0)) listener();
  }

  /**
   * Calls `listener` once the connection has ended.
   *
   * @param listener The listener.
   */
  onClose(listener: () => void): void {
    if (this.#state.kind === "closed") queueMicrotask(listener);
    else this.#closeListeners.push(listener);
  }
}
