/**
 * What the client and the server share to trace and measure their calls through
 * `npm:@opentelemetry/api`, which Deno's built-in OpenTelemetry (`OTEL_DENO=true`) serves:
 * the attribute and instrument names of OpenTelemetry's semantic conventions for RPC (the
 * experimental ones of v1.37 and before, which backends read today: `rpc.server.duration` in
 * ms, not v1.38's `rpc.server.call.duration` in s), and one recorder per call that owns its
 * span and its measurements.
 *
 * Without OpenTelemetry configured, the API hands out a tracer whose spans do not record and
 * a no-op meter: {@linkcode startCallRecorder} then returns `undefined`, and the transports
 * do nothing per message but find that out (an optional call on an unset field).
 *
 * @module
 */
import {
  type Attributes,
  type Context,
  createNoopMeter,
  type Histogram,
  type Meter,
  metrics,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
  type UpDownCounter,
} from "@opentelemetry/api";

/** The instrumentation scope of every span and metric: the package's name. */
const INSTRUMENTATION_SCOPE = "@streamrpc/grpc-stream";

/** Attribute names, from the semantic conventions unless they start with `grpc_stream.`. */
export const ATTRIBUTES = {
  rpcSystem: "rpc.system",
  rpcService: "rpc.service",
  rpcMethod: "rpc.method",
  statusCode: "rpc.grpc.status_code",
  serverAddress: "server.address",
  serverPort: "server.port",
  peerAddress: "network.peer.address",
  peerPort: "network.peer.port",
  messageType: "rpc.message.type",
  messageId: "rpc.message.id",
  /** Messages this side sent on the call: the conventions have no span attribute for it. */
  messagesSent: "grpc_stream.messages.sent",
  /** Messages this side received on the call. */
  messagesReceived: "grpc_stream.messages.received",
} as const;

/**
 * The attributes whose values are integers: `int` in the RPC conventions (the status code, the
 * ports, the message id), and the message counts.
 */
const INTEGER_ATTRIBUTES: ReadonlySet<string> = new Set([
  ATTRIBUTES.statusCode,
  ATTRIBUTES.serverPort,
  ATTRIBUTES.peerPort,
  ATTRIBUTES.messageId,
  ATTRIBUTES.messagesSent,
  ATTRIBUTES.messagesReceived,
]);

/** Deno's built-in OpenTelemetry (`Deno.telemetry`), where the runtime has one. */
interface DenoTelemetry {
  readonly tracerProvider: unknown;
  readonly meterProvider: unknown;
}

function denoTelemetry(): DenoTelemetry | undefined {
  return (globalThis as { Deno?: { telemetry?: DenoTelemetry } }).Deno
    ?.telemetry;
}

/**
 * `attributes` with their integers as an exporter takes them. Deno's (2.9.6) exports every
 * JavaScript number as an OTLP `doubleValue`, whole or not, and a bigint as an `intValue`
 * (`attr_raw!` in ext/telemetry/lib.rs, for span, event and metric attributes alike): for
 * Deno's providers the integers go as bigints. Any other provider gets numbers: the
 * OpenTelemetry JS SDK takes no bigint as an attribute value, and its OTLP exporter sends a
 * whole number as an `intValue` by itself.
 */
function withIntegers(attributes: Attributes, bigints: boolean): Attributes {
  if (!bigints) return attributes;
  const converted: Record<string, unknown> = { ...attributes };
  for (const [key, value] of Object.entries(attributes)) {
    if (
      INTEGER_ATTRIBUTES.has(key) && typeof value === "number" &&
      Number.isSafeInteger(value)
    ) {
      converted[key] = BigInt(value);
    }
  }
  // A bigint is not an `AttributeValue` to the API's types, only to Deno's exporter.
  return converted as Attributes;
}

/**
 * Whether Deno's own providers serve the API's traces and metrics, found with the tracer on
 * the first call (Deno registers them before any module runs).
 */
let toDeno: { spans: boolean; metrics: boolean } | undefined;

