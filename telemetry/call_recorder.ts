/**
 * One recorder per call, shared by the client and the server, that owns the call's span and
 * its measurements, through `npm:@opentelemetry/api`, which Deno's built-in OpenTelemetry
 * (`OTEL_DENO=true`) serves, under the names of `conventions.ts`.
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
  ProxyTracerProvider,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
  type UpDownCounter,
} from "../internals/npm/opentelemetry_api.ts";
import {
  ATTRIBUTES,
  type CallSide,
  INSTRUMENTATION_SCOPE,
  isErrorStatus,
  METRICS,
  type RpcMethod,
  withIntegers,
} from "./conventions.ts";

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
 * Whether Deno's own providers serve the API's traces and metrics, found with the tracer on
 * the first call (Deno registers them before any module runs).
 */
let toDeno: { spans: boolean; metrics: boolean } | undefined;

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
    // Counts go as doubles: Deno's meter refuses `valueType: ValueType.INT`.
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

/** The tracer provider the API hands out while none is registered: its spans never record. */
const UNREGISTERED_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * Whether a call on `side` would be recorded now: a tracer provider is registered (the API
 * lets one come at any time), or a meter was when the side's first call came. Without either,
 * {@linkcode startCallRecorder} returns `undefined`; this answers so before the caller builds
 * the call's attributes and parent context.
 *
 * @param side The client's calls or the server's.
 * @returns `false` when nothing would record the call.
 */
export function callsRecorded(side: CallSide): boolean {
  const provider = trace.getTracerProvider();
  const tracing = !(provider instanceof ProxyTracerProvider) ||
    provider.getDelegate() !== UNREGISTERED_TRACER_PROVIDER;
  return tracing || instrumentsOf(side) !== null;
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

  /**
   * Adds an event to the call's span, such as a fault injected into the call.
   *
   * @param name The event's name.
   * @param attributes What it says.
   */
  event(name: string, attributes: Attributes): void {
    if (this.#recording) this.#span.addEvent(name, attributes);
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
