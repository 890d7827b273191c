/**
 * Faults on request's planner: the seeded draw that picks the calls a rule (`fault_rules.ts`)
 * hits, and Envoy's fault headers. Each call of `Pow`, `Sum` and `Sqrt` asks the
 * {@linkcode FaultPlanner} once, at its start, for its plan (`fault_plan.ts`); a server with
 * no planner asks nothing.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { MAX_TIMER_MS } from "../proto/limits.ts";
import { Status } from "../proto/status.ts";
import { status } from "./call_context.ts";
import {
  type CallFaults,
  type CallPlanner,
  createCallFaults,
  type FaultCall,
  type FaultHit,
  type FaultSwitch,
} from "./fault_plan.ts";
import {
  type CheckedRule,
  DEFAULT_FAULT_MESSAGE,
  FAULT_HEADERS,
  type FaultMethod,
} from "./fault_rules.ts";
import type { ServerLogger } from "./server_logger.ts";

/** A 32-bit finaliser (lowbias32): every input bit reaches every output bit. */
function mix(value: number): number {
  let x = value >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The draw slots of the headers, apart from the rules' (a rule's slot is its index). */
const ABORT_HEADER_SLOT = 0x1_0000;
const DELAY_HEADER_SLOT = 0x1_0001;

/**
 * The draw of `slot` for the `call`-th call under `seed`, in [0, 1). A hash, not a running
 * generator: a call's draws depend on its number alone, not on what other calls drew.
 *
 * @param seed The server's fault seed.
 * @param draw The call's number, from 0, in the order calls started since the rules were
 * set, and the slot drawn for: the rule's index, or a header's slot.
 * @returns A number from 0 up to 1.
 */
export function faultDraw(
  seed: number,
  { call, slot }: { call: number; slot: number },
): number {
  return mix(mix(mix(seed) ^ mix(call)) ^ slot) / 2 ** 32;
}

/** A header the client sent that does not say a fault the server can make. */
export class FaultHeaderError extends Error {
  override name = "FaultHeaderError";
}

