/**
 * Keepalive pings for a channel of the default transport: while calls are in flight, a PING
 * every `keepaliveMs`; a connection that does not answer one within its timeout is half
 * open (a peer that vanished without closing it), so it is dropped and its calls end with
 * `UNAVAILABLE` instead of waiting forever.
 *
 * @module
 */
import type { CallSession } from "./http2_surface.ts";

/** What a {@linkcode Keepalive} pings and whom it tells of a connection lost. */
export interface KeepaliveOptions {
  /** How often to ping, in milliseconds; `undefined` sends no pings. */
  intervalMs: number | undefined;
  /** How long a ping may go unanswered, in milliseconds. */
  timeoutMs: number;
  /** The connection to ping now, if any. */
  session(): CallSession | undefined;
  /** `session` did not answer a ping in time: `error` says so. */
  lost(session: CallSession, error: Error): void;
}

/** The pings of one channel, sent while it has calls in flight. */
export class Keepalive {
  #options: KeepaliveOptions;
  #interval: ReturnType<typeof setInterval> | undefined;
  #pingTimer: ReturnType<typeof setTimeout> | undefined;

  /** @param options The interval, the timeout and the connection to ping. */
  constructor(options: KeepaliveOptions) {
    this.#options = options;
  }

  /** Starts pinging, unless it already does or has no interval. */
  start(): void {
    const interval = this.#options.intervalMs;
    if (interval === undefined || this.#interval !== undefined) return;
    this.#interval = setInterval(() => this.#ping(), interval);
  }

  /** Stops pinging, and forgets a ping still unanswered. */
  stop(): void {
    clearInterval(this.#interval);
    this.#interval = undefined;
    clearTimeout(this.#pingTimer);
    this.#pingTimer = undefined;
  }

  /** Sends one PING, unless one is unanswered or there is no connection. */
  #ping(): void {
    const session = this.#options.session();
    if (
      session === undefined || session.destroyed ||
      this.#pingTimer !== undefined
    ) {
      return;
    }
    const timeout = this.#options.timeoutMs;
    this.#pingTimer = setTimeout(() => {
      this.#pingTimer = undefined;
      if (this.#options.session() !== session) return;
      this.#options.lost(
        session,
        Object.assign(
          new Error(`No answer to a keepalive ping within ${timeout} ms`),
          { code: "ERR_GRPC_KEEPALIVE_TIMEOUT" },
        ),
      );
    }, timeout);
    try {
      session.ping(() => {
        clearTimeout(this.#pingTimer);
        this.#pingTimer = undefined;
      });
    } catch {
      // The session is closing; its calls end on their own.
      clearTimeout(this.#pingTimer);
      this.#pingTimer = undefined;
    }
  }
}
