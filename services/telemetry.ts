/**
 * The server side of the module's OpenTelemetry: a SERVER span per call, a child of the trace
 * context the client sent in its metadata (`traceparent`, `tracestate`: ours, grpc-js, Go and
 * any W3C-propagating client), and the `rpc.server.*` metrics. See `telemetry/`.
 *
 * Each handler runs with its call's span active, and the event listeners it registers on the
 * call run with it too, so that its log lines (through a logger such as `console`, which Deno
 * exports as log records under `OTEL_DENO=true`) carry the call's trace and span ids. grpc-js
 * emits a call's events from its HTTP/2 stream's callbacks, outside any context of the call.
 *
 * The status is taken where grpc-js sends it (`sendStatus` of the call under the handler's, a
 * view of `internals/grpc_js_server_call.ts`),
 * which sees every way a call ends: the handler's answer or error, a deadline, a malformed
 * message. A call the client cancels sends no status and ends the span `CANCELLED`.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import {
  context,
  propagation,
  ROOT_CONTEXT,
  type TextMapGetter,
} from "../internals/npm/opentelemetry_api.ts";
import {
  type CallRecorder,
  callsRecorded,
  startCallRecorder,
} from "../telemetry/call_recorder.ts";
import {
  ATTRIBUTES,
  parseMethodPath,
  type RpcMethod,
  splitHostPort,
} from "../telemetry/conventions.ts";
import { Status } from "../proto/status.ts";
import type { RequestSink } from "./request_deframer.ts";
import { callSendsOf } from "../internals/grpc_js_server_call.ts";
import { fastPathsOn } from "../internals/fast_paths.ts";

/** Reads `traceparent` and `tracestate` from a call's request metadata. */
const METADATA_GETTER: TextMapGetter<grpc.Metadata> = {
  keys(carrier) {
    return Object.keys(carrier.getMap());
  },
  get(carrier, key) {
    const values = carrier.get(key).filter((value) =>
      typeof value === "string"
    ) as string[];
    return values.length === 0 ? undefined : values;
  },
};

/**
 * The same, from the call that carries the metadata: a lean call (`lean_call.ts`) builds its
 * metadata only when a propagator reads it, which the no-op one of an unconfigured
 * OpenTelemetry never does.
 */
const CALL_METADATA_GETTER: TextMapGetter<
  { readonly metadata: grpc.Metadata }
> = {
  keys(carrier) {
    return METADATA_GETTER.keys(carrier.metadata);
  },
  get(carrier, key) {
    return METADATA_GETTER.get(carrier.metadata, key);
  },
};

/** Where a call comes from and until when it may run, as any grpc-js server call tells. */
type CallPeer = Pick<ServerCall, "getPeer" | "getHost" | "getDeadline">;

/** What a handler gets: a grpc-js server call of any of the four kinds. */
type ServerCall = {
  readonly metadata: grpc.Metadata;
  getPeer?(): string;
  getHost?(): string;
  getDeadline?(): grpc.Deadline;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
};

const recorders = new WeakMap<object, CallRecorder>();

/**
 * The recorder of a call being served, for code that sends its messages past grpc-js (the
 * reply writer), so that it can count them.
 *
 * @param call The call the handler got.
 * @returns Its recorder, or `undefined` when OpenTelemetry is off.
 */
export function serverCallRecorder(call: object): CallRecorder | undefined {
  return recorders.get(call);
}

/**
 * Wraps what a request reader tells its handler so that each message counts as received and
 * runs, like the handler's own listeners, with the call's span active (the handler's log
 * lines then belong to the call). Without a recorder it returns `sink` itself.
 *
 * @param call The call the handler got.
 * @param sink Where the reader delivers.
 * @returns The sink to give the reader.
 */
export function observedRequestSink(
  call: object,
  sink: RequestSink,
): RequestSink {
  const recorder = recorders.get(call);
  if (recorder === undefined) return sink;
  // The sink's methods may be its class's: each is called on it, not copied.
  if (!recorder.recording) {
    return {
      message(span): void {
        recorder.received();
        sink.message(span);
      },
      end: () => sink.end(),
      fail: (failure) => sink.fail(failure),
    };
  }
  const active = recorder.context;
  return {
    message(span): void {
      recorder.received();
      context.with(active, () => sink.message(span));
    },
    end: context.bind(active, () => sink.end()),
    fail: context.bind(
      active,
      (failure: grpc.StatusObject) => sink.fail(failure),
    ),
  };
}