/** Metric names: the conventions' histograms, and a gauge of calls in flight of our own. */
const METRICS = {
  client: {
    duration: "rpc.client.duration",
    requests: "rpc.client.requests_per_rpc",
    responses: "rpc.client.responses_per_rpc",
    active: "rpc.client.active_calls",
  },
  server: {
    duration: "rpc.server.duration",
    requests: "rpc.server.requests_per_rpc",
    responses: "rpc.server.responses_per_rpc",
    active: "rpc.server.active_calls",
  },
} as const;

/** The gRPC status codes this module names (the full list is in `clients/grpc_error.ts`). */
const STATUS_OK = 0;
/** The call was cancelled, usually by the caller. */
export const STATUS_CANCELLED = 1;
/** The call's deadline passed. */
export const STATUS_DEADLINE_EXCEEDED = 4;

/**
 * The codes for which a server span is an error, as the semantic conventions ask: a fault on
 * the server's side. Codes that blame the request (`INVALID_ARGUMENT`, `OUT_OF_RANGE`,
 * `CANCELLED`, …) leave a server span's status unset; every non-OK code is an error on the
 * client's span.
 */
const SERVER_ERROR_CODES: ReadonlySet<number> = new Set([
  2, // UNKNOWN
  4, // DEADLINE_EXCEEDED
  12, // UNIMPLEMENTED
  13, // INTERNAL
  14, // UNAVAILABLE
  15, // DATA_LOSS
]);

/** Which side of a call a recorder describes. */
export type CallSide = "client" | "server";

/**
 * Whether a call that ended with `code` is an error on this side's span.
 *
 * @param side The client or the server.
 * @param code The gRPC status code.
 * @returns `true` for every non-OK code on the client, and for server faults on the server.
 */
export function isErrorStatus(side: CallSide, code: number): boolean {
  if (code === STATUS_OK) return false;
  return side === "client" || SERVER_ERROR_CODES.has(code);
}

/** A gRPC method as the conventions name it. */
export interface RpcMethod {
  /** The full service name, e.g. `stream.ServerStream`. */
  service: string;
  /** The method name, e.g. `Pow`. */
  method: string;
  /** The span name, `service/method`. */
  name: string;
}

/**
 * Splits a method path into its service and method.
 *
 * @param path A gRPC path, `/package.Service/Method`.
 * @returns The names; a path of another shape is all service, with an empty method.
 */
export function parseMethodPath(path: string): RpcMethod {
  const trimmed = path.startsWith("/") ? path.slice(1) : path;
  const slash = trimmed.lastIndexOf("/");
  return slash < 0 ? { service: trimmed, method: "", name: trimmed } : {
    service: trimmed.slice(0, slash),
    method: trimmed.slice(slash + 1),
    name: trimmed,
  };
}

/**
 * Splits `host:port` or `[ipv6]:port` for `server.address` and `server.port`.
 *
 * @param authority The address, as dialled or as the `:authority` header gave it.
 * @returns The host (without brackets) and the port, or no port if there is none.
 */
export function splitHostPort(
  authority: string,
): { host: string; port: number | undefined } {
  const match = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(authority);
  if (match === null) {
    return {
      host: authority.startsWith("[") && authority.endsWith("]")
        ? authority.slice(1, -1)
        : authority,
      port: undefined,
    };
  }
  return { host: match[1] ?? match[2] ?? "", port: Number(match[3]) };
}

interface Instruments {
  duration: Histogram;
  requests: Histogram;
  responses: Histogram;
  active: UpDownCounter;
}

let tracer: Tracer | undefined;
/** Per side: the instruments, `null` when no meter provider is registered, unset at first. */
const instruments: Record<CallSide, Instruments | null | undefined> = {
  client: undefined,
  server: undefined,
};

/** Buckets for messages per call: from one message to a million-message stream. */
const COUNT_BUCKETS = [0, 1, 2, 5, 10, 100, 1_000, 10_000, 100_000, 1_000_000];

/**
 * Creates the side's instruments, or gives `null` when the meter refuses one: metrics are then
 * off, and calls go on.
 */
