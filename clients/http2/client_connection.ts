/**
 * The client side of one HTTP/2 connection (RFC 9113) on a cleartext socket: request streams
 * from HEADERS through DATA to their end or reset, flow control both ways, the server's
 * stream limit (requests past it wait for a slot), PING both ways, and GOAWAY. Frames come
 * from the shared `proto/http2/` reader and go out through its writer, every frame of one
 * turn of the event loop in one socket write.
 *
 * It has the surface of `node:http2`'s `ClientHttp2Session` that `session_manager.ts`,
 * `channel.ts` and `keepalive.ts` use, `CallSession` in `../http2_surface.ts` (`request`,
 * `ping`, `ref`, `unref`, `close`, `destroy`, `closed`, `destroyed`, `remoteSettings`, and the
 * events `'connect'`, `'remoteSettings'`, `'goaway'`, `'error'`, `'close'`), so the calls'
 * code is the same on both. Deno's `node:http2` spends about 100 µs of CPU on a short call (nghttp2
 * behind a crossing into JavaScript per frame, a `Duplex` per stream); this spends a few.
 * What it sends is `client_output.ts`; the server's settings, the PINGs awaited, the receive
 * windows, the response header blocks and the errors it raises are the files beside it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import type http2 from "node:http2";
import type net from "node:net";
import process from "node:process";
import {
  ErrorCode,
  Flag,
  FrameType,
  MAX_WINDOW,
} from "../../proto/http2/frames.ts";
import {
  type DataFrame,
  FrameReader,
  type HeaderBlock,
} from "../../proto/http2/frame_reader.ts";
import { fieldsOf } from "../../proto/http2/header_objects.ts";
import {
  ConnectionLimits,
  type LimitBreach,
} from "../../proto/http2/peer_limits.ts";
import { encodeHeaderBlock } from "../../proto/http2/hpack_encoder.ts";
import { ClientOutput } from "./client_output.ts";
import {
  CONNECTION_WINDOW,
  ReceiveWindows,
  STREAM_WINDOW,
} from "./receive_windows.ts";
import { type PingCallback, SentPings } from "./sent_pings.ts";
import { MAX_HEADER_LIST, ResponseBlocks } from "./response_blocks.ts";
import {
  noNewStreams,
  protocolError,
  sessionError,
  streamError,
} from "./http2_errors.ts";
import { type RemoteSettings, ServerSettings } from "./server_settings.ts";
import { ClientStream, type StreamHost } from "./client_stream.ts";
import { StreamSlots } from "./stream_slots.ts";

/**
 * Where the connection is: taking new streams (`open`), taking none after a GOAWAY received
 * or a close asked for and ending once its streams have (`going away`), or over (`closed`).
 */
type ConnectionState =
  | { kind: "open" }
  | { kind: "going away" }
  | { kind: "closed" };

/** Where the connection is and what it speaks to. */
export interface ClientConnectionOptions {
  /** The `:authority` of every request. */
  authority: string;
  /** The `:scheme` of every request. */
  scheme: "http" | "https";
}

/**
 * One client HTTP/2 connection on `socket`.
 *
 * @example
 * ```ts ignore
 * const connection = new ClientConnection(net.connect(port), {
 *   authority: `127.0.0.1:${port}`,
 *   scheme: "http",
 * });
 * const stream = connection.request({ ":method": "POST", ":path": "/p" });
 * ```
 */
