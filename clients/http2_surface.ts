/**
 * What a channel's calls use of an HTTP/2 connection and its request streams: the part of
 * `node:http2`'s `ClientHttp2Session` and `ClientHttp2Stream` that the module's own
 * connection (`http2/client_connection.ts`, every cleartext connection) has too. `node:http2`
 * carries TLS, and whatever `GRPC_STREAM_HTTP2=node` asks for. Both kinds fit these types as
 * they are, which the compiler checks where each is made (`session_manager.ts`), so the call
 * code is one for both; where the two differ, `onNodeHttp2` (`http2/client_stream.ts`) tells
 * them apart.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type http2 from "node:http2";

/** The server's settings a channel reads. */
export interface PeerSettings {
  /** SETTINGS_MAX_CONCURRENT_STREAMS, once the server has sent it. */
  readonly maxConcurrentStreams?: number | undefined;
}

/** What a stream tells of the connection it runs on. */
export interface StreamSession {
  /** The server's settings. */
  readonly remoteSettings: PeerSettings;
  /** Whether the connection takes no more streams. */
  readonly closed: boolean;
  /** Whether the connection is over. */
  readonly destroyed: boolean;
}

/** A connection calls run on. */
export interface CallSession extends StreamSession {
  /** Opens a request stream. */
  request(
    headers: http2.OutgoingHttpHeaders,
    options: { endStream: boolean },
  ): CallStream;
  /** Sends a PING; `callback` has the round trip once the ACK arrives. */
  ping(
    callback: (error: Error | null, duration: number, payload: Buffer) => void,
  ): boolean;
  /** Keeps the process alive while the connection is open. */
  ref(): void;
  /** Lets the process exit while the connection is idle. */
  unref(): void;
  /** Takes no new streams, and ends once the open ones have. */
  close(): void;
  /** Ends the connection at once. */
  destroy(error?: Error): void;
  /** The connection is up (`socket` is its socket). */
  once(event: "connect", listener: () => void): this;
  /** The server's first SETTINGS frame arrived. */
  once(event: "remoteSettings", listener: () => void): this;
  /** The connection is over. */
  once(event: "close", listener: () => void): this;
  /** The connection failed. */
  on(
    event: "error",
    listener: (error: Error & { code?: string }) => void,
  ): this;
  /** The server sent GOAWAY. */
  on(
    event: "goaway",
    listener: (code: number, lastStreamId: number) => void,
  ): this;
}

/** A request stream of a {@linkcode CallSession}. */
export interface CallStream {
  /** The stream's identifier, once its HEADERS went. */
  readonly id?: number | undefined;
  /** The reset code the stream closed with, once closed. */
  readonly rstCode?: number | undefined;
  /** The connection the stream runs on. */
  readonly session?: StreamSession | undefined;
  /** Whether the stream is closed. */
  readonly closed: boolean;
  /** Whether the stream is destroyed. */
  readonly destroyed: boolean;
  /** Whether the request's end was written. */
  readonly writableEnded: boolean;
  /** Whether a writer should wait for `'drain'`. */
  readonly writableNeedDrain: boolean;
  /** The bytes received and not yet read. */
  readonly readableLength: number;
  /** Queues request bytes; `false` asks the writer to wait for `'drain'`. */
  write(chunk: Uint8Array): boolean;
  /** Ends the request, after `chunk` if given. */
  end(chunk?: Uint8Array): void;
  /** Holds the response's data (and the stream's window). */
  pause(): this;
  /** Reads on. */
  resume(): this;
  /** Whether {@linkcode CallStream.pause} holds the stream. */
  isPaused(): boolean;
  /** Reads what is buffered, in paused mode. */
  read(): Buffer | null;
  /** Resets the stream with `code`. */
  close(code?: number): void;
  /** The response headers arrived. */
  on(
    event: "response",
    listener: (
      headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader,
    ) => void,
  ): this;
  /** The trailers arrived. */
  on(
    event: "trailers",
    listener: (headers: http2.IncomingHttpHeaders) => void,
  ): this;
  /** Response bytes. */
  on(event: "data", listener: (chunk: Buffer) => void): this;
  /** A frame of `type` could not be sent. */
  on(event: "frameError", listener: (type: number) => void): this;
  /** The stream failed. */
  on(
    event: "error",
    listener: (error: Error & { code?: string }) => void,
  ): this;
  /** The response ended, the stream closed, or the writer may write on. */
  on(event: "end" | "close" | "drain", listener: () => void): this;
  /** The stream closed. */
  once(event: "close", listener: () => void): this;
  /** Forgets a listener of the response headers. */
  off(
    event: "response",
    listener: (
      headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader,
    ) => void,
  ): this;
  /** Forgets a listener. */
  off(event: "close" | "drain", listener: () => void): this;
}
