/**
 * Writes the replies of one streaming call, many messages to one HTTP/2 write.
 *
 * grpc-js hands every message to HTTP/2 as a write of its own, and under Deno each of those
 * becomes a socket write: a million-message `Pow` spends most of its time in them (about
 * 90,000 messages/s). Framing the messages here and writing them to the call's HTTP/2
 * stream in chunks of up to 16 KiB moves over a million messages/s. grpc-js still sends the
 * headers (`sendMetadata`) and the status (`end`, or the `'error'` event), so the call stays
 * an ordinary grpc-js call; when its HTTP/2 stream cannot be reached (a grpc-js that keeps it
 * elsewhere), every message goes through `call.write` instead, as before.
 *
 * Two limits apply to the framed messages as they would to `call.write`: a message larger than
 * `grpc.max_send_message_length` ends the call with `RESOURCE_EXHAUSTED`, as grpc-js does; and
 * a writer waits not only for its HTTP/2 stream but also for the connection's socket, so that a
 * peer that advertises huge HTTP/2 windows and then stops reading holds at most
 * {@linkcode SOCKET_BUFFER_LIMIT} bytes of replies per connection (plus one chunk per stream).
 * Deno's `node:http2` (2.9.6) hands every framed byte to the socket as soon as the peer's window
 * allows it and reports the stream drained, however full the socket is.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { setImmediate } from "node:timers";
import type { CallRecorder } from "../proto/telemetry.ts";
import { serverCallRecorder } from "./telemetry.ts";

/** A server call that sends messages: server streaming or bidirectional. */
export type WritableCall =
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/** The part of a connection's socket the writer watches. */
interface RawSocket {
  readonly writableLength: number;
  once(event: "drain" | "close", listener: () => void): unknown;
  off(event: "drain" | "close", listener: () => void): unknown;
}

/** The part of an HTTP/2 stream the writer uses. */
interface RawStream {
  readonly destroyed: boolean;
  readonly closed: boolean;
  readonly session?: { readonly socket?: unknown } | undefined;
  write(chunk: Uint8Array): boolean;
  on(event: "error", listener: (error: Error) => void): unknown;
  once(event: "drain" | "close", listener: () => void): unknown;
  off(event: "drain" | "close", listener: () => void): unknown;
}

/** How many bytes of framed messages to gather before writing them. */
const CHUNK_BYTES = 16 * 1024;

/**
 * How many bytes a connection's socket may hold unsent before the writers of its calls wait
 * for it to drain.
 */
export const SOCKET_BUFFER_LIMIT = 1024 * 1024;

/** One promise per socket for its next `drain`, so waiting writers share one listener. */
const socketDrains = new WeakMap<RawSocket, Promise<void>>();

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

function nextDrain(socket: RawSocket): Promise<void> {
  let drain = socketDrains.get(socket);
  if (drain === undefined) {
    drain = new Promise<void>((resolve) => {
      const settle = (): void => {
        onSocket(() => socket.off("drain", settle), undefined);
        onSocket(() => socket.off("close", settle), undefined);
        socketDrains.delete(socket);
        resolve();
      };
      const listening = onSocket(() => {
        socket.once("drain", settle);
        socket.once("close", settle);
        return true;
      }, false);
      if (!listening) settle();
    });
    socketDrains.set(socket, drain);
  }
  return drain;
}

function socketOf(stream: RawStream): RawSocket | undefined {
  return onSocket(() => {
    const socket = stream.session?.socket as Partial<RawSocket> | undefined;
    if (
      typeof socket?.writableLength !== "number" ||
      typeof socket.once !== "function" || typeof socket.off !== "function"
    ) {
      return undefined;
    }
    return socket as RawSocket;
  }, undefined);
}

/** grpc-js's send limit for the call (`grpc.max_send_message_length`); -1 is none. */
function sendLimitOf(call: WritableCall): number {
  const limit = (call as unknown as { call?: { maxSendMessageSize?: unknown } })
    .call?.maxSendMessageSize;
  return typeof limit === "number" && limit >= 0 ? limit : -1;
}

/** Finds the HTTP/2 stream under a grpc-js server call, when grpc-js exposes it. */
function rawStreamOf(call: WritableCall): RawStream | undefined {
  const inner =
    (call as unknown as { call?: { stream?: unknown; sendMetadata?: unknown } })
      .call;
  const stream = inner?.stream as Partial<RawStream> | undefined;
  if (
    typeof inner?.sendMetadata !== "function" ||
    typeof stream?.write !== "function" ||
    typeof stream.once !== "function" || typeof stream.off !== "function" ||
    typeof stream.on !== "function"
  ) {
    return undefined;
  }
  return stream as RawStream;
}

/** Writes reply messages for one call, honouring HTTP/2 flow control. */
export class ReplyWriter<Reply> {
  #call: WritableCall;
  #encode: (reply: Reply) => Uint8Array;
  #stream: RawStream | undefined;
  #headersSent = false;
  #chunk: Buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  #used = 0;
  #flushScheduled = false;
  #needsDrain = false;
  #telemetry: CallRecorder | undefined;
  #socket: RawSocket | undefined;
  #sendLimit: number;
  #failed = false;

