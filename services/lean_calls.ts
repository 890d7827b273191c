/**
 * The lean path: `Pow`, `Sum` and the bidirectional `Sqrt` answered from the HTTP/2 stream,
 * without grpc-js's per-call machinery.
 *
 * For every call grpc-js builds request `Metadata`, an intercepting call with its listeners and
 * deadline timer, an object-mode `Readable`, `Writable` or `Duplex` for the handler and, with
 * channelz on, its counters: about half of what a short call costs the server. Here each new
 * stream of the three paths is taken before grpc-js's `'stream'` listener sees it (through
 * `internals/grpc_js_server.ts`) and handed to the same handlers, observed by the same
 * telemetry, through a {@linkcode LeanCall} that answers on the stream itself. Every other
 * stream (`stream.Single`, health, reflection, unknown paths) goes to grpc-js as before.
 *
 * What grpc-js does per stream stays: its idle-timeout bookkeeping (`onStreamOpened`), an
 * `'error'` listener, the `content-type` check (HTTP 415), `grpc-timeout` (`DEADLINE_EXCEEDED`,
 * or `INTERNAL` for a value it cannot read), the receive and send limits of the server's
 * options, the `Pow` request's checks (`UNIMPLEMENTED` for none or a second one, `INTERNAL`
 * for one that does not decode), `UNKNOWN` for a handler that throws, and the statuses, as
 * `lean_call.ts` says. Compressed requests are read here too, by the deframer the request
 * reader uses for grpc-js calls (`gzip` and `deflate`; another encoding ends the call with
 * `UNIMPLEMENTED`, as grpc-js does).
 *
 * A server whose options need grpc-js's per-call machinery (see {@linkcode leanPathRefusal})
 * answers every call through grpc-js, and so does every server with
 * `GRPC_STREAM_FAST_PATHS=off`.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { Buffer } from "node:buffer";
import type http2 from "node:http2";
import process from "node:process";
import {
  http2ServersOf,
  type StreamListener,
  takeStreamsBefore,
} from "../internals/grpc_js_server.ts";
import { envGranted } from "../internals/grpc_js_env.ts";
import { LEAN_CALL } from "../internals/grpc_js_server_call.ts";
import {
  DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  type MessageSpan,
} from "../proto/envelope.ts";
import { streamServices } from "../proto/definitions.ts";
import {
  errorToStatus,
  LeanCall,
  type LeanCallSettings,
  OK_STATUS,
} from "./lean_call.ts";
import { Deframer, type RequestSink } from "./request_deframer.ts";
import type { ObservedHandler, ObservedServer } from "./telemetry.ts";
import type { ServerProbe } from "./_testing.ts";

/** The paths the lean path answers. */
const LEAN_PATHS: readonly string[] = [
  streamServices.serverStream,
  streamServices.clientStream,
  streamServices.bidirectionalStream,
].flatMap((service) => Object.values(service).map((method) => method.path));

/** grpc-js's reading of `grpc-timeout` (`DEADLINE_REGEX`, `deadlineUnitsToMs`). */
const TIMEOUT = /(\d{1,8})\s*([HMSmun])/;
const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000001,
};

/** How the envelope's receive-limit fault begins. */
const RECEIVED_TOO_LARGE = "Received message larger than max";

/** grpc-js's `DEFAULT_MAX_SEND_MESSAGE_LENGTH`: no limit. */
const DEFAULT_MAX_SEND_BYTES = -1;

/** The HTTP/2 servers whose streams are already taken, since each bind adds one. */
const served = new WeakSet<http2.Http2Server>();

/**
 * Why a grpc-js server with `options` must answer every call through grpc-js, if it must:
 * each of these changes what grpc-js does per call, which the lean path does not do.
 *
 * - `interceptors`: they see every call, through grpc-js's intercepting call.
 * - `grpc.server_call_metric_recording`: ORCA metrics in each call's trailers.
 * - `GRPC_NODE_DEBUG_SEND_ERROR_DETAILS=true` in the environment: grpc-js then puts the
 *   cause of a request it cannot decode or a handler's throw in `grpc-message`.
 *
 * @param options The grpc-js server's options.
 * @returns What needs grpc-js, or `undefined` when the lean path may answer.
 */
export function leanPathRefusal(
  options: grpc.ServerOptions,
): string | undefined {
  if ((options.interceptors?.length ?? 0) > 0) return "interceptors";
  if (options["grpc.server_call_metric_recording"]) {
    return "grpc.server_call_metric_recording";
  }
  if (
    envGranted("GRPC_NODE_DEBUG_SEND_ERROR_DETAILS") &&
    Deno.env.get("GRPC_NODE_DEBUG_SEND_ERROR_DETAILS") === "true"
  ) {
    return "GRPC_NODE_DEBUG_SEND_ERROR_DETAILS";
  }
  return undefined;
}