function createInstruments(meter: Meter, side: CallSide): Instruments | null {
  const names = METRICS[side];
  const what = side === "client" ? "outgoing" : "incoming";
  try {
    // Counts go as doubles: Deno's meter (2.9.6) refuses `valueType: ValueType.INT`.
    return {
      duration: meter.createHistogram(names.duration, {
        description: `Duration of ${what} gRPC calls, over the whole stream`,
        unit: "ms",
      }),
      requests: meter.createHistogram(names.requests, {
        description: `Request messages per ${what} gRPC call`,
        unit: "{count}",
        advice: { explicitBucketBoundaries: COUNT_BUCKETS },
      }),
      responses: meter.createHistogram(names.responses, {
        description: `Response messages per ${what} gRPC call`,
        unit: "{count}",
        advice: { explicitBucketBoundaries: COUNT_BUCKETS },
      }),
      active: meter.createUpDownCounter(names.active, {
        description: `${
          what === "outgoing" ? "Outgoing" : "Incoming"
        } gRPC calls in flight`,
        unit: "{call}",
      }),
    };
  } catch {
    return null;
  }
}

/**
 * The side's instruments, made on the first call rather than at import: a provider
 * registered later than that (not Deno's, which is there before any module runs) is not
 * seen.
 */
function instrumentsOf(side: CallSide): Instruments | null {
  let found = instruments[side];
  if (found === undefined) {
    const meter = metrics.getMeter(INSTRUMENTATION_SCOPE);
    if (meter === createNoopMeter()) {
      found = null;
    } else {
      found = createInstruments(meter, side);
    }
    instruments[side] = found;
  }
  return found;
}

const MESSAGE_SENT: Attributes = {
  [ATTRIBUTES.messageType]: "SENT",
  [ATTRIBUTES.messageId]: 1,
};
const MESSAGE_RECEIVED: Attributes = {
  [ATTRIBUTES.messageType]: "RECEIVED",
  [ATTRIBUTES.messageId]: 1,
};
/** The two events' attributes for Deno's exporter: see {@linkcode withIntegers}. */
const MESSAGE_EVENTS = {
  numbers: { sent: MESSAGE_SENT, received: MESSAGE_RECEIVED },
  bigints: {
    sent: withIntegers(MESSAGE_SENT, true),
    received: withIntegers(MESSAGE_RECEIVED, true),
  },
};

/**
 * One call's span and measurements. The span covers the whole stream; the messages are
 * counted, and only the first message each way becomes a span event (`message`, with
 * `rpc.message.id` 1), so that the time to the first message shows without a million-message
 * `Pow` making a million events.
 */
export class CallRecorder {
  /** The call's span; a non-recording one when only metrics are on. */
  readonly #span: Span;
  /** The caller's context with this call's span in it. */
  readonly context: Context;
  readonly #side: CallSide;
  readonly #recording: boolean;
  readonly #instruments: Instruments | null;
  readonly #metricAttributes: Attributes;
  /** Whether integer attributes go to the span and the metrics as bigints. */
  readonly #bigints: { spans: boolean; metrics: boolean };
  readonly #events: { sent: Attributes; received: Attributes };
  readonly #started = performance.now();
  #sent = 0;
  #received = 0;
  #ended = false;