  /**
   * @param call The call to answer.
   * @param encode Encodes one reply message (without the 5-byte gRPC prefix).
   */
  constructor(call: WritableCall, encode: (reply: Reply) => Uint8Array) {
    this.#call = call;
    this.#encode = encode;
    this.#stream = rawStreamOf(call);
    this.#telemetry = serverCallRecorder(call);
    this.#socket = this.#stream === undefined
      ? undefined
      : socketOf(this.#stream);
    this.#sendLimit = sendLimitOf(call);
    // A write racing a reset stream reports an error on the stream; the call is over by then
    // and grpc-js reports it as cancelled, so the error needs no other handling.
    this.#stream?.on("error", () => {});
  }

  /** Whether the call is over (cancelled, timed out, or its stream closed). */
  get closed(): boolean {
    const stream = this.#stream;
    return this.#failed || this.#call.cancelled ||
      (stream !== undefined && (stream.destroyed || stream.closed));
  }

  /** Whether the connection's socket holds more than its share of unsent bytes. */
  get #socketFull(): boolean {
    const socket = this.#socket;
    return socket !== undefined &&
      onSocket(() => socket.writableLength > SOCKET_BUFFER_LIMIT, false);
  }

  /**
   * Queues one reply. Replies are written when 16 KiB have gathered, on {@linkcode flush},
   * or, after {@linkcode flushSoon}, once the current turn of the event loop is over.
   *
   * A reply larger than `grpc.max_send_message_length` ends the call with
   * `RESOURCE_EXHAUSTED` instead, after the replies before it.
   *
   * @returns `false` when the caller should wait for {@linkcode ReplyWriter.drained}.
   */
  write(reply: Reply): boolean {
    if (this.#stream === undefined) return this.#call.write(reply);
    if (this.#failed) return false;
    const message = this.#encode(reply);
    if (this.#sendLimit !== -1 && message.length > this.#sendLimit) {
      // The same status and details grpc-js gives a message it will not send.
      this.fail({
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `Sent message larger than max (${
          message.length + 5
        } vs. ${this.#sendLimit})`,
        metadata: new grpc.Metadata(),
      });
      return false;
    }
    if (this.#used + 5 + message.length > this.#chunk.length) {
      this.flush();
      if (5 + message.length > this.#chunk.length) {
        this.#chunk = Buffer.allocUnsafe(5 + message.length);
      }
    }
    const chunk = this.#chunk;
    chunk[this.#used] = 0;
    chunk.writeUInt32BE(message.length, this.#used + 1);
    chunk.set(message, this.#used + 5);
    this.#used += 5 + message.length;
    this.#telemetry?.sent();
    if (this.#used >= CHUNK_BYTES) this.flush();
    return !this.#needsDrain && !this.#socketFull;
  }

  /** Writes the queued replies once the current turn of the event loop is over. */
  flushSoon(): void {
    if (this.#flushScheduled || this.#stream === undefined) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.flush();
    });
  }

  /** Writes the queued replies now. */
  flush(): void {
    const stream = this.#stream;
    if (stream === undefined || this.#used === 0) return;
    const bytes = this.#chunk.subarray(0, this.#used);
    this.#chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    this.#used = 0;
    if (this.closed) return;
    if (!this.#headersSent) {
      this.#headersSent = true;
      this.#call.sendMetadata(new grpc.Metadata());
    }
    if (!stream.write(bytes) && !this.#needsDrain) {
      // Track the drain here, not in `drained()`: a flush from `flushSoon` may fill the buffer
      // and see it drain before any writer asks to wait.
      this.#needsDrain = true;
      stream.once("drain", () => this.#needsDrain = false);
    }
  }

  /**
   * Resolves once the call can take more replies (`false`), or once it is over (`true`), so a
   * writer never waits for a `drain` that a vanished client will not send.
   */
  async drained(): Promise<boolean> {
    this.flush();
    while (true) {
      if (this.closed) return true;
      if (this.#stream !== undefined && !this.#needsDrain) {
        if (!this.#socketFull) return false;
        // The stream took the bytes, the socket has not: wait for the socket, or the end.
        if (await this.#waitFor(nextDrain(this.#socket!))) return true;
        continue;
      }
      return await this.#waitFor(undefined);
    }
  }

  /**
   * Resolves with `true` once the call is over, or `false` on the stream's (or the call's)
   * `drain`, or when `other` settles.
   */
  #waitFor(other: Promise<void> | undefined): Promise<boolean> {
    const call = this.#call;
    const emitter = this.#stream ?? call;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (closed: boolean): void => {
        if (settled) return;
        settled = true;
        emitter.off("drain", onDrain);
        call.off("cancelled", onClosed);
        this.#stream?.off("close", onClosed);
        resolve(closed);
      };
      const onDrain = (): void => settle(false);
      const onClosed = (): void => settle(true);
      if (other === undefined) emitter.once("drain", onDrain);
      else other.then(onDrain);
      call.once("cancelled", onClosed);
      this.#stream?.once("close", onClosed);
    });
  }

  /** Writes what is queued and ends the call with `OK`. */
  end(): void {
    this.flush();
    this.#call.end();
  }

  /**
   * Writes what is queued, then ends the call with `failure`: every reply written before it
   * reaches the client first.
   */
  fail(failure: grpc.StatusObject): void {
    this.flush();
    this.#failed = true;
    // grpc-js's own 'error' listener stores the status and ends the writable side; the status
    // goes out in `_final`, after every queued write, and after the bytes written above.
    this.#call.emit("error", failure);
  }
}