/** A method the lean path answers, with what its calls need. */
interface LeanMethod {
  readonly observed: ObservedHandler;
  readonly settings: LeanCallSettings;
}

function limitOf(value: unknown, otherwise: number): number {
  return typeof value === "number" ? value : otherwise;
}

/**
 * Takes the calls of `Pow`, `Sum` and the bidirectional `Sqrt` on every port `server` has
 * bound so far onto the lean path, unless its options need grpc-js's path.
 *
 * @param server The server, after `bindAsync` has succeeded.
 * @param options The options it was made with, and the probe that counts lean calls for tests.
 * @returns Whether the lean path answers them.
 */
export function serveLeanCalls(
  server: ObservedServer,
  { serverOptions: options, probe }: {
    serverOptions: grpc.ServerOptions;
    probe: ServerProbe | undefined;
  },
): boolean {
  if (leanPathRefusal(options) !== undefined || probe?.leanPath === false) {
    return false;
  }
  const maxReceiveBytes = limitOf(
    options["grpc.max_receive_message_length"],
    DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  );
  const maxSendBytes = limitOf(
    options["grpc.max_send_message_length"],
    DEFAULT_MAX_SEND_BYTES,
  );
  const methods = new Map<string, LeanMethod>();
  for (const path of LEAN_PATHS) {
    const observed = server.observedHandler(path);
    if (observed === undefined) continue;
    const serialize = observed.definition.responseSerialize;
    methods.set(path, {
      observed,
      settings: { serialize, maxReceiveBytes, maxSendBytes },
    });
  }
  const views = http2ServersOf(server);
  if (views === undefined) return false;
  let taken = true;
  for (const { server: http2Server } of views) {
    if (served.has(http2Server)) continue;
    let listener: StreamListener | undefined = undefined;
    listener = takeStreamsBefore(server, {
      http2Server,
      take(stream, headers): boolean {
        const method = methods.get(headers[":path"] ?? "");
        if (method === undefined) return false;
        probe?.leanCall(headers[":path"]!);
        answer(stream, { headers, method, listener: listener! });
        return true;
      },
    });
    if (listener === undefined) taken = false;
    else served.add(http2Server);
  }
  return taken;
}

/**
 * The timeout of a `grpc-timeout` value as every client writes it (digits, then the unit),
 * read as {@linkcode TIMEOUT} reads it without a match array for each call; -1 for any other
 * value, which the expression then reads.
 */
function plainTimeoutMs(value: string): number {
  const digits = value.length - 1;
  if (digits < 1 || digits > 8) return -1;
  const unit = TIMEOUT_UNIT_MS[value[digits]!];
  if (unit === undefined) return -1;
  let amount = 0;
  for (let index = 0; index < digits; index++) {
    const digit = value.charCodeAt(index) - 48;
    if (digit < 0 || digit > 9) return -1;
    amount = amount * 10 + digit;
  }
  return (amount * unit) | 0;
}

/** Ends a stream whose `content-type` is not gRPC's, as grpc-js does: HTTP 415. */
function refuseContentType(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
): boolean {
  const contentType = headers["content-type"];
  if (
    typeof contentType === "string" &&
    contentType.startsWith("application/grpc")
  ) {
    return false;
  }
  stream.respond({ ":status": 415 }, { endStream: true });
  return true;
}

// One listener for every stream: grpc-js's does nothing with the errors either (a stream in
// error also closes, which cancels its call).
function ignoreError(): void {}

/** Answers one call of a lean method. */
function answer(
  stream: http2.ServerHttp2Stream,
  { headers, method, listener }: {
    headers: http2.IncomingHttpHeaders;
    method: LeanMethod;
    listener: StreamListener;
  },
): void {
  stream.on("error", ignoreError);
  listener.opened(stream);
  if (refuseContentType(stream, headers)) return;
  const call = new LeanCall(stream, { headers, settings: method.settings });
  const timeout = headers["grpc-timeout"];
  if (timeout !== undefined) {
    const plainMs = typeof timeout === "string" ? plainTimeoutMs(timeout) : -1;
    const match = plainMs === -1 ? String(timeout).match(TIMEOUT) : undefined;
    if (plainMs !== -1) {
      call.setDeadline(plainMs);
    } else if (match == null) {
      process.nextTick(() =>
        call.sendStatus({
          code: grpc.status.INTERNAL,
          details: `Invalid grpc-timeout value "${timeout}"`,
          metadata: null,
        })
      );
    } else {
      call.setDeadline((+match[1]! * TIMEOUT_UNIT_MS[match[2]!]!) | 0);
    }
  }
  // As grpc-js's intercepting call: a stream closed before its call started runs no handler.
  if (stream.destroyed || stream.closed) return;
  const { definition, handler } = method.observed;
  if (definition.requestStream) {
    run(handler, {
      call,
      respond: definition.responseStream ? undefined : replyOnce(call),
    });
  } else {
    const encoding = headers["grpc-encoding"];
    readRequest(call, {
      stream,
      method,
      encoding: typeof encoding === "string" ? encoding : undefined,
    });
  }
}

