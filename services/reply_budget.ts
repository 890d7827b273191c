/**
 * What one connection's reply writers hold between them: the bytes handed to HTTP/2 that the
 * socket has not taken yet, counted against {@linkcode CONNECTION_BUFFER_LIMIT} (see
 * `reply_writer.ts` for why Deno's HTTP/2 streams cannot be trusted to say so themselves).
 *
 * @module
 */
import process from "node:process";
import { setImmediate } from "node:timers";
import type { CallStream } from "../internals/grpc_js_server_call.ts";
import type { ServerProbe } from "./_testing.ts";

/** The part of a connection's socket the writer watches. */
export interface RawSocket {
  readonly writableLength: number;
  readonly writableNeedDrain?: boolean;
  once(event: "drain" | "close", listener: () => void): unknown;
  off(event: "drain" | "close", listener: () => void): unknown;
}

/**
 * How many bytes of replies one connection may hold on their way to its socket (handed to
 * HTTP/2 and not yet taken by the kernel), whatever the number of calls on it. A chunk is
 * written only when it fits, or when the connection holds nothing (a reply larger than the
 * limit goes alone).
 */
export const CONNECTION_BUFFER_LIMIT = 256 * 1024;

/** The writers of one connection: what they have handed to HTTP/2 that the socket has not shown yet. */
export class Connection {
  readonly socket: RawSocket;
  /** Bytes written to HTTP/2 streams in this turn: Deno frames them on the next tick. */
  #unsettled = 0;
  #settling = false;
  #drain: Promise<void> | undefined;

  readonly #probe: ServerProbe | undefined;

  constructor(socket: RawSocket, probe: ServerProbe | undefined) {
    this.socket = socket;
    this.#probe = probe;
  }

  /** Bytes the connection holds on their way to the socket. */
  get held(): number {
    return onSocket(() => this.socket.writableLength, 0) + this.#unsettled;
  }

  /** Whether a chunk of `bytes` may be written now. */
  fits(bytes: number): boolean {
    const held = this.held;
    return held === 0 || held + bytes <= CONNECTION_BUFFER_LIMIT;
  }

  /** Counts `bytes` just written to one of the connection's streams. */
  handed(bytes: number): void {
    this.#unsettled += bytes;
    this.#probe?.held(this.held);
    if (this.#settling) return;
    this.#settling = true;
    // Deno frames stream writes in a tick it queues at the first write of the turn, so this
    // tick runs after it: the bytes are in the socket's queue by then, or with the kernel, or
    // still in their stream (window closed), which counts them against the call instead.
    process.nextTick(() => {
      this.#settling = false;
      this.#unsettled = 0;
      this.#probe?.held(this.held);
    });
  }

  /** Resolves when the connection may have room again (or has closed). */
  room(): Promise<void> {
    const needsDrain = onSocket(() => this.socket.writableNeedDrain, false);
    if (needsDrain !== true) {
      // What holds the room is still settling (or sits below the socket's high-water mark,
      // where no `drain` comes): look again next turn.
      return new Promise((resolve) => setImmediate(resolve));
    }
    this.#drain ??= new Promise<void>((resolve) => {
      const socket = this.socket;
      const settle = (): void => {
        onSocket(() => socket.off("drain", settle), undefined);
        onSocket(() => socket.off("close", settle), undefined);
        this.#drain = undefined;
        resolve();
      };
      const listening = onSocket(() => {
        socket.once("drain", settle);
        socket.once("close", settle);
        return true;
      }, false);
      if (!listening) settle();
    });
    return this.#drain;
  }
}

/** One per socket, shared by the writers of the connection's calls. */
const connections = new WeakMap<RawSocket, Connection>();

/**
 * Runs `use` on a session's socket. `session.socket` is a proxy that throws once the session
 * has let its socket go (`ERR_HTTP2_SOCKET_UNBOUND`); by then there is nothing to wait for.
 */
function onSocket<T>(use: () => T, otherwise: T): T {
  try {
    return use();
  } catch {
    return otherwise;
  }
}

/**
 * The budget of the connection a call's stream is on, made at its first call.
 *
 * @param stream The call's HTTP/2 stream.
 * @param probe Counts what the connection holds, for tests.
 * @returns The budget, or `undefined` when the stream's socket cannot be watched.
 */
export function connectionOf(
  stream: CallStream,
  probe: ServerProbe | undefined,
): Connection | undefined {
  return onSocket(() => {
    const socket = stream.session?.socket as Partial<RawSocket> | undefined;
    if (
      typeof socket?.writableLength !== "number" ||
      typeof socket.once !== "function" || typeof socket.off !== "function"
    ) {
      return undefined;
    }
    let connection = connections.get(socket as RawSocket);
    if (connection === undefined) {
      const opened = new Connection(socket as RawSocket, probe);
      connections.set(socket as RawSocket, opened);
      const closed = probe?.opened(opened);
      if (closed !== undefined) socket.once("close", closed);
      connection = opened;
    }
    return connection;
  }, undefined);
}