function peerAttributes(call: CallPeer): Record<string, string | number> {
  const attributes: Record<string, string | number> = {};
  const { host, port } = splitHostPort(call.getHost?.() ?? "");
  if (host !== "") attributes[ATTRIBUTES.serverAddress] = host;
  if (port !== undefined) attributes[ATTRIBUTES.serverPort] = port;
  const peer = splitHostPort(call.getPeer?.() ?? "");
  if (peer.host !== "" && peer.port !== undefined) {
    attributes[ATTRIBUTES.peerAddress] = peer.host;
    attributes[ATTRIBUTES.peerPort] = peer.port;
  }
  return attributes;
}

function deadlinePassed(call: CallPeer): boolean {
  const deadline = call.getDeadline?.();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return typeof at === "number" && Number.isFinite(at) && at <= Date.now();
}

/** The method a handler serves, as a call's recorder needs it. */
interface ObservedMethod {
  /** The method's service and name. */
  method: RpcMethod;
  /** Whether the client streams requests (Sum, Sqrt), counted as they arrive. */
  requestStream: boolean;
}

/**
 * Starts the recorder of a call and hooks it to where grpc-js sends the call's messages and
 * status. Returns `undefined` when OpenTelemetry is off or the call is not the shape this
 * module knows.
 */
function startServerCall(
  call: ServerCall,
  { method, requestStream }: ObservedMethod,
): CallRecorder | undefined {
  const sends = callSendsOf(call);
  let recorder: CallRecorder | undefined;
  if (sends === undefined) {
    // The fast path is off: the recorder, if any, was started by the public interceptor.
    recorder = interceptedRecorders.get(call.metadata);
  } else if (callsRecorded("server")) {
    recorder = startCallRecorder("server", {
      method,
      parent: propagation.extract(ROOT_CONTEXT, call, CALL_METADATA_GETTER),
      attributes: peerAttributes(call),
    });
    const started = recorder;
    if (started !== undefined) {
      sends.observe({
        sent(): void {
          started.sent();
        },
        status(code, details): void {
          started.end(code ?? Status.UNKNOWN, details);
        },
      });
    }
  }
  if (recorder === undefined) return undefined;
  const observed = recorder;
  recorders.set(call, observed);
  if (!requestStream) observed.received();
  call.once("cancelled", () => endCancelled(observed, call));
  return observed;
}

/** Ends the span of a call that was cancelled: by its deadline, or by the client. */
function endCancelled(recorder: CallRecorder, call: CallPeer): void {
  if (deadlinePassed(call)) {
    recorder.end(Status.DEADLINE_EXCEEDED, "Deadline exceeded");
  } else {
    recorder.end(Status.CANCELLED, "Cancelled by the client");
  }
}

/**
 * The recorders the public interceptor started, by the request metadata it handed on, which
 * is the object the handler's call carries.
 */
const interceptedRecorders = new WeakMap<grpc.Metadata, CallRecorder>();

/**
 * The call telemetry's fallback through grpc-js's public server interceptors: with the fast
 * paths off, each call is wrapped to see the messages and the status the handler sends. A
 * status grpc-js sends on its own (a message it cannot read) goes past it unseen, and the
 * wrapper hides the call's HTTP/2 stream from the other fast paths, so a server has it only
 * with the fast paths off; otherwise the handler's call is observed where grpc-js sends (see
 * {@linkcode startServerCall}).
 */
function telemetryInterceptor(
  descriptor: grpc.ServerMethodDefinition<unknown, unknown>,
  call: grpc.ServerInterceptingCallInterface,
): grpc.ServerInterceptingCall {
  let recorder: CallRecorder | undefined;
  return new grpc.ServerInterceptingCall(call, {
    start(next): void {
      next({
        onReceiveMetadata(metadata, handOn): void {
          recorder = startCallRecorder("server", {
            method: parseMethodPath(descriptor.path),
            parent: propagation.extract(
              ROOT_CONTEXT,
              metadata,
              METADATA_GETTER,
            ),
            attributes: peerAttributes(call),
          });
          if (recorder !== undefined) {
            interceptedRecorders.set(metadata, recorder);
          }
          handOn(metadata);
        },
        onCancel(): void {
          // A call cancelled before its handler ran has no listener of the handler's.
          if (recorder !== undefined) endCancelled(recorder, call);
        },
      });
    },
    sendMessage(message, next): void {
      recorder?.sent();
      next(message);
    },
    sendStatus(status, next): void {
      recorder?.end(status.code ?? Status.UNKNOWN, status.details);
      next(status);
    },
  });
}

type Listener = (...args: unknown[]) => unknown;

/**
 * Runs `handler` with the call's span active and with the listeners it registers on the call
 * bound to that context; `data` listeners also count the messages received. The binding is in
 * place while the handler runs only: listeners added later (the reply writer's) do not log.
 */
