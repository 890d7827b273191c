/**
 * The logger a server writes to, on its own so that every room of the server (the handlers,
 * the fast paths' fallback reports) can take one without importing the others.
 *
 * @module
 */

/** Where a server's handlers write their log lines. `console` fits. */
export interface ServerLogger {
  /** One line about normal operation, e.g. a message received. */
  info(message: string): void;
  /** One line about a call that failed or a client that misbehaved. */
  warn(message: string): void;
  /** One line about a fault inside the server. */
  error(message: string): void;
}