  /**
   * @param side Which side the call is on.
   * @param setup The span, the context it belongs to, and the attributes of its metrics.
   */
  constructor(
    side: CallSide,
    setup: {
      span: Span;
      context: Context;
      instruments: Instruments | null;
      metricAttributes: Attributes;
      bigints: { spans: boolean; metrics: boolean };
    },
  ) {
    this.#side = side;
    this.#span = setup.span;
    this.context = setup.context;
    this.#recording = setup.span.isRecording();
    this.#instruments = setup.instruments;
    this.#bigints = setup.bigints;
    this.#events = setup.bigints.spans
      ? MESSAGE_EVENTS.bigints
      : MESSAGE_EVENTS.numbers;
    this.#metricAttributes = withIntegers(
      setup.metricAttributes,
      setup.bigints.metrics,
    );
    this.#instruments?.active.add(1, this.#metricAttributes);
  }

  /** Whether the span records, so that work for the trace alone can be skipped. */
  get recording(): boolean {
    return this.#recording;
  }

  /** Counts one message sent. */
  sent(): void {
    if (++this.#sent === 1 && this.#recording) {
      this.#span.addEvent("message", this.#events.sent);
    }
  }

  /** Counts one message received. */
  received(): void {
    if (++this.#received === 1 && this.#recording) {
      this.#span.addEvent("message", this.#events.received);
    }
  }

  /**
   * Ends the call with its status: the span ends and the measurements are recorded. Only the
   * first end counts.
   *
   * @param code The gRPC status code.
   * @param details The status details, the span's status message when it is an error.
   */
  end(code: number, details = ""): void {
    if (this.#ended) return;
    this.#ended = true;
    const duration = performance.now() - this.#started;
    if (this.#recording) {
      this.#span.setAttributes(withIntegers({
        [ATTRIBUTES.statusCode]: code,
        [ATTRIBUTES.messagesSent]: this.#sent,
        [ATTRIBUTES.messagesReceived]: this.#received,
      }, this.#bigints.spans));
      if (isErrorStatus(this.#side, code)) {
        this.#span.setStatus({ code: SpanStatusCode.ERROR, message: details });
      }
    }
    this.#span.end();
    const measured = this.#instruments;
    if (measured !== null) {
      measured.active.add(-1, this.#metricAttributes);
      const attributes = {
        ...this.#metricAttributes,
        ...withIntegers(
          { [ATTRIBUTES.statusCode]: code },
          this.#bigints.metrics,
        ),
      };
      measured.duration.record(duration, attributes);
      const [requests, responses] = this.#side === "client"
        ? [this.#sent, this.#received]
        : [this.#received, this.#sent];
      measured.requests.record(requests, attributes);
      measured.responses.record(responses, attributes);
    }
  }
}

/** Where and what a call is, to start its recorder. */
export interface CallRecorderSetup {
  /** The method called. */
  method: RpcMethod;
  /** The context the call's span is a child of: the caller's, or one extracted from metadata. */
  parent: Context;
  /** Span attributes beyond the method's; `server.*` ones also go on the metrics. */
  attributes: Attributes;
}

/**
 * Starts the span and measurements of one call, or does nothing when neither a recording
 * tracer nor a meter is registered.
 *
 * @param side The client or the server.
 * @param setup The method, the parent context and extra attributes.
 * @returns The call's recorder, or `undefined` when there is nothing to record.
 */
export function startCallRecorder(
  side: CallSide,
  setup: CallRecorderSetup,
): CallRecorder | undefined {
  const { method } = setup;
  tracer ??= trace.getTracer(INSTRUMENTATION_SCOPE);
  toDeno ??= {
    spans: trace.getTracerProvider() === denoTelemetry()?.tracerProvider,
    metrics: metrics.getMeterProvider() === denoTelemetry()?.meterProvider,
  };
  const methodAttributes: Attributes = {
    [ATTRIBUTES.rpcSystem]: "grpc",
    [ATTRIBUTES.rpcService]: method.service,
    [ATTRIBUTES.rpcMethod]: method.method,
  };
  const span = tracer.startSpan(
    method.name,
    {
      kind: side === "client" ? SpanKind.CLIENT : SpanKind.SERVER,
      attributes: withIntegers(
        { ...methodAttributes, ...setup.attributes },
        toDeno.spans,
      ),
    },
    setup.parent,
  );
  const measured = instrumentsOf(side);
  if (!span.isRecording() && measured === null) return undefined;
  const metricAttributes = { ...methodAttributes };
  for (const key of [ATTRIBUTES.serverAddress, ATTRIBUTES.serverPort]) {
    const value = setup.attributes[key];
    if (value !== undefined && side === "client") metricAttributes[key] = value;
  }
  return new CallRecorder(side, {
    span,
    context: trace.setSpan(setup.parent, span),
    instruments: measured,
    metricAttributes,
    bigints: toDeno,
  });
}