function headerNumber(
  call: FaultCall,
  { header, max, integer }: { header: string; max: number; integer: boolean },
): number | undefined {
  const [value] = call.metadata.get(header);
  if (value === undefined) return undefined;
  const text = typeof value === "string" ? value.trim() : "";
  const number = /^\d+(?:\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (
    Number.isNaN(number) || number > max ||
    (integer && !Number.isInteger(number))
  ) {
    throw new FaultHeaderError(
      `Fault header ${header} must be ${
        integer ? "an integer" : "a number"
      } from 0 to ${max}: ${typeof value === "string" ? value : "(binary)"}`,
    );
  }
  return number;
}

/** How a planner behaves beyond its rules. */
export interface FaultPlannerOptions {
  /**
   * The seed of the draws for `ratio` and the header percentages.
   *
   * @default {0}
   */
  seed?: number;
  /**
   * Whether the calls' Envoy fault headers are obeyed: only on a server started with
   * `faults`.
   *
   * @default {false}
   */
  headers?: boolean;
  /**
   * Where each injected fault is said.
   *
   * @default {undefined}
   */
  logger?: ServerLogger | undefined;
}

/** The rules of one server, from one `startServer` or `setFaults` to the next. */
export class FaultPlanner implements CallPlanner {
  readonly #rules: readonly CheckedRule[];
  readonly #seed: number;
  readonly #headers: boolean;
  readonly #logger: ServerLogger | undefined;
  /** How many calls have started since the rules were set: the draws' call number. */
  #calls = 0;

  /**
   * @param rules The checked rules.
   * @param options The seed, whether headers count, and the logger.
   */
  constructor(
    rules: readonly CheckedRule[],
    options: FaultPlannerOptions = {},
  ) {
    this.#rules = rules;
    this.#seed = options.seed ?? 0;
    this.#headers = options.headers ?? false;
    this.#logger = options.logger;
  }

  /**
   * The faults of a call that is starting, which takes the next call number.
   *
   * @param method The method called.
   * @param call The call, for its metadata.
   * @returns The call's plan, or `undefined` when nothing hits it.
   * @throws {FaultHeaderError} If a fault header is malformed: the call should end with
   * `INVALID_ARGUMENT`.
   */
  plan(method: FaultMethod, call: FaultCall): CallFaults | undefined {
    const number = this.#calls++;
    const hits: FaultHit[] = [];
    this.#rules.forEach((rule, index) => {
      if (rule.method !== undefined && rule.method !== method) return;
      if (
        rule.ratio < 1 &&
        faultDraw(this.#seed, { call: number, slot: index }) >= rule.ratio
      ) {
        return;
      }
      hits.push({ ...rule, once: false });
    });
    if (this.#headers) this.#headerHits(call, { number, hits });
    if (hits.length === 0) return undefined;
    return createCallFaults(method, { hits, logger: this.#logger, call });
  }

  #headerHits(
    call: FaultCall,
    { number, hits }: { number: number; hits: FaultHit[] },
  ): void {
    const abort = headerNumber(call, {
      header: FAULT_HEADERS.abort,
      max: 16,
      integer: true,
    });
    const delay = headerNumber(call, {
      header: FAULT_HEADERS.delay,
      max: MAX_TIMER_MS,
      integer: false,
    });
    if (abort === undefined && delay === undefined) return;
    const abortShare = (headerNumber(call, {
      header: FAULT_HEADERS.abortPercentage,
      max: 100,
      integer: false,
    }) ?? 100) / 100;
    const delayShare = (headerNumber(call, {
      header: FAULT_HEADERS.delayPercentage,
      max: 100,
      integer: false,
    }) ?? 100) / 100;
    const delayed = delay !== undefined && delay > 0 &&
      faultDraw(this.#seed, { call: number, slot: DELAY_HEADER_SLOT }) <
        delayShare;
    // Envoy delays a call once, before it goes on, and then aborts it.
    if (delayed) {
      hits.push({
        method: undefined,
        after: 0,
        status: undefined,
        message: DEFAULT_FAULT_MESSAGE,
        delay,
        drop: undefined,
        ratio: delayShare,
        label: `header ${FAULT_HEADERS.delay}=${delay}`,
        once: true,
      });
    }
    if (
      abort !== undefined && abort !== Status.OK &&
      faultDraw(this.#seed, { call: number, slot: ABORT_HEADER_SLOT }) <
        abortShare
    ) {
      hits.push({
        method: undefined,
        after: 0,
        status: abort,
        message: DEFAULT_FAULT_MESSAGE,
        delay: 0,
        drop: undefined,
        ratio: abortShare,
        label: `header ${FAULT_HEADERS.abort}=${abort}`,
        once: false,
      });
    }
  }
}

/**
 * The faults of a call that is starting. Handlers call it for every call; a server without
 * faults spends one check on it.
 *
 * @param faults The server's rules.
 * @param describe Gives the method called; the call, for its metadata and its cancellation,
 * which ends the plan's waits; its name in the log; and how to refuse it, with the status for
 * fault headers that are malformed (said on `logger` first). Asked only when the server has
 * faults on request: a call without them costs nothing more.
 * @returns The plan, `undefined` when nothing hits the call, or `false` once the call has
 * been refused.
 */
export function callFaults(
  faults: FaultSwitch,
  describe: () => {
    method: FaultMethod;
    call: FaultCall & {
      once(event: "cancelled", listener: () => void): unknown;
    };
    name: string;
    logger: ServerLogger | undefined;
    refuse(failure: grpc.StatusObject): void;
  },
): CallFaults | undefined | false {
  const planner = faults.planner;
  if (planner === undefined) return undefined;
  const started = describe();
  const { call } = started;
  let plan: CallFaults | undefined;
  try {
    plan = planner.plan(started.method, call);
  } catch (error) {
    if (!(error instanceof FaultHeaderError)) throw error;
    const failure = status(grpc.status.INVALID_ARGUMENT, error.message);
    started.logger?.warn(`${started.name} refused: ${failure.details}`);
    started.refuse(failure);
    return false;
  }
  if (plan !== undefined) {
    const planned = plan;
    call.once("cancelled", () => planned.stop());
  }
  return plan;
}
