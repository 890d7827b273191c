/**
 * The connection of a channel of the default transport, as an explicit state machine (in the
 * manner of connect-es's session manager): gRPC's connectivity states, the connection
 * attempt (TCP, TLS with ALPN `h2`, then the server's SETTINGS frame, within the connect
 * timeout), the backoff after a failed attempt, and the calls that wait for ready.
 *
 * @module
 */
import http2 from "node:http2";
import net from "node:net";
import { deferCloseAfterGoaway } from "../internals/deno_goaway_close.ts";
import { MAX_TIMER_MS } from "../proto/limits.ts";
import { GrpcError, Status } from "./grpc_error.ts";
import {
  type ChannelOptions,
  DEFAULT_BACKOFF_MULTIPLIER,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_INITIAL_BACKOFF_MS,
  DEFAULT_MAX_BACKOFF_MS,
} from "./channel_options.ts";
import {
  type AttemptPhase,
  describeConnectionError,
  describeConnectTimeout,
  FIRST_BYTES_LIMIT,
  mayLackNetPermission,
  missingNetPermission,
  wrongProtocolError,
} from "./connection_errors.ts";
import { parseAddress } from "./address.ts";
import { connectTls } from "./tls_options.ts";
import { probeServer } from "./protocol_probe.ts";
import { coalesceWrites } from "./write_batching.ts";
import { ClientConnection } from "./http2/client_connection.ts";
import { ownHttp2Chosen } from "../proto/http2/choice.ts";
import type { ReadyWaiter } from "./wait_for_ready.ts";
import type { CallSession, StreamSession } from "./http2_surface.ts";

/** gRPC's connection backoff: each delay is this much shorter or longer, at random. */
const BACKOFF_JITTER = 0.2;

/**
 * The least time between two connection attempts that wait-for-ready calls bring forward
 * during a backoff (see {@linkcode SessionManager}): a server that is back within a call's
 * deadline is found within this much, while a loop of such calls dials a server that is down
 * at most five times a second.
 */
const WAIT_FOR_READY_REDIAL_MS = 200;

/**
 * Where a channel's connection stands, as gRPC names the states: none (`idle`: not opened
 * yet, or lost, so the next call dials at once), an attempt under way (`connecting`: TCP,
 * TLS, then the server's SETTINGS frame, within the connect timeout), a connection calls can
 * use (`ready`), or a pause after a failed attempt (`backoff`, until `retryAt`).
 */
type Connection =
  | { state: "idle" }
  | {
    state: "connecting";
    session: CallSession;
    socket: net.Socket;
    /** Ends the attempt once the connect timeout has passed. */
    timer: ReturnType<typeof setTimeout>;
  }
  | { state: "ready"; session: CallSession; socket: net.Socket }
  | {
    state: "backoff";
    /** When the next attempt is due, in epoch milliseconds. */
    retryAt: number;
    /** Dials when wait-for-ready calls are waiting; none otherwise. */
    timer: ReturnType<typeof setTimeout> | undefined;
  };

/**
 * The HTTP/2 connection to one server, opened on demand, reopened after it is lost.
 *
 * A connection attempt is ready once the server's SETTINGS frame has arrived, and must get
 * there within the connect timeout. After a failed attempt the next one waits its backoff;
 * calls meanwhile fail fast with `UNAVAILABLE`, as gRPC's do by default, unless they wait for
 * ready: then the manager dials again when its backoff is over, and at once when such a call
 * arrives and the last attempt began at least {@linkcode WAIT_FOR_READY_REDIAL_MS} before.
 */
export class SessionManager {
  /** The server's `host:port`. */
  readonly authority: string;
  #url: string;
  #options: ChannelOptions;
  #connection: Connection = { state: "idle" };
  #closed = false;
  /** The last-stream-id of the GOAWAY each connection received. */
  #goaways = new WeakMap<StreamSession, number>();
  /** Calls that wait for the connection to be ready. */
  #waiters = new Set<ReadyWaiter>();
  #backoffMs: number;
  /** When the last connection attempt began, in epoch milliseconds. */
  #lastAttemptAt = 0;
  #lastError: (Error & { code?: string }) | undefined;
  /**
   * What the current attempt's server speaks, when its first bytes show it is no HTTP/2
   * server: it explains the attempt's failure better than the reset or protocol error that
   * follows.
   */
  #wrongProtocol: (Error & { code?: string }) | undefined;
  /** Whether the current attempt's server sent its SETTINGS frame. */
  #settingsArrived = false;
  /** The probe of the current attempt's server, once one is asked for. */
  #probe: Promise<void> | undefined;

