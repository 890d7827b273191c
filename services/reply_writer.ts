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
 * the replies a connection holds for a peer that does not read are bounded whatever HTTP/2
 * window the peer claims: at most `CONNECTION_BUFFER_LIMIT` (`reply_budget.ts`) bytes per
 * connection on their way to the socket, plus at most 48 KiB per call: the chunk it is
 * gathering (16 KiB,
 * plus the answers to the rest of the request frame being read, or a single larger reply) and
 * what its HTTP/2 stream holds while the peer's window is closed (the stream takes a chunk
 * while it holds under 16 KiB).
 * Deno's `node:http2` hands every framed byte to the socket as soon as the peer's
 * window allows it and reports the stream drained however full the socket is, so waiting for
 * the stream is not enough: every writer of a connection shares one budget, counted from the
 * socket's own queue (`writableLength`) and from the bytes handed to HTTP/2 in this turn of the
 * event loop, which reach the socket only on the next tick. Node completes a stream's write
 * only once the socket has taken it (`Http2Session::ClearOutgoing`); Deno completes it once
 * nghttp2 has framed it (since denoland/deno#36044; no upstream issue for the socket part).
 * The shared count can go when Deno's stream writes wait for the socket as Node's do; the
 * `never-read` soak and `tests/services/reply_writer_test.ts` show when.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { atTurnEnd } from "./turn_end.ts";
import type { CallRecorder } from "../telemetry/call_recorder.ts";
import { serverCallRecorder } from "./telemetry.ts";
import type { ServerProbe } from "./_testing.ts";
import { type Connection, connectionOf } from "./reply_budget.ts";
import {
  type CallStream,
  callStreamOf,
  noResponseMetadata,
  sendLimitOf,
} from "../internals/grpc_js_server_call.ts";
import {
  PREFIX_BYTES,
  tooLargeToSend,
  writePrefix,
} from "../proto/envelope.ts";

/** A server call that sends messages: server streaming or bidirectional. */
export type WritableCall =
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/** How many bytes of framed messages to gather before writing them. */
const CHUNK_BYTES = 16 * 1024;

/** The chunk of a writer that has gathered nothing: most calls send a few short replies. */
const NO_CHUNK: Uint8Array = new Uint8Array(0);

/** The smallest chunk a writer allocates. */
const FIRST_CHUNK_BYTES = 256;

/** The largest chunk cut from the shared slab; larger ones are arrays of their own. */
const SLAB_CHUNK_BYTES = 1_024;
const SLAB_BYTES = 64 * 1_024;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

/**
 * A chunk to gather replies in. A short call's small chunk is a view of a shared slab that is
 * never written twice: an array of its own would cost an allocation outside V8's heap for
 * every call, and a `Buffer` from its pool costs more in its views. A slab goes once no
 * chunk cut from it is left.
 */
function newChunk(size: number): Uint8Array {
  if (size > SLAB_CHUNK_BYTES) return new Uint8Array(size);
  if (slabUsed + size > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const chunk = new Uint8Array(slab, slabUsed, size);
  slabUsed += size;
  return chunk;
}

/**
 * A write handed to a call's HTTP/2 stream, until the stream has framed it: a promise only
 * for a writer that waits for it, which a short call's never does.
 */
class StreamWrite {
  #framed = false;
  #waiters: (() => void)[] | undefined = undefined;

  /** The stream has framed the write. */
  framed(): void {
    this.#framed = true;
    const waiters = this.#waiters;
    this.#waiters = undefined;
    if (waiters !== undefined) { for (const waiter of waiters) waiter(); }
  }

  /** Resolves once the stream has framed the write. */
  whenFramed(): Promise<void> {
    if (this.#framed) return Promise.resolve();
    return new Promise((resolve) => (this.#waiters ??= []).push(resolve));
  }
}

/** Writes reply messages for one call, honouring HTTP/2 flow control. */
export class ReplyWriter<Reply> {
  #call: WritableCall;
  #encode: (reply: Reply) => Uint8Array;
  #stream: CallStream | undefined;
  #headersSent = false;
  /** Where replies gather: empty until the first, then grown as they come, up to 16 KiB. */
  #chunk: Uint8Array = NO_CHUNK;
  /** Whether the call has grown a chunk to 16 KiB. */
  #filledOne = false;
  #used = 0;
  #flushScheduled = false;
  /** The write HTTP/2 has not framed yet: one at a time, whatever the stream would take. */
  #inStream: StreamWrite | undefined;
  /** A chunk HTTP/2 has copied and framed, to gather replies in again. */
  #spare: Uint8Array | undefined;
  #waitingForRoom = false;
  #telemetry: CallRecorder | undefined;
  #connection: Connection | undefined;
  #sendLimit: number;
  #failed = false;
  #probe: ServerProbe | undefined;

  /**
   * @param call The call to answer.
   * @param encode Encodes one reply message (without the 5-byte gRPC prefix); the bytes it
   * returns are copied at once, so it may hand back the same memory each time.
   * @param probe Counts what the call's connection holds and how its chunk grows, for tests.
   */
  constructor(
    call: WritableCall,
    encode: (reply: Reply) => Uint8Array,
    probe?: ServerProbe,
  ) {
    this.#call = call;
    this.#encode = encode;
    this.#probe = probe;
    this.#stream = callStreamOf(call, "reply writer");
    this.#telemetry = serverCallRecorder(call);
    this.#connection = this.#stream === undefined
      ? undefined
      : connectionOf(this.#stream, probe);
    // grpc-js applies its own limit to the writes of the public path.
    this.#sendLimit = this.#stream === undefined ? -1 : sendLimitOf(call);
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

  /** Whether a full chunk would fit in what the connection may hold now. */
  get #roomForChunk(): boolean {
    return this.#connection?.fits(CHUNK_BYTES) ?? true;
  }

  /**
   * Queues one reply. Replies are written when 16 KiB have gathered, on {@linkcode flush},
   * or, after {@linkcode flushSoon}, once the current turn of the event loop is over, each
   * time only if the connection has room for them.
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
      // The same status and details grpc-js gives a message it will not send: its server
      // counts the prefix in the size it reports.
      const fault = tooLargeToSend(
        PREFIX_BYTES + message.length,
        this.#sendLimit,
      );
      this.fail({ ...fault, metadata: new grpc.Metadata() });
      return false;
    }
    const needed = this.#used + PREFIX_BYTES + message.length;
    if (needed > this.#chunk.length && needed <= CHUNK_BYTES) {
      // A chunk grows as replies come, up to 16 KiB: a 16 KiB chunk for each call would cost
      // short calls more in allocation and collection than in anything else.
      // Once a call has filled one, it has many replies: its next chunks start whole.
      const least = this.#filledOne ? CHUNK_BYTES : FIRST_CHUNK_BYTES;
      const larger = newChunk(
        Math.min(CHUNK_BYTES, Math.max(needed, 2 * this.#chunk.length, least)),
      );
      if (this.#used > 0) larger.set(this.#chunk.subarray(0, this.#used));
      this.#probe?.grewChunk(larger.length);
      this.#chunk = larger;
      if (larger.length === CHUNK_BYTES) this.#filledOne = true;
    }
    if (this.#used + PREFIX_BYTES + message.length > this.#chunk.length) {
      this.flush();
      if (this.#used + PREFIX_BYTES + message.length > this.#chunk.length) {
        // The connection had no room: the chunk waits, and grows to take the reply. It doubles,
        // since the replies to the rest of a request frame follow one by one: growing to fit each
        // would copy the chunk once per reply.
        const larger = new Uint8Array(
          Math.max(
            2 * this.#chunk.length,
            this.#used + PREFIX_BYTES + message.length,
          ),
        );
        larger.set(this.#chunk.subarray(0, this.#used));
        this.#probe?.grewChunk(larger.length);
        this.#chunk = larger;
      }
    }
    const chunk = this.#chunk;
    writePrefix(chunk, message.length, this.#used);
    chunk.set(message, this.#used + PREFIX_BYTES);
    this.#used += PREFIX_BYTES + message.length;
    this.#telemetry?.sent();
    if (this.#used >= CHUNK_BYTES) {
      this.flush();
      // Still gathered: the connection has no room for it.
      if (this.#used >= CHUNK_BYTES) return false;
    }
    return this.#used > 0 ||
      (this.#inStream === undefined && this.#roomForChunk);
  }

  /** Writes the queued replies once the current turn of the event loop is over. */
  flushSoon(): void {
    if (this.#flushScheduled || this.#stream === undefined) return;
    this.#flushScheduled = true;
    atTurnEnd(() => this.#turnEnded());
  }

  /** The end of the turn {@linkcode flushSoon} waited for. */
  #turnEnded(): void {
    this.#flushScheduled = false;
    this.flush();
    if (this.#used > 0 && !this.#waitingForRoom) {
      // No room on the connection now: write them when there is, unasked.
      this.#waitingForRoom = true;
      this.drained().finally(() => this.#waitingForRoom = false);
    }
  }

  /** Writes the queued replies now, if the connection has room for them. */
  flush(): void {
    this.#write(false);
  }

  /**
   * Writes the queued replies, unless `always` only when the stream has framed the write before
   * and the connection has room for them.
   */
  #write(always: boolean): void {
    const stream = this.#stream;
    if (stream === undefined || this.#used === 0) return;
    if (this.closed) {
      this.#used = 0;
      return;
    }
    const connection = this.#connection;
    if (
      !always && (this.#inStream !== undefined ||
        (connection !== undefined && !connection.fits(this.#used)))
    ) {
      return;
    }
    const written = this.#chunk;
    // A plain view: a `Buffer`'s `subarray` costs a short call more than the write.
    const bytes = new Uint8Array(
      written.buffer,
      written.byteOffset,
      this.#used,
    );
    // Alone in the stream, a write is copied into HTTP/2 at once: once it is framed, its chunk
    // gathers the next replies, rather than a fresh 16 KiB for every write.
    const reusable = this.#inStream === undefined &&
      written.length === CHUNK_BYTES;
    this.#chunk = this.#spare ?? NO_CHUNK;
    this.#spare = undefined;
    this.#used = 0;
    if (!this.#headersSent) {
      this.#headersSent = true;
      this.#call.sendMetadata(noResponseMetadata(this.#call));
    }
    // Deno's HTTP/2 stream takes 64 KiB before it asks to wait, and keeps all but the write in
    // progress to itself until that one is framed: a second write would reach the socket only
    // in a later turn, past the connection's count. One write at a time keeps every chunk
    // counted until the socket shows it (or its stream holds it, the peer's window closed).
    const inStream = new StreamWrite();
    this.#inStream = inStream;
    stream.write(bytes, () => {
      if (this.#inStream === inStream) this.#inStream = undefined;
      if (reusable) this.#spare = written;
      inStream.framed();
    });
    connection?.handed(bytes.length);
  }

  /**
   * Resolves once the call can take more replies (`false`), or once it is over (`true`), so a
   * writer never waits for a `drain` that a vanished client will not send. The replies queued
   * so far are written first, as soon as the connection has room for them.
   */
  async drained(): Promise<boolean> {
    while (true) {
      this.flush();
      if (this.closed) return true;
      if (this.#stream === undefined) return await this.#waitFor(undefined);
      if (this.#inStream !== undefined) {
        if (await this.#waitFor(this.#inStream.whenFramed())) return true;
        continue;
      }
      if (this.#used === 0 && this.#roomForChunk) return false;
      // The stream takes more, the connection does not: wait for its socket, or the end.
      if (await this.#waitFor(this.#connection!.room())) return true;
    }
  }

  /**
   * Resolves once the replies written so far are handed to HTTP/2, room or not, so that a
   * fault that drops the call does not take them with it: `true` if the call ended first.
   */
  async handedOver(): Promise<boolean> {
    this.#write(true);
    if (this.closed) return true;
    const inStream = this.#inStream;
    return inStream === undefined
      ? false
      : await this.#waitFor(inStream.whenFramed());
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

  /** Writes what is queued, room or not (at most a chunk), and ends the call with `OK`. */
  end(): void {
    this.#write(true);
    this.#call.end();
  }

  /**
   * Writes what is queued, then ends the call with `failure`: every reply written before it
   * reaches the client first.
   */
  fail(failure: grpc.StatusObject): void {
    this.#write(true);
    this.#failed = true;
    // grpc-js's own 'error' listener stores the status and ends the writable side; the status
    // goes out in `_final`, after every queued write, and after the bytes written above.
    this.#call.emit("error", failure);
  }
}
