/**
 * The server side of one HTTP/2 connection (RFC 9113), on a socket that has sent nothing yet:
 * request streams from HEADERS (and CONTINUATION) through DATA to their end or reset, flow
 * control both ways, PING, GOAWAY both ways, and the checks a server owes its peer, on the
 * frames `frame_reader.ts` cuts from the socket's bytes. Each new request stream goes to
 * `onStream` as a {@linkcode ServerStream}. What the connection sends in one turn of the
 * event loop leaves in one socket write.
 *
 * Against hostile peers it keeps what nghttp2 keeps for `node:http2`: limits on the header
 * list and the header block, on streams at once, on what waits for a peer that does not read,
 * and the budgets of `proto/http2/peer_limits.ts`. Its life (handshake, drain, close) is
 * `connection_phase.ts`; its open streams and receive windows, `stream_table.ts`.
 *
 * @module
 */
import { EventEmitter } from "node:events";
import type http2 from "node:http2";
import type net from "node:net";
import { setImmediate } from "node:timers";
import {
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FrameType,
  MAX_WINDOW,
  Setting,
} from "../../proto/http2/frames.ts";
import {
  type DataFrame,
  type FrameHandler,
  FrameReader,
  type HeaderBlock,
} from "../../proto/http2/frame_reader.ts";
import type { Field } from "./header_fields.ts";
import { type DecodedRequest, RequestBlocks } from "./request_blocks.ts";
import { ConnectionOutput } from "./connection_output.ts";
import { ConnectionPhase, MAX_STREAM } from "./connection_phase.ts";
import { ServerStream, type StreamHost } from "./server_stream.ts";
import {
  ConnectionLimits,
  type LimitBreach,
} from "../../proto/http2/peer_limits.ts";
import {
  CONNECTION_WINDOW,
  STREAM_WINDOW,
  StreamTable,
} from "./stream_table.ts";

/** How a connection serves. */
export interface ConnectionOptions {
  /** Told of each new request stream, with its headers. */
  onStream(stream: ServerStream, headers: http2.IncomingHttpHeaders): void;
  /**
   * The most streams the peer may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
   *
   * @default {4_294_967_295}
   */
  maxConcurrentStreams?: number | undefined;
  /**
   * The largest header list the peer may send (SETTINGS_MAX_HEADER_LIST_SIZE): past it the
   * call ends with `RESOURCE_EXHAUSTED`.
   *
   * @default {65_536}
   */
  maxHeaderListBytes?: number;
  /**
   * How long the preface and the first SETTINGS may take, in milliseconds; 0 waits forever.
   *
   * @default {10_000}
   */
  handshakeTimeout?: number;
}

/** Header blocks longer than the header list limit and this, with their CONTINUATIONs. */
const MAX_BLOCK_SLACK = 16_384;

/**
 * One server connection.
 *
 * @example
 * ```ts ignore
 * new Http2Connection(socket, {
 *   onStream(stream) {
 *     stream.respond({ ":status": 404 }, { endStream: true });
 *   },
 * });
 * ```
 */
