/**
 * The PINGs a client connection sent and awaits the ACKs of, each with the callback
 * `ClientHttp2Session.ping` takes: told the round trip's duration, or the connection's end.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** What `ping` calls back with. */
export type PingCallback = (
  error: Error | null,
  duration: number,
  payload: Buffer,
) => void;

/** A PING this side sent, waiting for its ACK. */
interface SentPing {
  payload: Uint8Array;
  sentAt: number;
  callback: PingCallback;
}

/**
 * The PINGs awaiting their ACK.
 *
 * @example
 * ```ts ignore
 * const pings = new SentPings();
 * const payload = pings.add((error, duration) => console.log(error ?? duration));
 * pings.acked(payload);
 * ```
 */
export class SentPings {
  #pings: SentPing[] = [];
  #count = 0;

  /**
   * Records a PING about to be sent.
   *
   * @param callback Told once its ACK arrives, or the connection ends.
   * @returns The PING's payload, unique on the connection.
   */
  add(callback: PingCallback): Uint8Array {
    const payload = new Uint8Array(8);
    new DataView(payload.buffer).setUint32(4, ++this.#count);
    this.#pings.push({ payload, sentAt: performance.now(), callback });
    return payload;
  }

  /**
   * An ACK arrived: its PING's callback is told the round trip's duration.
   *
   * @param payload The ACK's payload.
   */
  acked(payload: Uint8Array): void {
    const index = this.#pings.findIndex((ping) =>
      ping.payload.every((octet, i) => octet === payload[i])
    );
    if (index === -1) return;
    const [ping] = this.#pings.splice(index, 1);
    ping!.callback(
      null,
      performance.now() - ping!.sentAt,
      Buffer.from(ping!.payload),
    );
  }

  /**
   * The connection ended: every PING still awaited fails with `error`.
   *
   * @param error Why.
   */
  fail(error: Error): void {
    for (const ping of this.#pings.splice(0)) {
      ping.callback(error, 0, Buffer.from(ping.payload));
    }
  }
}