  /**
   * @param authority The server's `host:port`.
   * @param options How to connect, time out and back off.
   */
  constructor(authority: string, options: ChannelOptions) {
    this.authority = authority;
    this.#url = `${
      options.tls === undefined ? "http" : "https"
    }://${authority}`;
    this.#options = options;
    this.#backoffMs = options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
  }

  /**
   * The last connection-level error, to explain why a stream failed. A refusal of net
   * access is kept as a `Deno.errors.NotCapable` naming the `--allow-net` to add.
   */
  get lastError(): (Error & { code?: string }) | undefined {
    return this.#wrongProtocol ?? this.#lastError;
  }

  set lastError(error: (Error & { code?: string }) | undefined) {
    this.#lastError = error !== undefined && mayLackNetPermission(error)
      ? missingNetPermission(this.authority, error) ?? error
      : error;
  }

  /** Whether there is a connection calls can use. */
  get ready(): boolean {
    return this.#connection.state === "ready";
  }

  /** The connection calls go on, while an attempt is under way or once it is ready. */
  get session(): CallSession | undefined {
    const connection = this.#connection;
    return connection.state === "connecting" || connection.state === "ready"
      ? connection.session
      : undefined;
  }

  /**
   * The last-stream-id of the GOAWAY `session` received.
   *
   * @param session A connection this manager opened.
   * @returns The id, or `undefined` when it received none.
   */
  goawayLastStreamId(session: StreamSession): number | undefined {
    return this.#goaways.get(session);
  }

  /**
   * Has `waiter` told once the connection is ready, dialling now if it is idle, or if it
   * backs off and the last attempt began at least {@linkcode WAIT_FOR_READY_REDIAL_MS} ago;
   * otherwise when the backoff is over.
   *
   * @param waiter What to tell.
   * @returns A function that forgets the waiter (its call ended while it waited).
   */
  whenReady(waiter: ReadyWaiter): () => void {
    if (this.#closed) {
      waiter.closed();
      return () => {};
    }
    this.#waiters.add(waiter);
    this.#serveWaiters(true);
    return () => {
      this.#waiters.delete(waiter);
      const connection = this.#connection;
      if (
        this.#waiters.size === 0 && connection.state === "backoff" &&
        connection.timer !== undefined
      ) {
        clearTimeout(connection.timer);
        connection.timer = undefined;
      }
    };
  }

  /**
   * Moves the calls waiting for ready along: starts them on a ready connection, or dials
   * (see {@linkcode SessionManager.whenReady}). `arrival` says a call has just come to wait.
   */
  #serveWaiters(arrival: boolean): void {
    if (this.#waiters.size === 0 || this.#closed) return;
    const connection = this.#connection;
    switch (connection.state) {
      case "ready": {
        const waiters = [...this.#waiters];
        this.#waiters.clear();
        for (const waiter of waiters) waiter.ready();
        return;
      }
      case "connecting":
        return;
      case "idle":
        this.#dial();
        return;
      case "backoff": {
        const now = Date.now();
        if (
          now >= connection.retryAt ||
          (arrival && now - this.#lastAttemptAt >= WAIT_FOR_READY_REDIAL_MS)
        ) {
          clearTimeout(connection.timer);
          this.#dial();
          return;
        }
        connection.timer ??= setTimeout(() => {
          connection.timer = undefined;
          if (this.#connection === connection) this.#serveWaiters(false);
        }, connection.retryAt - now);
        return;
      }
    }
  }

  /**
   * Says why there is no connection, for a call that gave up waiting for one.
   *
   * @returns The words, or `undefined` when no attempt failed.
   */
  describeLastError(): string | undefined {
    return this.lastError === undefined
      ? undefined
      : describeConnectionError(this.lastError);
  }

  /**
   * The connection to start a call on: the current one, or a new attempt.
   *
   * @returns The session; a call's stream may be opened on it at once.
   * @throws {GrpcError} `UNAVAILABLE` while the manager backs off after a failed attempt.
   * @throws {Deno.errors.NotCapable} Instead, when that attempt lacked net access.
   */
  connect(): CallSession {
    const session = this.session;
    if (session !== undefined && !session.closed && !session.destroyed) {
      return session;
    }
    // After a failed attempt the next one waits its backoff; calls meanwhile fail fast, as
    // gRPC's do by default (no wait-for-ready), rather than each dialling again.
    const connection = this.#connection;
    const wait = connection.state === "backoff"
      ? connection.retryAt - Date.now()
      : 0;
    if (wait > 0) {
      if (this.lastError instanceof Deno.errors.NotCapable) {
        throw this.lastError;
      }
      throw new GrpcError(
        Status.UNAVAILABLE,
        `Cannot reach ${this.authority}: ${
          this.describeLastError() ?? "Connection failed"
        } (next attempt in ${Math.ceil(wait)} ms)`,
        { cause: this.lastError },
      );
    }
    return this.#dial();
  }

  /**
   * Closes: calls still waiting for a connection end with `UNAVAILABLE`, and no attempt is
   * made for them again.
   */
  close(): void {
    this.#closed = true;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) waiter.closed();
  }

  /**
   * Drops the connection by closing its socket, without the GOAWAY frame a session close
   * sends: under Deno 2.9, a GOAWAY that reaches a grpc-js server after a stream of a few
   * thousand messages can abort the server's process inside nghttp2 (denoland/deno#36788).
   * Only called with no call in flight, or for a connection already lost.
   */
  disconnect(): void {
    const connection = this.#connection;
    this.#connection = { state: "idle" };
    switch (connection.state) {
      case "connecting":
        clearTimeout(connection.timer);
        // falls through
      case "ready":
        connection.socket.destroy();
        connection.session.destroy();
        break;
      case "backoff":
        clearTimeout(connection.timer);
        break;
    }
  }

  /** Makes a connection attempt, which is `connecting` until the server's SETTINGS arrive. */
  #dial(): CallSession {
    const previous = this.#connection;
    if (previous.state === "connecting" || previous.state === "backoff") {
      clearTimeout(previous.timer);
    }
    this.#lastAttemptAt = Date.now();
    const { hostname, port } = new URL(this.#url);
    const host = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
    const tlsSettings = this.#options.tls;
    const socket = tlsSettings === undefined
      ? net.connect({ host, port: Number(port || 80) })
      : connectTls({ host, port: Number(port || 443) }, tlsSettings);
    socket.setNoDelay(true);
    this.lastError = undefined;
    this.#wrongProtocol = undefined;
    this.#settingsArrived = false;
    this.#probe = undefined;
    let phase: AttemptPhase = "tcp";
    socket.once("connect", () => {
      phase = tlsSettings === undefined ? "settings" : "tls";
    });
    socket.once("secureConnect", () => {
      phase = "settings";
    });
    // Node's http2 reports a failed connection to the streams waiting on it before the
    // session's own error: the socket's error comes first.
    socket.once("error", (error: Error & { code?: string }) => {
      if (this.session === session) this.lastError ??= error;
    });
    // A server that drops the connection (one refusing a client certificate, or one that
    // speaks TLS to a plaintext client) may close it without an error: the calls on it must
    // then end UNAVAILABLE rather than CANCELLED.
    socket.once("end", () => {
      if (this.session === session) {
        this.lastError ??= Object.assign(
          new Error("Connection closed by the server"),
          { code: "ECONNRESET" },
        );
      }
    });
    const session = this.#openSession(socket);
    this.#watchFirstBytes(session, socket);
    const timeoutMs = this.#options.connectTimeoutMs ??
      DEFAULT_CONNECT_TIMEOUT_MS;
    // An infinite timeout never fires (`setTimeout` would fire at once).
    const timer = setTimeout(() => {
      if (this.session !== session || !Number.isFinite(timeoutMs)) return;
      this.lastError = Object.assign(
        new Error(describeConnectTimeout(phase, timeoutMs)),
        { code: "ERR_GRPC_CONNECT_TIMEOUT" },
      );
      socket.destroy();
      session.destroy();
    }, Number.isFinite(timeoutMs) ? timeoutMs : MAX_TIMER_MS);
    // gRPC counts a connection as up once the server's SETTINGS frame has arrived: a peer
    // that accepts TCP and says nothing is not a server.
    session.once("remoteSettings", () => {
      const connection = this.#connection;
      if (connection.state !== "connecting" || connection.session !== session) {
        return;
      }
      clearTimeout(connection.timer);
      this.#settingsArrived = true;
      this.#connection = { state: "ready", session, socket };
      this.#backoffMs = this.#options.initialBackoffMs ??
        DEFAULT_INITIAL_BACKOFF_MS;
      this.#serveWaiters(false);
    });
    session.once("close", () => {
      const connection = this.#connection;
      if (
        (connection.state !== "connecting" && connection.state !== "ready") ||
        connection.session !== session
      ) {
        return;
      }
      if (connection.state === "ready" || this.#closed) {
        // A connection that was up is redialled at once, by the next call.
        this.#connection = { state: "idle" };
        this.#serveWaiters(false);
        return;
      }
      clearTimeout(connection.timer);
      this.#backOff();
    });
    session.on("error", (error: Error & { code?: string }) => {
      this.lastError = error;
    });
    session.on("goaway", (_code: number, lastStreamId: number) => {
      this.#goaways.set(session, lastStreamId);
      // Its calls finish on it; new ones go on a new connection.
      if (this.session === session) {
        this.#connection = { state: "idle" };
        this.#serveWaiters(false);
      }
    });
    this.#connection = { state: "connecting", session, socket, timer };
    return session;
  }

  /**
   * Opens the HTTP/2 session on `socket`: the module's own for a cleartext connection
   * (`http2/client_connection.ts`), unless `GRPC_STREAM_HTTP2=node` asks for `node:http2`,
   * which also carries every TLS connection (its ALPN and certificate checks are Node's).
   */
  #openSession(socket: net.Socket): CallSession {
    if (
      this.#options.tls === undefined &&
      (this.#options.ownHttp2 ?? ownHttp2Chosen())
    ) {
      return new ClientConnection(socket, {
        authority: this.authority,
        scheme: "http",
      });
    }
    coalesceWrites(socket);
    const session = http2.connect(this.#url, {
      createConnection: () => socket,
    });
    // A server that shuts down gracefully sends a GOAWAY; see internals/deno_goaway_close.ts.
    deferCloseAfterGoaway(session);
    return session;
  }

  /**
   * Probes the server of a plaintext attempt that failed before its SETTINGS frame with a
   * broken pipe or a reset, and no first bytes to tell why: a server that answers the
   * preface with a TLS alert and closes at once resets a client still writing, and the reset
   * takes the alert with it. The probe sends only the preface (see `protocol_probe.ts`), so
   * the answer survives; it becomes {@linkcode SessionManager.lastError} when it tells.
   *
   * @returns Once the probe is over, or `undefined` when there is nothing to probe.
   */
  probeFailedAttempt(): Promise<void> | undefined {
    const code = this.#lastError?.code;
    if (
      this.#options.tls !== undefined || this.#settingsArrived ||
      this.#wrongProtocol !== undefined ||
      (code !== "EPIPE" && code !== "ECONNRESET")
    ) {
      return this.#probe;
    }
    const attempt = this.#lastAttemptAt;
    this.#probe ??= probeServer(parseAddress(this.authority)).then((bytes) => {
      if (this.#lastAttemptAt !== attempt) return;
      this.#wrongProtocol = wrongProtocolError(bytes);
    });
    return this.#probe;
  }

  /**
   * Reads the first bytes the server sends, until its SETTINGS frame arrives, to tell a
   * server that speaks TLS or HTTP/1 (it answers the preface with a TLS alert, or `HTTP/1.1
   * 400`) from a lost connection. Deno's `node:http2` reads the socket through its `data`
   * events, so a listener of ours sees the same bytes; it is added once the session has
   * added its own (at `connect`), so that no byte flows past the session. Under a runtime
   * whose session reads the socket's handle directly, no event comes, and the failure keeps
   * its plain words.
   */
  #watchFirstBytes(
    session: CallSession,
    socket: net.Socket,
  ): void {
    let seen = new Uint8Array(0);
    const listen = (chunk: Uint8Array): void => {
      const bytes = new Uint8Array(seen.length + chunk.length);
      bytes.set(seen);
      bytes.set(chunk, seen.length);
      seen = bytes.subarray(0, FIRST_BYTES_LIMIT);
      if (this.session === session) {
        this.#wrongProtocol = wrongProtocolError(seen) ?? this.#wrongProtocol;
      }
      if (seen.length >= FIRST_BYTES_LIMIT) stop();
    };
    const stop = (): void => {
      socket.off("data", listen);
    };
    session.once("connect", () => socket.on("data", listen));
    session.once("remoteSettings", stop);
    session.once("close", stop);
  }

  /** A connection attempt failed: the next one waits, longer after each failure. */
  #backOff(): void {
    const jitter = 1 + BACKOFF_JITTER * (2 * Math.random() - 1);
    const retryAt = Date.now() + this.#backoffMs * jitter;
    this.#backoffMs = Math.min(
      this.#backoffMs *
        (this.#options.backoffMultiplier ?? DEFAULT_BACKOFF_MULTIPLIER),
      this.#options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS,
    );
    this.#connection = { state: "backoff", retryAt, timer: undefined };
    this.#serveWaiters(false);
  }
}
