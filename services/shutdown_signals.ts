/**
 * Waiting for the signal that asks a server process to stop.
 *
 * @module
 */

/** What {@linkcode listenForShutdown} returns: dispose of it to stop listening. */
export interface ShutdownListener extends Disposable {
  /** Resolves with the first SIGINT or SIGTERM (SIGINT or SIGBREAK on Windows). */
  readonly signal: Promise<Deno.Signal>;
}

/**
 * Listens for the signals that ask a process to stop: SIGINT (Ctrl-C) and SIGTERM, or SIGINT
 * and SIGBREAK on Windows. The first one resolves {@linkcode ShutdownListener.signal}, so the
 * process can close its server gracefully; a second one, for someone who will not wait, says
 * so on stderr and exits at once with status 130 (SIGINT) or 143 (the others). Listen before
 * binding, so a signal that arrives while the ports are bound still closes gracefully.
 *
 * @returns The listener; disposing of it removes the signal listeners.
 *
 * @example Serve until Ctrl-C or SIGTERM, then let calls in flight finish
 * ```ts
 * import { listenForShutdown, startServer } from "@streamrpc/grpc-stream";
 *
 * using shutdown = listenForShutdown();
 * await using server = await startServer({ port: 0 });
 * console.log(`Serving gRPC on ${server.addresses[0]}`);
 * // In a real program: await shutdown.signal; then `await using` closes the server.
 * ```
 */
export function listenForShutdown(): ShutdownListener {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  const { promise, resolve } = Promise.withResolvers<Deno.Signal>();
  let received = false;
  const listeners = signals.map((signal) => {
    function onSignal(): void {
      if (received) {
        console.error(`Received ${signal} again: stopping at once`);
        Deno.exit(signal === "SIGINT" ? 130 : 143);
      }
      received = true;
      resolve(signal);
    }
    Deno.addSignalListener(signal, onSignal);
    return { signal, onSignal };
  });
  return {
    signal: promise,
    [Symbol.dispose](): void {
      for (const { signal, onSignal } of listeners) {
        Deno.removeSignalListener(signal, onSignal);
      }
    },
  };
}