function runObserved(
  { recorder, call }: { recorder: CallRecorder; call: ServerCall },
  handler: () => void,
): void {
  // Own properties over the prototype's methods, for the time the handler runs.
  const emitter: { on?: unknown; addListener?: unknown } = call;
  const on = call.on as (event: string, listener: Listener) => unknown;
  const observedOn = function (
    this: unknown,
    event: string,
    listener: Listener,
  ): unknown {
    let wrapped: Listener;
    if (event === "data") {
      wrapped = recorder.recording
        ? (...args) => {
          recorder.received();
          return context.with(recorder.context, listener, undefined, ...args);
        }
        : (...args) => {
          recorder.received();
          return listener(...args);
        };
    } else if (recorder.recording) {
      wrapped = context.bind(recorder.context, listener);
    } else {
      return on.call(this, event, listener);
    }
    // `removeListener(listener)` matches a wrapper by its `listener` property, as it does for
    // the wrappers of `once`.
    (wrapped as Listener & { listener: Listener }).listener = listener;
    return on.call(this, event, wrapped);
  };
  emitter.on = observedOn;
  emitter.addListener = observedOn;
  try {
    if (recorder.recording) context.with(recorder.context, handler);
    else handler();
  } finally {
    // The own properties go; the prototype's methods show through again.
    delete emitter.on;
    delete emitter.addListener;
  }
}

type Handler = (call: ServerCall, callback?: unknown) => void;

/** A handler as {@linkcode ObservedServer} runs it, with its method's definition. */
export interface ObservedHandler {
  /** The handler, traced and measured. */
  readonly handler: (call: object, callback?: unknown) => void;
  /** The method it serves. */
  readonly definition: grpc.MethodDefinition<unknown, unknown>;
}

function observeHandler(
  handler: Handler,
  attributes: Pick<
    grpc.MethodDefinition<unknown, unknown>,
    "path" | "requestStream"
  >,
): Handler {
  const method: ObservedMethod = {
    method: parseMethodPath(attributes.path),
    requestStream: attributes.requestStream,
  };
  return function observed(
    this: unknown,
    call: ServerCall,
    callback?: unknown,
  ): void {
    const recorder = startServerCall(call, method);
    if (recorder === undefined) {
      handler.call(this, call, callback);
      return;
    }
    runObserved(
      { recorder, call },
      () => handler.call(this, call, callback),
    );
  };
}

/**
 * The implementation of `service` with each of its handlers traced and measured. The handlers
 * run unchanged when OpenTelemetry is off.
 *
 * @param service The service definition.
 * @param implementation Its handlers, keyed by method name (or original name).
 * @returns The same handlers, observed, keyed as grpc-js looks them up.
 */
function observeService(
  service: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
  methods: Map<string, ObservedHandler> = new Map(),
): grpc.UntypedServiceImplementation {
  const observed: grpc.UntypedServiceImplementation = {};
  for (const [name, attributes] of Object.entries(service)) {
    const key = name in implementation
      ? name
      : typeof attributes.originalName === "string" &&
          attributes.originalName in implementation
      ? attributes.originalName
      : undefined;
    if (key === undefined) continue;
    const handler = implementation[key] as unknown as Handler;
    if (typeof handler !== "function") continue;
    const observedHandler = observeHandler(
      handler.bind(implementation),
      attributes,
    );
    methods.set(attributes.path, {
      handler: observedHandler as ObservedHandler["handler"],
      definition: attributes,
    });
    observed[key] = observedHandler as unknown as grpc.UntypedHandleCall;
  }
  return observed;
}

/**
 * A grpc-js server whose every service is traced and measured through OpenTelemetry: each
 * implementation handed to `addService` goes through {@linkcode observeService}.
 */
export class ObservedServer extends grpc.Server {
  /** The observed handler of every method added, by path, for the lean path. */
  readonly #methods = new Map<string, ObservedHandler>();

  /**
   * A grpc-js server; with the fast paths off, with the call telemetry's interceptor after
   * any of `options`.
   *
   * @param options The grpc-js server's options.
   */
  constructor(options: grpc.ServerOptions = {}) {
    super(
      fastPathsOn() ? options : {
        ...options,
        interceptors: [...(options.interceptors ?? []), telemetryInterceptor],
      },
    );
  }

  /**
   * Adds `service`, its handlers observed.
   *
   * @param service The service definition.
   * @param implementation Its handlers.
   */
  override addService(
    service: grpc.ServiceDefinition,
    implementation: grpc.UntypedServiceImplementation,
  ): void {
    super.addService(
      service,
      observeService(service, implementation, this.#methods),
    );
  }

  /**
   * The handler added for `path`, observed as grpc-js runs it, for a path that answers calls
   * without grpc-js (`lean_calls.ts`).
   *
   * @param path A method's path, such as `/stream.ClientStream/Sum`.
   * @returns The handler and its method's definition, or `undefined` if none was added.
   */
  observedHandler(path: string): ObservedHandler | undefined {
    return this.#methods.get(path);
  }
}