/** Runs a handler; one that throws ends its call with `UNKNOWN`, as grpc-js does. */
function run(
  handler: ObservedHandler["handler"],
  { call, respond }: { call: LeanCall; respond?: unknown },
): void {
  try {
    handler(call, respond);
  } catch {
    call.sendStatus({
      code: grpc.status.UNKNOWN,
      details: "Unknown error",
      metadata: null,
    });
  }
}

/** The callback of a client-streaming handler: its reply, then `OK`, or its error. */
function replyOnce(
  call: LeanCall,
): (
  error: Partial<grpc.StatusObject> | null,
  reply?: unknown,
  trailers?: grpc.Metadata,
) => void {
  return (error, reply?, trailers?) => {
    if (error) {
      call.sendStatus(errorToStatus(error, trailers));
      return;
    }
    call.write(reply);
    call.sendStatus(
      trailers === undefined ? OK_STATUS : {
        code: grpc.status.OK,
        details: "OK",
        metadata: trailers,
      },
    );
  };
}

/**
 * Reads the one request of a server-streaming call and runs its handler once the client has
 * half-closed, as grpc-js does: no request, or a second, is `UNIMPLEMENTED`.
 */
function readRequest(
  call: LeanCall,
  { stream, method, encoding }: {
    stream: http2.ServerHttp2Stream;
    method: LeanMethod;
    encoding: string | undefined;
  },
): void {
  const configured = method.settings.maxReceiveBytes;
  const deframer = new Deframer(new SingleRequest(call, method), {
    maxBytes: configured === -1 ? Infinity : configured,
    encoding: encoding ?? "identity",
  });
  // On the server's own HTTP/2 the bytes come as they arrived, with no `Buffer` or `'data'`.
  call[LEAN_CALL].takeData((chunk: Uint8Array) => deframer.write(chunk));
  stream.on("end", () => deframer.end());
  stream.resume();
}

/** The messages of a server-streaming call's request, as its deframer hands them over. */
class SingleRequest implements RequestSink {
  readonly #call: LeanCall;
  readonly #method: LeanMethod;
  #request: unknown = undefined;
  #received = 0;
  #failed = false;

  constructor(call: LeanCall, method: LeanMethod) {
    this.#call = call;
    this.#method = method;
  }

  message(span: Readonly<MessageSpan>): void {
    if (this.#failed) return;
    this.#received++;
    const definition = this.#method.observed.definition;
    if (this.#received > 1) {
      this.#fail({
        code: grpc.status.UNIMPLEMENTED,
        details:
          `Received a second request message for server streaming method ${definition.path}`,
        metadata: new grpc.Metadata(),
      });
      return;
    }
    const bytes = span.bytes;
    try {
      this.#request = definition.requestDeserialize(
        Buffer.from(
          bytes.buffer,
          bytes.byteOffset + span.start,
          span.end - span.start,
        ),
      );
    } catch {
      this.#fail({
        code: grpc.status.INTERNAL,
        details: "Error deserializing request",
        metadata: new grpc.Metadata(),
      });
    }
  }

  end(): void {
    if (this.#failed) return;
    const { definition, handler } = this.#method.observed;
    if (this.#received === 0) {
      this.#fail({
        code: grpc.status.UNIMPLEMENTED,
        details:
          `Received no request message for server streaming method ${definition.path}`,
        metadata: new grpc.Metadata(),
      });
      return;
    }
    const call = this.#call;
    call.request = this.#request;
    run(handler, { call });
  }

  fail(status: grpc.StatusObject): void {
    // grpc-js's own decoder, which reads a Pow's request on its path, words the receive
    // limit without the dot that the shared envelope (and grpc-js's send limit) has.
    this.#fail(
      status.code === grpc.status.RESOURCE_EXHAUSTED &&
        status.details.startsWith(RECEIVED_TOO_LARGE)
        ? { ...status, details: status.details.replace(" vs. ", " vs ") }
        : status,
    );
  }

  #fail(status: grpc.StatusObject): void {
    this.#failed = true;
    this.#call.sendStatus(status);
  }
}