export class ClientConnection extends EventEmitter {
  /** The connection's socket. */
  readonly socket: net.Socket;
  readonly #authority: string;
  readonly #scheme: string;
  #state: ConnectionState = { kind: "open" };
  #settingsArrived = false;
  readonly #reader: FrameReader;
  readonly #responses = new ResponseBlocks();
  readonly #output: ClientOutput;
  readonly #streams = new StreamSlots();
  readonly #pings = new SentPings();
  readonly #windows: ReceiveWindows;
  readonly #settings = new ServerSettings();
  /** What the server may do before the connection ends: floods of empty frames or PINGs. */
  readonly #limits = new ConnectionLimits();
  #error: Error | undefined;
  /** What the streams ask of the connection. */
  readonly #host: StreamHost = {
    session: this,
    queued: (stream) => {
      if (stream.id !== undefined && !stream.closed) this.#output.send(stream);
    },
    consumed: (stream, bytes) => this.#consumed(stream, bytes),
    reset: (stream, code) => this.#reset(stream, code),
    finished: (stream) => this.#finished(stream),
  };

  /**
   * @param socket A socket that has sent nothing yet, connected or connecting.
   * @param options The requests' `:authority` and `:scheme`.
   */
  constructor(socket: net.Socket, options: ClientConnectionOptions) {
    super();
    this.socket = socket;
    this.#authority = options.authority;
    this.#scheme = options.scheme;
    this.#output = new ClientOutput(socket);
    this.#windows = new ReceiveWindows(this.#output.writer);
    this.#reader = new FrameReader({
      data: (frame) => this.#onData(frame),
      headers: (frame) => this.#onHeaders(frame),
      rstStream: (frame) => this.#onRstStream(frame),
      settings: (frame) => this.#onSettings(frame),
      ping: (frame) => this.#onPing(frame),
      goAway: (frame) => this.#onGoAway(frame),
      windowUpdate: (frame) => this.#onWindowUpdate(frame),
      priority: () => {},
      failed: (failure) => this.#fail(failure),
      streamFailed: ({ stream, code }) => {
        const open = this.#streams.get(stream);
        if (open !== undefined) this.#resetByUs(open, code);
      },
    }, { maxBlockBytes: MAX_HEADER_LIST * 2, peer: "server" });
    this.#output.greet({
      streamWindow: STREAM_WINDOW,
      connectionWindow: CONNECTION_WINDOW,
      maxHeaderList: MAX_HEADER_LIST,
    });
    socket.once("connect", () => this.emit("connect", this, socket));
    socket.on("data", (chunk: Uint8Array) => this.#reader.receive(chunk));
    socket.on("error", (error: Error) => {
      this.#error ??= error;
    });
    socket.on("close", () => this.destroy(this.#error));
  }

  /** The server's settings, as `node:http2` names those the channel reads. */
  get remoteSettings(): RemoteSettings {
    return this.#settings.remote;
  }

  /** Whether the connection takes no more streams. */
  get closed(): boolean {
    return this.#state.kind !== "open";
  }

  /** Whether the connection is over. */
  get destroyed(): boolean {
    return this.#state.kind === "closed";
  }

  /**
   * Opens a request stream; its HEADERS go at the end of this turn, or once a slot under the
   * server's stream limit frees.
   *
   * @param headers The request's headers (`:method` and `:path` among them).
   * @param options Whether the HEADERS end the request.
   * @returns The stream.
   * @throws {Error} When the connection takes no more streams.
   */
  request(
    headers: http2.OutgoingHttpHeaders,
    options: { endStream?: boolean } = {},
  ): ClientStream {
    if (this.#state.kind !== "open") {
      throw noNewStreams(this.destroyed);
    }
    const block = encodeHeaderBlock(fieldsOf({
      ":scheme": this.#scheme,
      ":authority": this.#authority,
      ...headers,
    }));
    const stream = new ClientStream(this.#host, {
      block,
      endStream: options.endStream ?? false,
    });
    stream.receiveWindow = STREAM_WINDOW;
    if (this.#streams.hasRoom(this.#settings.maxStreams)) this.#open(stream);
    else this.#streams.wait(stream);
    return stream;
  }

  /**
   * Sends a PING.
   *
   * @param callback Called with the round trip's duration once the ACK arrives.
   * @returns `true`.
   * @throws {Error} When the connection is over.
   */
  ping(callback: PingCallback): boolean {
    if (this.destroyed) {
      throw noNewStreams(true);
    }
    const payload = this.#pings.add(callback);
    this.#output.writer.frame(FrameType.PING, { payload });
    this.#output.schedule();
    return true;
  }

  /** Lets the process exit while the connection is idle. */
  unref(): void {
    this.socket.unref();
  }

  /** Keeps the process alive while the connection is open. */
  ref(): void {
    this.socket.ref();
  }

  /** Takes no new streams, and ends once the open ones have. */
  close(): void {
    if (this.#state.kind !== "open") return;
    this.#state = { kind: "going away" };
    this.#endIfIdle();
  }

  /**
   * Ends the connection at once: its socket is closed and its streams end.
   *
   * @param error What went wrong, if anything.
   */
  destroy(error?: Error): void {
    if (this.#state.kind === "closed") return;
    this.#state = { kind: "closed" };
    this.#reader.stop();
    this.socket.destroy();
    this.#output.clear();
    if (error !== undefined && this.listenerCount("error") > 0) {
      this.emit("error", error);
    }
    for (const stream of this.#streams.clear()) {
      stream.closeWith({
        code: ErrorCode.CANCEL,
        ...(error === undefined ? {} : { error }),
      });
    }
    this.#pings.fail(error ?? new Error("The connection closed"));
    process.nextTick(() => this.emit("close"));
  }

  /** Grows `stream`'s window once its reader has taken half of it. */
  #consumed(stream: ClientStream, bytes: number): void {
    if (stream.id === undefined || stream.closed) return;
    if (
      this.#windows.consumed(stream as ClientStream & { id: number }, bytes)
    ) {
      this.#output.schedule();
    }
  }

  /** Resets a stream this side gives up on, unless its HEADERS never went. */
  #reset(stream: ClientStream, code: number): void {
    const id = stream.id;
    this.#output.forget(stream);
    if (id === undefined) {
      // Its HEADERS never went: nothing reaches the server.
      this.#streams.unwait(stream);
      return;
    }
    if (!this.#streams.delete(id) || this.destroyed) return;
    this.#output.writer.rstStream(id, code);
    this.#output.schedule();
    this.#openWaiting();
    this.#endIfIdle();
  }

  /** Forgets a stream the server ended, its reader done with it. */
  #finished(stream: ClientStream): void {
    const id = stream.id;
    if (id === undefined || !this.#streams.delete(id)) return;
    this.#output.forget(stream);
    if (!stream.endSent && !this.destroyed) {
      // The server answered before the request ended: it needs no more of it.
      this.#output.writer.rstStream(id, ErrorCode.NO_ERROR);
      this.#output.schedule();
    }
    this.#openWaiting();
    this.#endIfIdle();
  }

  #onData(frame: DataFrame): void {
    const breach = this.#limits.dataFrame(frame.data.length, frame);
    if (breach !== undefined) return this.#breached(breach);
    const window = this.#windows.received(frame.flowLength);
    if (window === "exceeded") {
      return this.#fail({
        code: ErrorCode.FLOW_CONTROL_ERROR,
        reason: "Connection window exceeded",
      });
    }
    if (window === "granted") this.#output.schedule();
    const stream = this.#streams.get(frame.stream);
    if (stream === undefined) return this.#checkKnown(frame.stream);
    stream.receiveWindow -= frame.flowLength;
    if (stream.receiveWindow < 0) {
      return this.#resetByUs(stream, ErrorCode.FLOW_CONTROL_ERROR);
    }
    const padding = frame.flowLength - frame.data.length;
    if (padding > 0) this.#consumed(stream, padding);
    stream.receivedData(frame.data, frame.endStream);
  }

  #onHeaders(frame: HeaderBlock): void {
    let response;
    try {
      response = this.#responses.decode(frame.block);
    } catch (error) {
      return this.#fail({
        code: ErrorCode.COMPRESSION_ERROR,
        reason: (error as Error).message,
      });
    }
    const stream = this.#streams.get(frame.stream);
    if (stream === undefined) return this.#checkKnown(frame.stream);
    if (response.kind !== "headers") {
      return this.#resetByUs(stream, ErrorCode.PROTOCOL_ERROR, response);
    }
    stream.receivedHeaders(response.headers, frame.endStream);
  }

  #onRstStream(frame: { stream: number; code: number }): void {
    const stream = this.#streams.get(frame.stream);
    if (stream === undefined) return this.#checkKnown(frame.stream);
    this.#streams.delete(frame.stream);
    this.#output.forget(stream);
    const code = frame.code;
    stream.closeWith({
      code,
      ...(code === ErrorCode.NO_ERROR || code === ErrorCode.CANCEL
        ? {}
        : { error: streamError(code) }),
    });
    this.#openWaiting();
    this.#endIfIdle();
  }

  #onSettings(frame: { ack: boolean; entries: [number, number][] }): void {
    if (frame.ack) return;
    const breach = this.#limits.replyAsked(this.#output.socketBlocked);
    if (breach !== undefined) return this.#breached(breach);
    for (const [setting, value] of frame.entries) {
      const taken = this.#settings.take(setting, value);
      if ("code" in taken) return this.#fail(taken);
      this.#output.peerMaxFrame = this.#settings.maxFrame;
      if (taken.windowDelta === 0) continue;
      for (const stream of this.#streams.opened()) {
        stream.sendWindow += taken.windowDelta;
        if (stream.sendWindow > MAX_WINDOW) {
          return this.#fail({
            code: ErrorCode.FLOW_CONTROL_ERROR,
            reason: "Window",
          });
        }
        if (taken.windowDelta > 0) this.#output.send(stream);
      }
    }
    this.#output.writer.frame(FrameType.SETTINGS, { flags: Flag.ACK });
    this.#output.schedule();
    this.#openWaiting();
    if (!this.#settingsArrived) {
      this.#settingsArrived = true;
      this.emit("remoteSettings", this.remoteSettings);
    }
  }

  #onPing(frame: { ack: boolean; payload: Uint8Array }): void {
    if (!frame.ack) {
      const breach = this.#limits.replyAsked(this.#output.socketBlocked);
      if (breach !== undefined) return this.#breached(breach);
      this.#output.writer.frame(FrameType.PING, {
        flags: Flag.ACK,
        payload: frame.payload,
      });
      this.#output.schedule();
      return;
    }
    this.#pings.acked(frame.payload);
  }

  #onGoAway(frame: { lastStream: number; code: number }): void {
    if (this.#state.kind === "closed") return;
    this.#state = { kind: "going away" };
    this.emit("goaway", frame.code, frame.lastStream, Buffer.alloc(0));
    if (frame.code !== ErrorCode.NO_ERROR) {
      this.destroy(sessionError(frame.code));
      return;
    }
    // Streams past the last one the server serves, and those never sent, were not processed.
    for (const stream of this.#streams.opened()) {
      const id = stream.id!;
      if (id <= frame.lastStream) continue;
      this.#streams.delete(id);
      this.#output.forget(stream);
      stream.closeWith({ code: ErrorCode.REFUSED_STREAM });
    }
    for (const stream of this.#streams.takeWaiting()) {
      stream.closeWith({ code: ErrorCode.REFUSED_STREAM, unsentHeaders: true });
    }
    this.#endIfIdle();
  }

  #onWindowUpdate(frame: { stream: number; increment: number }): void {
    if (frame.stream === 0) {
      if (frame.increment === 0 || !this.#output.growWindow(frame.increment)) {
        this.#fail({
          code: frame.increment === 0
            ? ErrorCode.PROTOCOL_ERROR
            : ErrorCode.FLOW_CONTROL_ERROR,
          reason: "Connection window update",
        });
      }
      return;
    }
    const stream = this.#streams.get(frame.stream);
    if (stream === undefined) return this.#checkKnown(frame.stream);
    stream.sendWindow += frame.increment;
    if (frame.increment === 0 || stream.sendWindow > MAX_WINDOW) {
      return this.#resetByUs(
        stream,
        frame.increment === 0
          ? ErrorCode.PROTOCOL_ERROR
          : ErrorCode.FLOW_CONTROL_ERROR,
      );
    }
    this.#output.send(stream);
  }

  /** The server broke the protocol: GOAWAY with `code`, and the connection ends. */
  #fail(failure: { code: number; reason: string }): void {
    if (this.destroyed) return;
    this.#output.writer.goAway(0, failure);
    this.#output.flush();
    this.destroy(protocolError(failure));
  }

  /** The server flooded the connection: it ends with `ENHANCE_YOUR_CALM`. */
  #breached(breach: LimitBreach): void {
    this.#fail({
      code: ErrorCode.ENHANCE_YOUR_CALM,
      reason: breach.kind === "end" ? breach.reason : "Flood",
    });
  }

  /** A frame on a stream this side does not know: fine if it was open once, else an error. */
  #checkKnown(id: number): void {
    if (!this.#streams.openedOnce(id)) {
      this.#fail({
        code: ErrorCode.PROTOCOL_ERROR,
        reason: `Frame on stream ${id}, which this side never opened`,
      });
    }
  }

  /** Resets a stream the server got wrong, and ends its call with `how`. */
  #resetByUs(
    stream: ClientStream,
    code: number,
    how: { error?: Error } = {},
  ): void {
    this.#reset(stream, code);
    stream.closeWith({
      code,
      error: how.error ?? streamError(code),
    });
  }

  /** Sends the HEADERS of `stream` as the next stream. */
  #open(stream: ClientStream): void {
    const id = this.#streams.open(stream);
    if (id === undefined) {
      // Out of identifiers: new calls go on a new connection, as after a GOAWAY.
      stream.closeWith({ code: ErrorCode.REFUSED_STREAM, unsentHeaders: true });
      if (this.#state.kind === "open") {
        this.#state = { kind: "going away" };
        this.emit(
          "goaway",
          ErrorCode.NO_ERROR,
          this.#streams.lastOpened,
          Buffer.alloc(0),
        );
      }
      return;
    }
    this.#output.writer.headerBlock(id, {
      block: stream.headerBlock!,
      endStream: stream.endOnHeaders,
      maxFrame: this.#output.peerMaxFrame,
    });
    stream.sendWindow = this.#settings.initialWindow;
    stream.opened(id);
    if (stream.endOnHeaders) stream.endSent = true;
    this.#output.send(stream);
  }

  /** Sends the HEADERS that waited, as far as the server's stream limit allows. */
  #openWaiting(): void {
    while (this.#state.kind === "open") {
      const next = this.#streams.nextWaiting(this.#settings.maxStreams);
      if (next === undefined) return;
      this.#open(next);
    }
  }

  /** Ends a connection that takes no new streams once its last one has ended. */
  #endIfIdle(): void {
    if (this.#state.kind !== "going away" || !this.#streams.empty) return;
    this.#output.flush();
    this.destroy();
  }
}
