/**
 * What a connection lets a peer do before it ends or retires the connection, for the floods
 * that cost one side without costing the other (the first counts on a server only, the other
 * two on both sides):
 *
 * - Stream resets before any answer ("rapid reset", CVE-2023-44487), counted with nghttp2's
 *   token bucket (a burst of 1,000, then 33 a second). Resets of answered calls are not
 *   counted: a call that ends that way cost no more than a complete one. Once fewer than 250
 *   are left the connection retires gracefully (GOAWAY `NO_ERROR`: calls in flight finish, an
 *   honest client reconnects); at none left it ends with `ENHANCE_YOUR_CALM`.
 * - Frames that only ask for a reply (PING, SETTINGS) while the peer reads none of the
 *   replies: past 1,000 replies waiting for the socket, `ENHANCE_YOUR_CALM` (CVE-2019-9512,
 *   CVE-2019-9515).
 * - Empty DATA frames that do not end their stream: past 1,000 in a row, `ENHANCE_YOUR_CALM`
 *   (CVE-2019-9518).
 *
 * @module
 */
/** nghttp2's burst of stream resets a connection may send at once. */
const RESET_BURST = 1_000;
/** nghttp2's resets a second added back to the burst. */
const RESET_RATE = 33;
/** The resets left when the connection retires gracefully. */
const RESET_RESERVE = 250;
/** Replies a peer may leave unread in the socket's queue. */
const MAX_UNREAD_REPLIES = 1_000;
/** Empty DATA frames in a row that do not end a stream. */
const MAX_EMPTY_DATA = 1_000;

/** What a limit asks of the connection: to retire gracefully, or to end at once. */
export type LimitBreach =
  | { kind: "retire" }
  | { kind: "end"; reason: string };

/**
 * The counters of one connection.
 *
 * @example
 * ```ts
 * import { ConnectionLimits } from "./peer_limits.ts";
 *
 * const limits = new ConnectionLimits();
 * const breach = limits.reset(false);
 * ```
 */
export class ConnectionLimits {
  #tokens = RESET_BURST;
  #second = Math.floor(performance.now() / 1000);
  #retired = false;
  #unreadReplies = 0;
  #emptyData = 0;

  /**
   * Counts a stream the peer reset.
   *
   * @param answered Whether the server had answered it.
   * @returns What the connection must do, if anything.
   */
  reset(answered: boolean): LimitBreach | undefined {
    if (answered) return undefined;
    const now = Math.floor(performance.now() / 1000);
    this.#tokens = Math.min(
      RESET_BURST,
      this.#tokens + (now - this.#second) * RESET_RATE,
    );
    this.#second = now;
    this.#tokens -= 1;
    if (this.#tokens <= 0) {
      return { kind: "end", reason: "Too many streams reset" };
    }
    if (this.#tokens < RESET_RESERVE && !this.#retired) {
      this.#retired = true;
      return { kind: "retire" };
    }
    return undefined;
  }

  /**
   * Counts a frame that asks for a reply.
   *
   * @param socketBlocked Whether the socket's queue is full: the peer is not reading.
   * @returns What the connection must do, if anything.
   */
  replyAsked(socketBlocked: boolean): LimitBreach | undefined {
    if (!socketBlocked) {
      this.#unreadReplies = 0;
      return undefined;
    }
    this.#unreadReplies += 1;
    return this.#unreadReplies > MAX_UNREAD_REPLIES
      ? { kind: "end", reason: "Too many replies left unread" }
      : undefined;
  }

  /** The socket's queue has drained: the peer reads. */
  socketDrained(): void {
    this.#unreadReplies = 0;
  }

  /**
   * Counts a DATA frame.
   *
   * @param length Its payload's length, padding removed.
   * @param frame Whether it ends its stream.
   * @returns What the connection must do, if anything.
   */
  dataFrame(
    length: number,
    { endStream }: { endStream: boolean },
  ): LimitBreach | undefined {
    if (length > 0 || endStream) {
      this.#emptyData = 0;
      return undefined;
    }
    this.#emptyData += 1;
    return this.#emptyData > MAX_EMPTY_DATA
      ? { kind: "end", reason: "Too many empty DATA frames" }
      : undefined;
  }
}
