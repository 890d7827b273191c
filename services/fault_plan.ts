/**
 * The faults of one call: what the rules that hit it do, and when. A handler asks its plan at
 * three points, which any per-call path can reach: {@linkcode CallFaults.progress} when the
 * call starts and after each message (a request read for `Sum` and `Sqrt`, a reply written
 * for `Pow`), which says when the call must end; {@linkcode CallFaults.replyDelay} before
 * each reply; and {@linkcode CallFaults.end} to end it the fault's way. Each fault, as it
 * starts, is one log line and one event on the call's span.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import http2 from "node:http2";
import { clearTimeout, setTimeout } from "node:timers";
import { callDropOf, cutByFault } from "../internals/grpc_js_call_drop.ts";
import { statusName } from "../proto/status.ts";
import type { CallRecorder } from "../telemetry/call_recorder.ts";
import { serverCallRecorder } from "./telemetry.ts";
import type { CheckedRule, FaultMethod } from "./fault_rules.ts";
import type { ServerLogger } from "./server_logger.ts";
import type { RunningCalls } from "./running_calls.ts";

/** What a call carries that a planner reads: its request metadata. */
export interface FaultCall {
  /** The request metadata, as grpc-js hands it. */
  readonly metadata: { get(key: string): (string | Uint8Array)[] };
}

/** What hands each call its faults as it starts: the server's rules of the moment. */
export interface CallPlanner {
  /**
   * The faults of a call that is starting.
   *
   * @param method The method called.
   * @param call The call, for its metadata.
   * @returns The call's plan, or `undefined` when nothing hits it.
   */
  plan(method: FaultMethod, call: FaultCall): CallFaults | undefined;
}

/** Where a server's handlers find its rules: `planner` is `undefined` while it has none. */
export interface FaultSwitch {
  /** The current rules, or `undefined` for a server without faults. */
  planner: CallPlanner | undefined;
}

/** A status to end a call with. */
function status(code: number, details: string): grpc.StatusObject {
  return { code, details, metadata: new grpc.Metadata() };
}

/** A rule (or a header) that hit a call. */
export interface FaultHit extends CheckedRule {
  /** A delay before the first reply only (Envoy's header delay), not before each. */
  readonly once: boolean;
}

/** How a fault ends a call. */
export type FaultEnding =
  | { readonly kind: "status"; readonly hit: FaultHit; readonly code: number }
  | {
    readonly kind: "drop";
    readonly hit: FaultHit;
    readonly scope: "stream" | "connection";
  };

/** The call a fault ends, and the handler's way to send it a status. */
export interface FaultTarget {
  /** The grpc-js server call. */
  readonly call: object;
  /** Ends the call with a status, the handler's way. */
  fail(failure: grpc.StatusObject): void;
  /**
   * Resolves once the replies written so far have gone to HTTP/2, so that a drop does not
   * take them with it; `true` if the call ended meanwhile.
   */
  written?: (() => Promise<boolean>) | undefined;
}

/** What a plan needs besides its hits. */
export interface CallFaultsOptions {
  /** The rules and headers that hit the call, in the order given. */
  hits: readonly FaultHit[];
  /**
   * Where each fault is said.
   *
   * @default {undefined}
   */
  logger?: ServerLogger | undefined;
  /**
   * The grpc-js server call, whose span gets an event per fault.
   *
   * @default {undefined}
   */
  call?: object | undefined;
}

/** The span event each fault adds to its call's span. */
export const FAULT_EVENT = "grpc_stream.fault";

function effectText(hit: FaultHit): string {
  const effects: string[] = [];
  if (hit.delay > 0) {
    effects.push(
      hit.once
        ? `delay ${hit.delay} ms before the first reply`
        : `delay ${hit.delay} ms before each reply`,
    );
  }
  if (hit.status !== undefined) {
    effects.push(`status ${statusName(hit.status) ?? hit.status}`);
  }
  if (hit.drop === "stream") effects.push("drop stream (RST_STREAM)");
  if (hit.drop === "connection") effects.push("drop connection");
  return effects.join(", then ");
}

/** How long a drop waits after the replies before it are framed. */
const DROP_SETTLE_MS = 10;

/**
 * The faults of one call, in the order of their `after`.
 *
 * @param method The method called.
 * @param options The hits and the logger.
 * @returns The plan.
 */
export function createCallFaults(
  method: FaultMethod,
  options: CallFaultsOptions,
): CallFaults {
  return new CallFaults(method, options);
}

/** The faults of one call. */
export class CallFaults {
  readonly #method: FaultMethod;
  readonly #pending: FaultHit[];
  readonly #started: FaultHit[] = [];
  readonly #logger: ServerLogger | undefined;
  /** The recorder of the call's span, when OpenTelemetry is on. */
  readonly #recorder: CallRecorder | undefined;
  readonly #timers = new Set<{ timer: unknown; done: (on: boolean) => void }>();
  #stopped = false;
  #ending: FaultEnding | undefined;

  /**
   * @param method The method called.
   * @param options The hits, the logger and the call.
   */
  constructor(method: FaultMethod, options: CallFaultsOptions) {
    this.#method = method;
    this.#recorder = options.call === undefined
      ? undefined
      : serverCallRecorder(options.call);
    this.#pending = [...options.hits].sort((a, b) => a.after - b.after);
    this.#logger = options.logger;
  }