export class Http2Connection extends EventEmitter
  implements StreamHost, FrameHandler {
  /** The connection's socket. */
  readonly socket: net.Socket;
  readonly #onStream: ConnectionOptions["onStream"];
  readonly #maxConcurrent: number;
  readonly #maxHeaderList: number;
  readonly #phase: ConnectionPhase;
  readonly #reader: FrameReader;
  readonly #output: ConnectionOutput;
  readonly #blocks: RequestBlocks;
  readonly #streams = new StreamTable();
  readonly #limits = new ConnectionLimits();

  /**
   * Serves HTTP/2 on `socket`, which must not have been read yet.
   *
   * @param socket A new connection's socket.
   * @param options Where new streams go, and the limits.
   */
  constructor(socket: net.Socket, options: ConnectionOptions) {
    super();
    this.socket = socket;
    this.#onStream = options.onStream;
    this.#maxConcurrent = options.maxConcurrentStreams ?? 4_294_967_295;
    this.#maxHeaderList = options.maxHeaderListBytes ?? 65_536;
    this.#blocks = new RequestBlocks(this.#maxHeaderList);
    this.#reader = new FrameReader(this, {
      maxBlockBytes: this.#maxHeaderList + MAX_BLOCK_SLACK,
      peer: "client",
    });
    this.#output = new ConnectionOutput(socket, {
      written: () => {
        if (this.#phase.closed) socket.end();
      },
    });
    this.#phase = new ConnectionPhase({
      handshakeTimeout: options.handshakeTimeout ?? 10_000,
      onTimeout: () => this.destroy(),
    });
    const settings: [number, number][] = [
      [Setting.ENABLE_PUSH, 0],
      [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
      [Setting.MAX_HEADER_LIST_SIZE, this.#maxHeaderList],
    ];
    if (this.#maxConcurrent < 4_294_967_295) {
      settings.push([Setting.MAX_CONCURRENT_STREAMS, this.#maxConcurrent]);
    }
    this.#output.writer.settings(settings);
    this.#output.writer.windowUpdate(0, CONNECTION_WINDOW - DEFAULT_WINDOW);
    this.#output.schedule();
    socket.setNoDelay?.(true);
    socket.on("data", (chunk: Uint8Array) => this.#reader.receive(chunk));
    socket.on("drain", () => this.#limits.socketDrained());
    socket.on("close", () => this.#closeAll(ErrorCode.CANCEL));
    socket.on("error", () => this.#closeAll(ErrorCode.CANCEL));
  }

  /** How many streams are open. */
  get openStreams(): number {
    return this.#streams.size;
  }

  /** Whether the connection has closed. */
  get closed(): boolean {
    return this.#phase.closed;
  }

  /** Whether the socket is gone, as a `node:http2` session says it. */
  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  /** The open streams: a copy, which closing them does not change. */
  streams(): ServerStream[] {
    return this.#streams.values();
  }

  /**
   * Calls `listener` once the connection has closed.
   *
   * @param listener The listener.
   */
  onClose(listener: () => void): void {
    this.#phase.onClose(listener);
  }

  /**
   * Starts a graceful close (RFC 9113 §6.8): a GOAWAY with the largest stream identifier and
   * a PING, then, once the PING comes back (or after `pingWaitMs`), the final GOAWAY with the
   * last stream opened. Streams in flight finish; the connection closes once they have.
   *
   * @param pingWaitMs How long to wait for the PING's answer.
   */
  drain(pingWaitMs: number): void {
    if (!this.#phase.drain(pingWaitMs, () => this.close())) return;
    this.#output.writer.goAway(MAX_STREAM, { code: ErrorCode.NO_ERROR });
    this.#output.writer.frame(FrameType.PING, { payload: new Uint8Array(8) });
    this.#output.schedule();
  }

  /**
   * Closes a connection accepted while the server drains once its first streams have opened
   * (the final GOAWAY then names them), or after `waitMs` if none opens. A peer that has just
   * connected is sending its first requests: the drain's first GOAWAY would reach some clients
   * (python's h2 among them) as the end of the connection before its answers.
   *
   * @param waitMs How long to wait for a stream.
   */
  retireAfterFirstStreams(waitMs: number): void {
    const timer = setTimeout(() => this.close(), waitMs);
    this.once("stream", () => {
      clearTimeout(timer);
      // After the read at hand: the streams it opens are served too.
      setImmediate(() => this.close());
    });
    this.onClose(() => clearTimeout(timer));
  }

  /**
   * Sends the final GOAWAY (the last stream opened, `NO_ERROR`): streams in flight finish, and
   * the connection closes once they have.
   */
  close(): void {
    if (!this.#phase.closeFinally(this.#streams.lastStream)) return;
    this.#output.writer.goAway(this.#streams.lastStream, {
      code: ErrorCode.NO_ERROR,
    });
    this.#output.schedule();
    this.#endIfIdle();
  }

  /** Closes the socket at once: every open stream is reset. */
  destroy(): void {
    this.#closeAll(ErrorCode.CANCEL);
    this.socket.destroy();
  }

  /**
   * Writes what is framed, then closes the socket with no GOAWAY, as a cut cable would.
   */
  cut(): void {
    this.#reader.stop();
    this.#closeAll(ErrorCode.CANCEL);
    const socket = this.socket;
    if (socket.destroyed) return;
    const rest = this.#output.writer.take();
    socket.write(rest, () => socket.destroy());
    setTimeout(() => socket.destroy(), 1_000).unref?.();
  }

  // --- StreamHost ---

  sendHeaders(
    stream: ServerStream,
    block: { fields: readonly Field[]; endStream: boolean },
  ): void {
    this.#output.sendHeaders(stream, block);
  }

  sendEnd(stream: ServerStream): void {
    this.#output.sendEnd(stream);
  }

  pump(stream: ServerStream): void {
    this.#output.pump(stream);
  }

  localEnded(stream: ServerStream): void {
    if (!stream.remoteEnded) {
      // The response is complete: the rest of the request is not needed (RFC 9113 §8.1).
      this.#resetFrame(stream.id, ErrorCode.NO_ERROR);
      stream.remoteEnded = true;
    }
    this.#forget(stream, ErrorCode.NO_ERROR);
  }

  reset(stream: ServerStream, code: number): void {
    if (stream.closed) return;
    this.#resetFrame(stream.id, code);
    this.#forget(stream, code);
  }

  consumed(stream: ServerStream, bytes: number): void {
    const increment = this.#streams.consumed(stream, bytes);
    if (increment > 0) {
      this.#output.writer.windowUpdate(stream.id, increment);
      this.#output.schedule();
    }
  }

  // --- Receiving (FrameHandler) ---

  data({ stream: id, endStream, data, flowLength }: DataFrame): void {
    const increment = this.#streams.received(flowLength);
    if (increment > 0) {
      this.#output.writer.windowUpdate(0, increment);
      this.#output.schedule();
    }
    const breach = this.#limits.dataFrame(data.length, { endStream });
    if (breach !== undefined) return this.#breach(breach);
    const stream = this.#streams.get(id);
    if (stream === undefined) {
      if (this.#streams.idle(id)) {
        return this.#fail(ErrorCode.PROTOCOL_ERROR, "DATA on an idle stream");
      }
      // A stream closed already: its frames are ignored (RFC 9113 §5.1), not answered one by
      // one, which would let a peer make the server write a frame per frame it sends.
      return;
    }
    if (stream.remoteEnded) {
      return this.#streamError(id, ErrorCode.STREAM_CLOSED);
    }
    if (flowLength > stream.receiveWindow) {
      return this.#streamError(id, ErrorCode.FLOW_CONTROL_ERROR);
    }
    stream.receiveWindow -= flowLength;
    // Padding is never read: it goes back to the peer at once.
    if (flowLength > data.length) {
      this.consumed(stream, flowLength - data.length);
    }
    if (data.length > 0) {
      // A view, no copy: a socket's chunks stay the reader's to keep (`node:net` hands each
      // read over in memory of its own), and so do the joins of a frame split across reads.
      stream.push(data);
    }
    if (endStream) this.#remoteEnded(stream);
  }

  headers(block: HeaderBlock): void {
    if (block.stream % 2 === 0) {
      return this.#fail(
        ErrorCode.PROTOCOL_ERROR,
        "HEADERS on a stream a client cannot open",
      );
    }
    const decoded = this.#blocks.read(block.block);
    if (decoded.kind === "undecodable") {
      return this.#fail(ErrorCode.COMPRESSION_ERROR, decoded.reason);
    }
    const id = block.stream;
    const target = this.#streams.headersTarget(id);
    if (target.kind === "trailers") {
      // Trailers: they must end the stream; their fields are not read.
      const existing = target.stream;
      if (existing.remoteEnded || !block.endStream) {
        const code = existing.remoteEnded
          ? ErrorCode.STREAM_CLOSED
          : ErrorCode.PROTOCOL_ERROR;
        return this.#streamError(id, code);
      }
      return this.#remoteEnded(existing);
    }
    if (target.kind === "closed") {
      return this.#fail(ErrorCode.PROTOCOL_ERROR, "HEADERS on a closed stream");
    }
    if (this.#phase.refuses(id)) return;
    if (this.#streams.size >= this.#maxConcurrent) {
      return this.#resetFrame(id, ErrorCode.REFUSED_STREAM);
    }
    this.#openStream(id, { decoded, endStream: block.endStream });
  }

  #openStream(
    id: number,
    { decoded, endStream }: {
      decoded: Exclude<DecodedRequest, { kind: "undecodable" }>;
      endStream: boolean;
    },
  ): void {
    if (decoded.kind === "malformed") {
      return this.#resetFrame(id, ErrorCode.PROTOCOL_ERROR);
    }
    const stream = new ServerStream(id, {
      host: this,
      sendWindow: this.#output.peerInitialWindow,
      receiveWindow: STREAM_WINDOW,
    });
    this.#streams.add(stream);
    if (endStream) stream.push(null);
    if (decoded.kind !== "request") {
      stream.respond(decoded.answer, { endStream: true });
      return;
    }
    // As a `node:http2` session does, for what watches the connection's streams.
    this.emit("stream", stream, decoded.headers);
    this.#onStream(stream, decoded.headers);
  }

  #remoteEnded(stream: ServerStream): void {
    stream.push(null);
    if (stream.send.kind === "done") this.#forget(stream, ErrorCode.NO_ERROR);
  }

  rstStream({ stream: id, code }: { stream: number; code: number }): void {
    if (this.#streams.idle(id)) {
      return this.#fail(
        ErrorCode.PROTOCOL_ERROR,
        "RST_STREAM on an idle stream",
      );
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    const answered = stream.send.kind !== "idle";
    this.#forget(stream, code);
    const breach = this.#limits.reset(answered);
    if (breach !== undefined) this.#breach(breach);
  }

  settings(
    { ack, entries }: { ack: boolean; entries: [number, number][] },
  ): void {
    if (ack) {
      this.#phase.settingsAcknowledged();
      return this.#endIfIdle();
    }
    for (const [setting, value] of entries) {
      const problem = this.#output.takeSetting(setting, {
        value,
        streams: this.#streams.values(),
      });
      if (problem !== undefined) {
        return this.#fail(problem.code, problem.reason);
      }
    }
    const breach = this.#limits.replyAsked(this.#output.socketBlocked);
    if (breach !== undefined) return this.#breach(breach);
    this.#output.writer.header(FrameType.SETTINGS, {
      length: 0,
      flags: Flag.ACK,
    });
    this.#output.schedule();
    this.#phase.opened();
    for (const stream of this.#streams.values()) {
      if (stream.queue.length > 0) this.pump(stream);
    }
  }

  ping({ ack, payload }: { ack: boolean; payload: Uint8Array }): void {
    if (ack) return this.#phase.pingAcknowledged();
    const breach = this.#limits.replyAsked(this.#output.socketBlocked);
    if (breach !== undefined) return this.#breach(breach);
    this.#output.writer.frame(FrameType.PING, { flags: Flag.ACK, payload });
    this.#output.schedule();
  }

  goAway(_frame: { lastStream: number; code: number }): void {
    // The client opens no more streams; those open finish, then the connection ends.
    this.#phase.peerWentAway(this.#streams.lastStream);
    this.#endIfIdle();
  }

  windowUpdate(
    { stream: id, increment }: { stream: number; increment: number },
  ): void {
    if (id === 0) {
      if (increment === 0) {
        return this.#fail(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      }
      if (!this.#output.growWindow(increment)) {
        return this.#fail(ErrorCode.FLOW_CONTROL_ERROR, "Window overflow");
      }
      return;
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) {
      if (this.#streams.idle(id)) {
        this.#fail(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
      }
      return;
    }
    if (increment === 0) {
      return this.#streamError(id, ErrorCode.PROTOCOL_ERROR);
    }
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) {
      return this.#streamError(id, ErrorCode.FLOW_CONTROL_ERROR);
    }
    if (stream.queue.length > 0) this.pump(stream);
  }

  priority(_stream: number): void {
  }

  streamFailed({ stream, code }: { stream: number; code: number }): void {
    this.#streamError(stream, code);
  }

  #streamError(id: number, code: number): void {
    const stream = this.#streams.get(id);
    this.#resetFrame(id, code);
    if (stream !== undefined) this.#forget(stream, code);
  }

  failed({ code, reason }: { code: number; reason: string }): void {
    this.#fail(code, reason);
  }

  /** A connection error: GOAWAY with `code`, every stream reset, the socket ended. */
  #fail(code: number, reason: string): void {
    if (this.#phase.closed) return;
    this.#reader.stop();
    this.#output.writer.goAway(this.#streams.lastStream, { code, reason });
    this.#closeAll(code);
    this.#output.flush();
  }

  // --- Sending ---

  #resetFrame(id: number, code: number): void {
    this.#output.writer.rstStream(id, code);
    this.#output.schedule();
  }

  // --- Ending ---

  /** Forgets a stream that has closed, and closes the connection if it was the last. */
  #forget(stream: ServerStream, code: number): void {
    this.#streams.delete(stream);
    this.#output.forget(stream);
    stream.closeWith(code);
    this.#endIfIdle();
  }

  #breach(breach: LimitBreach): void {
    if (breach.kind === "retire") {
      // After the frames of this read: a flood in one read meets the cut below first.
      setImmediate(() => this.close());
      return;
    }
    this.#fail(ErrorCode.ENHANCE_YOUR_CALM, breach.reason);
  }

  #endIfIdle(): void {
    if (!this.#phase.mayEnd(this.#streams.size)) return;
    this.#closeAll(ErrorCode.NO_ERROR);
    this.#output.schedule();
  }

  #closeAll(code: number): void {
    if (!this.#phase.end()) return;
    this.#reader.stop();
    this.#streams.closeAll(code);
    this.#output.clear();
    this.#phase.ended();
    this.emit("close");
  }
}
