/**
 * The seam through which the tests and the soak runs watch a server's inner figures; not part
 * of the module's API (`mod.ts` does not export it). A server keeps these figures only when a
 * probe is attached to the options object it was started with, so a server in production
 * counts nothing and no figure is shared between servers:
 *
 * ```ts ignore
 * const options = { port: 0 };
 * const probe = probeServer(options);
 * await using server = await startServer(options);
 * // … calls …
 * probe.takeTappedBytes();
 * ```
 *
 * @module
 */

/** A connection's reply writers, as the probe sees them. */
export interface ProbedConnection {
  /** Bytes of replies the connection holds on their way to its socket now. */
  readonly held: number;
}

/** What one server counts for its tests. */
export class ServerProbe {
  #tappedBytes = 0;
  #resetsTaken = 0;
  #peakHeld = 0;
  #leanCalls: string[] = [];
  /**
   * Whether the server may answer on the lean path (`lean_calls.ts`); `false` gives a test a
   * server on grpc-js's path beside one on the lean path, in one process.
   */
  leanPath = true;
  /**
   * Whether the server serves its cleartext connections with its own HTTP/2
   * (`http2/own_connections.ts`); `undefined` leaves it to `GRPC_STREAM_HTTP2`.
   */
  ownHttp2: boolean | undefined = undefined;
  readonly #open = new Set<ProbedConnection>();

  /**
   * The frame tap handed `bytes` of request DATA to a reader (`frame_tap.ts`).
   *
   * @param bytes How many.
   */
  tapped(bytes: number): void {
    this.#tappedBytes += bytes;
  }

  /**
   * The lean path took a call (`lean_calls.ts`).
   *
   * @param path The call's method path.
   */
  leanCall(path: string): void {
    this.#leanCalls.push(path);
  }

  /** How many times a reply writer grew a chunk past 16 KiB to gather replies it held. */
  largeChunkGrowths = 0;

  /**
   * A reply writer grew the chunk it gathers replies in (`reply_writer.ts`).
   *
   * @param bytes The chunk's new size.
   */
  grewChunk(bytes: number): void {
    if (bytes > 16 * 1_024) this.largeChunkGrowths += 1;
  }

  /**
   * The paths of the calls the lean path took since the last call: it shows which path
   * answered them.
   *
   * @returns The paths, in the order the calls came; the list starts again empty.
   */
  takeLeanCalls(): string[] {
    const calls = this.#leanCalls;
    this.#leanCalls = [];
    return calls;
  }

  /** The server took a peer's reset away from nghttp2 (`honest_resets.ts`). */
  resetTaken(): void {
    this.#resetsTaken += 1;
  }

  /**
   * A connection holds `bytes` of replies on their way to its socket (`reply_writer.ts`).
   *
   * @param bytes How many, now.
   */
  held(bytes: number): void {
    if (bytes > this.#peakHeld) this.#peakHeld = bytes;
  }

  /**
   * A connection's first reply writer started.
   *
   * @param connection The connection.
   * @returns A function to call once its socket has closed.
   */
  opened(connection: ProbedConnection): () => void {
    this.#open.add(connection);
    return () => this.#open.delete(connection);
  }

  /**
   * How many request bytes the frame taps of the server's sessions have handed to readers
   * since the last call: it shows the tap is the path in use.
   *
   * @returns The bytes; the count starts again from zero.
   */
  takeTappedBytes(): number {
    const bytes = this.#tappedBytes;
    this.#tappedBytes = 0;
    return bytes;
  }

  /**
   * How many resets the server's sessions have taken from nghttp2 since the last call: it
   * shows which side of the line the resets fell on.
   *
   * @returns The count; it starts again from zero.
   */
  takeResetsTaken(): number {
    const count = this.#resetsTaken;
    this.#resetsTaken = 0;
    return count;
  }

  /**
   * The bytes of replies each open connection holds on their way to its socket now: what its
   * socket has queued and what was handed to HTTP/2 in this turn.
   *
   * @returns One figure per open connection with a call answered through a reply writer.
   */
  heldReplyBytes(): number[] {
    return [...this.#open].map((connection) => connection.held);
  }

  /**
   * The most bytes of replies any one connection has held on their way to its socket since
   * the last call, as the writers counted them when they wrote and as
   * {@linkcode ServerProbe.heldReplyBytes} sees them now.
   *
   * @returns The peak in bytes; the count starts again from zero.
   */
  takePeakConnectionBytes(): number {
    const peak = Math.max(this.#peakHeld, ...this.heldReplyBytes());
    this.#peakHeld = 0;
    return peak;
  }
}

const probes = new WeakMap<object, ServerProbe>();

/**
 * Attaches a probe to the options a server is about to start with.
 *
 * @param options The options object to hand to `startServer`, unchanged.
 * @returns The probe that server will count into.
 */
export function probeServer(options: object): ServerProbe {
  const probe = new ServerProbe();
  probes.set(options, probe);
  return probe;
}

/**
 * The probe attached to a server's options, if any.
 *
 * @param options The options `startServer` was given.
 * @returns The probe, or `undefined` (counting nothing).
 */
export function probeOf(options: object): ServerProbe | undefined {
  return probes.get(options);
}
