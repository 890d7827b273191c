/**
 * Wait-for-ready calls of the default transport: a call made while its channel is connecting
 * or backing off after a failed attempt waits, within its deadline, for the connection.
 *
 * @module
 */
import { Status } from "./grpc_error.ts";
import type {
  CallListener,
  CallSetup,
  CallStatus,
  TransportCall,
} from "./transport.ts";
import { type DeadlineTimer, startDeadlineTimer } from "./deadline.ts";

/**
 * How many bytes of messages a waiting call takes before `write` asks its writer to wait
 * for `drained()`: a DATA frame's default largest size, as the stream it will run on.
 */
const WAITING_WRITE_BYTES = 16 * 1024;

/** Where a waiting call stands. */
type WaitingState =
  | {
    state: "waiting";
    /** The messages written meanwhile, sent once the call starts. */
    messages: Uint8Array[];
    bytes: number;
    /** Whether `end()` was called meanwhile. */
    ended: boolean;
    /** Writers waiting in `drained()`. */
    drainers: (() => void)[];
    /** Forgets the call at its channel. */
    forget: () => void;
    timer: DeadlineTimer | undefined;
  }
  | { state: "started"; call: TransportCall }
  | { state: "finished" };

/** A call waiting for its channel to be ready; see {@linkcode WaitingChannel.whenReady}. */
export interface ReadyWaiter {
  /** The channel is ready: the call can start. */
  ready(): void;
  /** The channel was closed while the call waited. */
  closed(): void;
}

/**
 * What a {@linkcode WaitingCall} needs of its channel (the default transport's `Channel`):
 * word of when it is ready, a call started there, and why it has no connection.
 */
export interface WaitingChannel {
  /** The server's name and port, as calls name it in their errors. */
  readonly authority: string;
  /**
   * Has `waiter` told once the channel is ready.
   *
   * @param waiter What to tell.
   * @returns A function that forgets the waiter (its call ended while it waited).
   */
  whenReady(waiter: ReadyWaiter): () => void;
  /**
   * Starts a call on `path`, at once when the channel is ready.
   *
   * @param path The method path, e.g. `/stream.ClientStream/Sum`.
   * @param setup The call's listener, metadata and deadline.
   * @returns The call.
   */
  startCall(path: string, setup: CallSetup): TransportCall;
  /** Why the channel has no connection, for a call that gave up waiting for one. */
  describeLastError(): string | undefined;
}

/** What a {@linkcode WaitingCall} starts once its channel is ready. */
export interface WaitingCallSetup {
  /** The method path, e.g. `/stream.ClientStream/Sum`. */
  path: string;
  /** The call's listener, metadata and deadline. */
  setup: CallSetup;
}

/**
 * A call that waits for its channel to be ready before it starts (gRPC's wait-for-ready).
 * Its messages and half-close wait with it and go out once it starts; its deadline runs
 * from the moment it was made, so a call still waiting when it passes ends with
 * `DEADLINE_EXCEEDED`. Nothing reaches the server before the call starts, so a cancel
 * meanwhile is the caller's alone.
 */
export class WaitingCall implements TransportCall {
  #channel: WaitingChannel;
  #path: string;
  #setup: CallSetup;
  #listener: CallListener;
  #paused = false;
  #state: WaitingState;

  /**
   * @param channel The channel the call waits on.
   * @param call The method and the call's setup.
   */
  constructor(channel: WaitingChannel, call: WaitingCallSetup) {
    this.#channel = channel;
    this.#path = call.path;
    this.#setup = call.setup;
    this.#listener = call.setup.listener;
    const deadline = call.setup.deadline;
    this.#state = {
      state: "waiting",
      messages: [],
      bytes: 0,
      ended: false,
      drainers: [],
      forget: () => {},
      timer: deadline === undefined ? undefined : startDeadlineTimer(
        deadline,
        () => this.#expire(),
      ),
    };
    const waiting = this.#state;
    waiting.forget = channel.whenReady({
      ready: () => this.#start(),
      closed: () =>
        this.#finish({
          code: Status.UNAVAILABLE,
          details: "Client closed while the call waited for a connection",
          trailers: {},
          local: true,
        }),
    });
  }

  get finished(): boolean {
    const current = this.#state;
    return current.state === "finished" ||
      (current.state === "started" && current.call.finished);
  }

  write(message: Uint8Array): boolean {
    const current = this.#state;
    if (current.state === "started") return current.call.write(message);
    if (current.state === "finished") return false;
    current.messages.push(message);
    current.bytes += message.length;
    return current.bytes < WAITING_WRITE_BYTES;
  }

  drained(): Promise<void> {
    const current = this.#state;
    if (current.state === "started") return current.call.drained();
    if (current.state === "finished" || current.bytes < WAITING_WRITE_BYTES) {
      return Promise.resolve();
    }
    return new Promise((resolve) => current.drainers.push(resolve));
  }

  end(): void {
    const current = this.#state;
    if (current.state === "started") current.call.end();
    else if (current.state === "waiting") current.ended = true;
  }

  pause(): void {
    this.#paused = true;
    const current = this.#state;
    if (current.state === "started") current.call.pause();
  }

  resume(): void {
    this.#paused = false;
    const current = this.#state;
    if (current.state === "started") current.call.resume();
  }

  cancel(
    code: Status = Status.CANCELLED,
    details = "Cancelled on the client",
  ): void {
    const current = this.#state;
    if (current.state === "started") {
      current.call.cancel(code, details);
      return;
    }
    this.#finish({ code, details, trailers: {}, local: true });
  }

  /** The channel is ready: the call starts there, with what was written meanwhile. */
  #start(): void {
    const waiting = this.#state;
    if (waiting.state !== "waiting") return;
    waiting.timer?.clear();
    let call: TransportCall;
    try {
      // The channel is ready: the call starts at once, and waits again only for a retry.
      call = this.#channel.startCall(this.#path, this.#setup);
    } catch (error) {
      this.#finish({
        code: Status.UNAVAILABLE,
        details: error instanceof Error ? error.message : String(error),
        trailers: {},
        cause: error,
      });
      return;
    }
    this.#state = { state: "started", call };
    for (const message of waiting.messages) call.write(message);
    if (waiting.ended) call.end();
    if (this.#paused) call.pause();
    for (const release of waiting.drainers) release();
  }

  #expire(): void {
    const reason = this.#channel.describeLastError();
    this.#finish({
      code: Status.DEADLINE_EXCEEDED,
      details:
        `Deadline exceeded while waiting for a connection to ${this.#channel.authority}${
          reason === undefined ? "" : `: ${reason}`
        }`,
      trailers: {},
      local: true,
    });
  }

  /** Ends a call that never started. */
  #finish(status: CallStatus): void {
    const waiting = this.#state;
    if (waiting.state !== "waiting") return;
    this.#state = { state: "finished" };
    waiting.timer?.clear();
    waiting.forget();
    for (const release of waiting.drainers) release();
    this.#listener.onStatus(status);
  }
}