  /**
   * Tells the plan that `messages` messages of the call have gone through (0 at its start).
   * Faults whose `after` is reached start: each is said once.
   *
   * @param messages Requests read (`Sum`, `Sqrt`) or replies written (`Pow`) so far.
   * @returns How the call must end now, the first time an ending fault starts.
   */
  progress(messages: number): FaultEnding | undefined {
    let ending: FaultEnding | undefined;
    while (
      this.#pending.length > 0 && this.#pending[0]!.after <= messages
    ) {
      const hit = this.#pending.shift()!;
      this.#started.push(hit);
      this.#report(hit, messages);
      if (this.#ending !== undefined) continue;
      if (hit.status !== undefined) {
        ending = this.#ending = { kind: "status", hit, code: hit.status };
      } else if (hit.drop !== undefined) {
        ending = this.#ending = { kind: "drop", hit, scope: hit.drop };
      }
    }
    return ending;
  }

  /**
   * How long to hold the next reply: the longest delay of the faults started so far, and a
   * header's one-off delay until it is spent.
   *
   * @returns Milliseconds; 0 for none.
   */
  replyDelay(): number {
    let longest = 0;
    for (let index = 0; index < this.#started.length; index++) {
      const hit = this.#started[index]!;
      if (hit.delay > longest) longest = hit.delay;
      if (hit.once) {
        // Spent: Envoy's delay holds the call once.
        this.#started[index] = { ...hit, delay: 0 };
      }
    }
    return longest;
  }

  /**
   * Waits `ms` milliseconds unless the call ends first ({@linkcode CallFaults.stop}).
   *
   * @param ms How long.
   * @returns Whether the call is still on.
   */
  wait(ms: number): Promise<boolean> {
    if (this.#stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const entry = {
        timer: undefined as unknown,
        done: (on: boolean): void => {
          this.#timers.delete(entry);
          resolve(on);
        },
      };
      entry.timer = setTimeout(() => entry.done(true), ms);
      this.#timers.add(entry);
    });
  }

  /** Ends the plan's waits: the call was cancelled or ended otherwise. */
  stop(): void {
    this.#stopped = true;
    for (const entry of [...this.#timers]) {
      clearTimeout(entry.timer as ReturnType<typeof setTimeout>);
      entry.done(false);
    }
  }

  /**
   * Ends the call the fault's way, after the delay of its rule (and a header's delay not yet
   * spent): with the status, a reset stream (`RST_STREAM` with `INTERNAL_ERROR`) or a cut
   * connection (no GOAWAY).
   *
   * @param ending What {@linkcode CallFaults.progress} returned.
   * @param target The call and the handler's way to fail it.
   * @returns A promise that settles once the call is ended (or was ended otherwise first).
   */
  async end(ending: FaultEnding, target: FaultTarget): Promise<void> {
    const hold = this.replyDelay();
    if (hold > 0 && !await this.wait(hold)) return;
    if (ending.kind === "status") {
      target.fail(status(ending.code, ending.hit.message));
      return;
    }
    if (target.written !== undefined && await target.written()) return;
    // A moment for what was framed to reach the client on its own: gRPC C-core drops a reply
    // it has not handed to its caller yet when the reset comes in the same read.
    await new Promise((resolve) => setTimeout(resolve, DROP_SETTLE_MS));
    if (this.#stopped) return;
    const drop = callDropOf(target.call);
    if (drop === undefined) {
      // No stream to reset: the client still sees the call fail, with a status.
      target.fail(
        status(
          grpc.status.UNAVAILABLE,
          `Fault injected by the server: drop ${ending.scope}`,
        ),
      );
      return;
    }
    if (ending.scope === "stream") {
      drop.resetStream(http2.constants.NGHTTP2_INTERNAL_ERROR);
    } else {
      drop.cutConnection();
    }
  }

  #report(hit: FaultHit, messages: number): void {
    const unit = this.#method === "Pow" ? "replies" : "requests";
    const effect = effectText(hit);
    try {
      this.#logger?.warn(
        `Fault injected into ${this.#method}: ${hit.label} after ${messages} ${unit}: ${effect}`,
      );
    } catch {
      // A logger that fails must not change what the fault does.
    }
    this.#recorder?.event(FAULT_EVENT, {
      "grpc_stream.fault.rule": hit.label,
      "grpc_stream.fault.effect": effect,
      "grpc_stream.fault.after": messages,
    });
  }
}

/**
 * Who cancelled a call, for the handlers' lines: the client, or a fault that cut the call's
 * connection (`drop: "connection"` on another call of it).
 *
 * @param call A server call, as a handler gets it.
 * @returns `the client` or `a fault that cut the connection`.
 */
export function canceller(call: object): string {
  return cutByFault(call) ? "a fault that cut the connection" : "the client";
}

/** How {@linkcode endByFault} ends a call, and where a shutdown finds it meanwhile. */
export interface FaultEnd extends FaultTarget {
  /** What {@linkcode CallFaults.progress} returned. */
  ending: FaultEnding;
  /** The calls a shutdown ends (`CallContext.running`). */
  running: RunningCalls;
  /** The call's name there. */
  name: string;
}

/**
 * Ends a call the fault's way ({@linkcode CallFaults.end}) while a shutdown can still end it
 * sooner: a fault that holds a call keeps it among the running calls until it is over.
 *
 * @param faults The call's plan.
 * @param target The ending, the call, the handler's way to fail it, the running calls and
 * the call's name there.
 */
export function endByFault(faults: CallFaults, target: FaultEnd): void {
  const { ending } = target;
  const { running, fail } = target;
  function endedByShutdown(failure: grpc.StatusObject): void {
    faults.stop();
    fail(failure);
  }
  const place = running.add(endedByShutdown, target.name);
  faults.end(ending, target).catch((cause: unknown) => {
    fail(status(grpc.status.INTERNAL, `Fault failed: ${String(cause)}`));
  }).finally(() => running.delete(place, endedByShutdown));
}
