/**
 * Closes a connection that has not finished the HTTP/2 handshake (the client's preface and
 * SETTINGS) within the handshake timeout, so half-open connections cannot pile up.
 *
 * @module
 */
import type http2 from "node:http2";

/**
 * Closes `session` unless the client's SETTINGS arrive within `timeout` ms. The timer is held
 * only until the handshake or the session ends, so it never keeps a process alive.
 *
 * @param session A new server session.
 * @param timeout How long the handshake may take, in milliseconds; 0 waits forever.
 */
export function limitHandshake(
  session: http2.Http2Session,
  timeout: number,
): void {
  if (timeout === 0) return;
  const timer = setTimeout(() => {
    if (!session.destroyed) session.destroy();
  }, timeout);
  const done = (): void => {
    clearTimeout(timer);
    session.off("remoteSettings", done);
    session.off("close", done);
  };
  session.once("remoteSettings", done);
  session.once("close", done);
}
