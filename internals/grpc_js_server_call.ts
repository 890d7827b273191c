/**
 * What the server reads of a grpc-js server call beyond its public API: the intercepting call
 * under the handler's (`call.call`, grpc-js's `BaseServerInterceptingCall`), whose HTTP/2
 * stream the reply writer writes to and the call starts mark, whose per-call data handler the
 * request reader replaces, and whose `sendMessage`/`sendStatus` the call telemetry observes.
 * Each view checks the fields it needs; when one is gone (another grpc-js, or an interceptor
 * wrapping the call) it says so once for the fast path that asked, and the caller takes the
 * public path. With `GRPC_STREAM_FAST_PATHS=off` no view looks.
 *
 * A call the lean path answers (`services/lean_call.ts`) has no grpc-js call under it: it
 * shows the views its HTTP/2 stream and limits under {@linkcode LEAN_CALL}, and each view
 * gives those directly.
 *
 * @module
 */
import * as grpc from "./npm/grpc_js.ts";
import {
  type FastPath,
  fastPathsOn,
  missedFastPath,
  usedFastPath,
} from "./fast_paths.ts";

/** The HTTP/2 stream under a grpc-js server call, as far as the server uses it. */
export interface CallStream {
  /** Whether the stream is destroyed. */
  readonly destroyed: boolean;
  /** Whether the stream is closed. */
  readonly closed: boolean;
  /** The stream's session, for its socket. */
  readonly session?: { readonly socket?: unknown } | undefined;
  /** Writes framed messages; `done` runs once HTTP/2 has taken them. */
  write(chunk: Uint8Array, done: () => void): boolean;
  /** Listens for write errors. */
  on(event: "error", listener: (error: Error) => void): unknown;
  /** Listens once for the stream's room or its end. */
  once(event: "drain" | "close", listener: () => void): unknown;
  /** Stops listening. */
  off(event: "drain" | "close", listener: () => void): unknown;
}

/** The fields of grpc-js's intercepting call that the views read, each maybe missing. */
interface InterceptingCall {
  stream?: unknown;
  sendMetadata?: unknown;
  maxSendMessageSize?: unknown;
  maxReceiveMessageSize?: unknown;
  incomingEncoding?: unknown;
  handleDataFrame?: unknown;
  readQueue?: unknown;
  sendStatus?: unknown;
  sendMessage?: unknown;
}

/** Where a lean call keeps what the views give of it. */
export const LEAN_CALL: unique symbol = Symbol("lean call");

/** What a lean call shows the views in place of grpc-js's intercepting call. */
export interface LeanCallParts {
  /** The call's HTTP/2 stream. */
  readonly stream: CallStream & RequestStream;
  /** The send limit (`grpc.max_send_message_length`); -1 for none. */
  readonly maxSendBytes: number;
  /** The receive limit (`grpc.max_receive_message_length`); -1 for none. */
  readonly maxReceiveBytes: number;
  /** The call's `grpc-encoding`. */
  readonly encoding: string;
  /** Gives the stream's DATA chunks to `handler` from now on. */
  takeData(handler: (data: Uint8Array) => void): void;
  /** Tells `observer` of the messages and the status the call sends from now on. */
  observe(observer: SendObserver): void;
}

function leanPartsOf(call: object): LeanCallParts | undefined {
  return (call as { [LEAN_CALL]?: LeanCallParts })[LEAN_CALL];
}

/**
 * The empty metadata a lean call's response headers go with when its handler gave none: one
 * object for every call, which the lean call recognises and sends its constant headers for.
 */
export const NO_LEAN_METADATA: grpc.Metadata = new grpc.Metadata();

/**
 * The metadata to send a call's response headers with when its handler gave none:
 * {@linkcode NO_LEAN_METADATA} for a lean call, a fresh empty `Metadata` for a grpc-js call,
 * whose interceptors may read it and change it.
 *
 * @param call A grpc-js server call, as a handler gets it, or a lean call.
 * @returns The metadata to hand its `sendMetadata`.
 */
export function noResponseMetadata(call: object): grpc.Metadata {
  return leanPartsOf(call) === undefined
    ? new grpc.Metadata()
    : NO_LEAN_METADATA;
}

function interceptingCallOf(call: object): InterceptingCall | undefined {
  const inner = (call as { call?: unknown }).call;
  return typeof inner === "object" && inner !== null
    ? inner as InterceptingCall
    : undefined;
}

function streamIn(inner: InterceptingCall | undefined): CallStream | undefined {
  const stream = inner?.stream as Partial<CallStream> | undefined;
  if (
    typeof inner?.sendMetadata !== "function" ||
    typeof stream?.write !== "function" ||
    typeof stream.once !== "function" || typeof stream.off !== "function" ||
    typeof stream.on !== "function"
  ) {
    return undefined;
  }
  return stream as CallStream;
}

/**
 * The HTTP/2 stream under a grpc-js server call of any kind, for `path`.
 *
 * @param call A grpc-js server call, as a handler gets it.
 * @param path The fast path that asks: it is recorded as used, or as fallen back (said once).
 * @returns The stream, or `undefined` when the call is not the known shape or the fast paths
 * are off.
 */
export function callStreamOf(
  call: object,
  path: FastPath,
): CallStream | undefined {
  const lean = leanPartsOf(call);
  const stream = lean !== undefined
    ? lean.stream
    : fastPathsOn()
    ? streamIn(interceptingCallOf(call))
    : undefined;
  if (stream === undefined) {
    missedFastPath(path, "grpc-js call.stream or call.sendMetadata");
    return undefined;
  }
  usedFastPath(path);
  return stream;
}

/**
 * grpc-js's send limit for a call (`grpc.max_send_message_length`), which it applies to the
 * writes of its public path only.
 *
 * @param call A grpc-js server call whose stream {@linkcode callStreamOf} found.
 * @returns The limit in bytes, or -1 for none (or not found).
 */
export function sendLimitOf(call: object): number {
  const lean = leanPartsOf(call);
  if (lean !== undefined) return lean.maxSendBytes;
  const limit = interceptingCallOf(call)?.maxSendMessageSize;
  return typeof limit === "number" && limit >= 0 ? limit : -1;
}

/** The HTTP/2 stream under a call, as far as the request reader uses it. */
export interface RequestStream {
  /** Whether the stream is destroyed. */
  readonly destroyed: boolean;
  /** Whether the stream is closed. */
  readonly closed: boolean;
  /** Stops the native read: the stream's window stays shut. */
  pause(): unknown;
  /** Reads on. */
  resume(): unknown;
  /** Listens for the end of the request or the stream's close. */
  on(event: "end" | "close", listener: () => void): unknown;
}

/** A call's request path, as grpc-js set it up: where its DATA goes and how it is read. */
export interface CallRequests {
  /** The call's HTTP/2 stream. */
  readonly stream: RequestStream;
  /** The receive limit grpc-js applies to the call's messages; -1 for none, if known. */
  readonly maxReceiveBytes: number | undefined;
  /** The call's `grpc-encoding`, if grpc-js read one. */
  readonly encoding: string | undefined;
  /**
   * Replaces grpc-js's per-call handler of the stream's DATA chunks, which its `'data'`
   * listener calls; grpc-js then reads none of the call's messages itself.
   */
  takeData(handler: (data: Uint8Array) => void): void;
}

/**
 * The request path of a client-streaming or bidirectional grpc-js call, for the request
 * reader, when nothing has read the call's messages yet.
 *
 * @param call A grpc-js server call, from its handler, before anything reads it.
 * @returns The path, or `undefined` when the call is not the known shape (said once), the
 * fast paths are off, or grpc-js has already queued a message.
 */
export function callRequestsOf(call: object): CallRequests | undefined {
  const lean = leanPartsOf(call);
  if (lean !== undefined) {
    usedFastPath("request reader");
    return lean;
  }
  const inner = fastPathsOn() ? interceptingCallOf(call) : undefined;
  const stream = inner?.stream as Partial<RequestStream> | undefined;
  if (
    inner === undefined || typeof inner.handleDataFrame !== "function" ||
    !Array.isArray(inner.readQueue) ||
    typeof stream?.pause !== "function" ||
    typeof stream.resume !== "function" || typeof stream.on !== "function"
  ) {
    missedFastPath(
      "request reader",
      "grpc-js call.handleDataFrame, call.readQueue or call.stream",
    );
    return undefined;
  }
  // Messages grpc-js has already read must reach the handler through grpc-js.
  if (inner.readQueue.length !== 0) return undefined;
  usedFastPath("request reader");
  const { maxReceiveMessageSize, incomingEncoding } = inner;
  return {
    stream: stream as RequestStream,
    maxReceiveBytes: typeof maxReceiveMessageSize === "number"
      ? maxReceiveMessageSize
      : undefined,
    encoding: typeof incomingEncoding === "string"
      ? incomingEncoding
      : undefined,
    takeData(handler: (data: Uint8Array) => void): void {
      inner.handleDataFrame = handler;
    },
  };
}

/** What a call sends, as its observer hears it. */
export interface SendObserver {
  /** A message is on its way through grpc-js. */
  sent(): void;
  /** grpc-js sends the call's status. */
  status(code: number | undefined, details: string | undefined): void;
}

/** Where grpc-js sends a call's messages and status, to observe them. */
export interface CallSends {
  /** Tells `observer` of every message and of the status grpc-js sends from now on. */
  observe(observer: SendObserver): void;
}

type SendStatus = (status: { code?: number; details?: string }) => void;
type SendMessage = (message: unknown, callback: () => void) => void;

/**
 * Where grpc-js sends a call's messages and status (`sendMessage` and `sendStatus` of the
 * intercepting call), for the call telemetry: every way a call ends passes there.
 *
 * @param call A grpc-js server call, as a handler gets it.
 * @returns The sends to observe, or `undefined` when the call is not the known shape (said
 * once) or the fast paths are off.
 */
export function callSendsOf(call: object): CallSends | undefined {
  const lean = leanPartsOf(call);
  if (lean !== undefined) {
    usedFastPath("call telemetry");
    return lean;
  }
  const inner = fastPathsOn() ? interceptingCallOf(call) : undefined;
  if (
    typeof inner?.sendStatus !== "function" ||
    typeof inner.sendMessage !== "function"
  ) {
    missedFastPath(
      "call telemetry",
      "grpc-js call.sendStatus or call.sendMessage",
    );
    return undefined;
  }
  usedFastPath("call telemetry");
  const sendStatus = inner.sendStatus as SendStatus;
  const sendMessage = inner.sendMessage as SendMessage;
  return {
    observe(observer: SendObserver): void {
      inner.sendMessage = function (
        this: unknown,
        message: unknown,
        callback: () => void,
      ): void {
        observer.sent();
        sendMessage.call(this, message, callback);
      };
      inner.sendStatus = function (
        this: unknown,
        status: { code?: number; details?: string },
      ): void {
        observer.status(status.code, status.details);
        sendStatus.call(this, status);
      };
    },
  };
}
