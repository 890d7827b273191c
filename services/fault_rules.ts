/**
 * The rules of faults on request (docs/faults.md): their type, as `startServer({ faults })`,
 * `server.setFaults` and `serve --fault` take them, and their checks, which name the rule,
 * the field and the value.
 *
 * @module
 */
import { MAX_TIMER_MS, MAX_UINT32 } from "../proto/limits.ts";
import { statusName } from "../proto/status.ts";

/** A method a fault rule can hit: the three streaming methods. */
export type FaultMethod = "Pow" | "Sum" | "Sqrt";

/**
 * One way for the server to misbehave (see docs/faults.md). Every field is optional, but a
 * rule needs at least one effect: `status`, `delay` or `drop`.
 */
export interface FaultRule {
  /**
   * The method the rule hits.
   *
   * @default {undefined} (all three)
   */
  method?: FaultMethod;
  /**
   * How many messages of the call go through before the effect starts: requests read for
   * `Sum` and `Sqrt` (a `Sqrt`'s answers to them written), replies written for `Pow`. A call
   * that ends before reaching it is not hit. From 0 to 4,294,967,295.
   *
   * @default {0} (at the call's start)
   */
  after?: number;
  /**
   * The status code (1 to 16, {@linkcode Status}) the call then ends with.
   *
   * @default {undefined}
   */
  status?: number;
  /**
   * The status message that goes with `status`.
   *
   * @default {"Fault injected by the server"}
   */
  message?: string;
  /**
   * Milliseconds to wait before each reply from then on (and before `status` or `drop`, in
   * the same rule). From 0 to 2,147,483,647.
   *
   * @default {undefined}
   */
  delay?: number;
  /**
   * `"stream"` resets the call's HTTP/2 stream (`RST_STREAM` with `INTERNAL_ERROR`);
   * `"connection"` cuts the TCP connection without a GOAWAY, ending every call on it.
   *
   * @default {undefined}
   */
  drop?: "stream" | "connection";
  /**
   * The share of calls the rule hits, from 0 to 1, drawn from the server's `faultSeed`.
   *
   * @default {1}
   */
  ratio?: number;
}

/** The methods a rule may name. */
export const FAULT_METHODS: readonly FaultMethod[] = ["Pow", "Sum", "Sqrt"];

/** The fields of a rule besides `method`, in the order the docs give them. */
export const FAULT_RULE_KEYS: readonly string[] = [
  "after",
  "status",
  "message",
  "delay",
  "drop",
  "ratio",
];

/** The rule fields, for the check that refuses the others. */
const RULE_FIELDS: ReadonlySet<string> = new Set([
  "method",
  ...FAULT_RULE_KEYS,
]);

const METHODS: ReadonlySet<string> = new Set(FAULT_METHODS);

/** The default status message of a `status` effect. */
export const DEFAULT_FAULT_MESSAGE = "Fault injected by the server";

/** Envoy's fault filter headers, which gRPC's xDS fault injection reads too. */
export const FAULT_HEADERS = {
  abort: "x-envoy-fault-abort-grpc-request",
  abortPercentage: "x-envoy-fault-abort-request-percentage",
  delay: "x-envoy-fault-delay-request",
  delayPercentage: "x-envoy-fault-delay-request-percentage",
} as const;

/** A checked rule, with its defaults filled in and the words logs name it by. */
export interface CheckedRule {
  /** The methods it hits. */
  readonly method: FaultMethod | undefined;
  /** Messages before the effect. */
  readonly after: number;
  /** The status to end with, if any. */
  readonly status: number | undefined;
  /** Its message. */
  readonly message: string;
  /** The delay before each reply, in ms; 0 for none. */
  readonly delay: number;
  /** What to drop, if anything. */
  readonly drop: "stream" | "connection" | undefined;
  /** The share of calls hit. */
  readonly ratio: number;
  /** How logs and spans name it: `rule 1 (Sum:after=3:status=UNAVAILABLE)`. */
  readonly label: string;
}

function describeValue(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

function checkNumber(
  rule: Record<string, unknown>,
  { field, name, min, max, integer }: {
    field: string;
    name: string;
    min: number;
    max: number;
    integer: boolean;
  },
): number | undefined {
  const value = rule[field];
  if (value === undefined) return undefined;
  if (typeof value !== "number") {
    throw new TypeError(
      `${name} ${field} must be a number: ${describeValue(value)}`,
    );
  }
  if (
    Number.isNaN(value) || value < min || value > max ||
    (integer && !Number.isInteger(value))
  ) {
    throw new RangeError(
      `${name} ${field} must be ${
        integer ? "an integer" : "a number"
      } from ${min} to ${max}: ${value}`,
    );
  }
  return value;
}

/** The rule as `serve --fault` writes it, for log lines. */
function ruleText(rule: Omit<CheckedRule, "label">): string {
  const parts: string[] = [];
  if (rule.method !== undefined) parts.push(rule.method);
  if (rule.after !== 0) parts.push(`after=${rule.after}`);
  if (rule.status !== undefined) {
    parts.push(`status=${statusName(rule.status)}`);
  }
  if (rule.delay !== 0) parts.push(`delay=${rule.delay}`);
  if (rule.drop !== undefined) parts.push(`drop=${rule.drop}`);
  if (rule.ratio !== 1) parts.push(`ratio=${rule.ratio}`);
  return parts.join(":");
}

/**
 * Checks one rule and fills in its defaults.
 *
 * @param rule The rule as given.
 * @param index Its position in the list, from 0.
 * @returns The checked rule.
 * @throws {TypeError} If the rule is not an object, has a field of the wrong kind or an
 * unknown field, has no effect, or has both `status` and `drop`.
 * @throws {RangeError} If a number is out of range.
 */
export function checkRule(rule: unknown, index: number): CheckedRule {
  const name = `Fault rule ${index + 1}`;
  if (typeof rule !== "object" || rule === null || Array.isArray(rule)) {
    throw new TypeError(`${name} must be an object: ${describeValue(rule)}`);
  }
  const fields = rule as Record<string, unknown>;
  for (const field of Object.keys(fields)) {
    if (!RULE_FIELDS.has(field)) {
      throw new TypeError(`${name} has an unknown field: ${field}`);
    }
  }
  const method = fields.method;
  if (
    method !== undefined &&
    (typeof method !== "string" || !METHODS.has(method))
  ) {
    throw new TypeError(
      `${name} method must be "Pow", "Sum" or "Sqrt": ${describeValue(method)}`,
    );
  }
  const after = checkNumber(fields, {
    field: "after",
    name,
    min: 0,
    max: MAX_UINT32,
    integer: true,
  }) ?? 0;
  const status = checkNumber(fields, {
    field: "status",
    name,
    min: 1,
    max: 16,
    integer: true,
  });
  const message = fields.message;
  if (message !== undefined && typeof message !== "string") {
    throw new TypeError(
      `${name} message must be a string: ${describeValue(message)}`,
    );
  }
  if (message !== undefined && status === undefined) {
    throw new TypeError(`${name} has a message but no status: ${message}`);
  }
  const delay = checkNumber(fields, {
    field: "delay",
    name,
    min: 0,
    max: MAX_TIMER_MS,
    integer: false,
  }) ?? 0;
  const drop = fields.drop;
  if (drop !== undefined && drop !== "stream" && drop !== "connection") {
    throw new TypeError(
      `${name} drop must be "stream" or "connection": ${describeValue(drop)}`,
    );
  }
  if (drop !== undefined && status !== undefined) {
    throw new TypeError(
      `${name} has both status and drop: a call ends one way (status=${status}, drop=${drop})`,
    );
  }
  if (
    status === undefined && drop === undefined && fields.delay === undefined
  ) {
    throw new TypeError(
      `${name} has no effect: give it status, delay or drop`,
    );
  }
  const ratio = checkNumber(fields, {
    field: "ratio",
    name,
    min: 0,
    max: 1,
    integer: false,
  }) ?? 1;
  const checked = {
    method: method as FaultMethod | undefined,
    after,
    status,
    message: message ?? DEFAULT_FAULT_MESSAGE,
    delay,
    drop: drop as "stream" | "connection" | undefined,
    ratio,
  };
  return { ...checked, label: `rule ${index + 1} (${ruleText(checked)})` };
}

/**
 * Checks a list of rules.
 *
 * @param rules The rules as given.
 * @returns The checked rules.
 * @throws {TypeError} If `rules` is not an array, or a rule is malformed.
 * @throws {RangeError} If a rule's number is out of range.
 */
export function checkRules(rules: unknown): CheckedRule[] {
  if (!Array.isArray(rules)) {
    throw new TypeError(
      `Faults must be an array of rules: ${describeValue(rules)}`,
    );
  }
  return rules.map(checkRule);
}

/**
 * Checks a fault seed.
 *
 * @param seed The seed as given.
 * @returns The seed.
 * @throws {TypeError} If it is not a number.
 * @throws {RangeError} If it is not an integer from 0 to 4,294,967,295.
 */
export function checkSeed(seed: unknown): number {
  if (typeof seed !== "number") {
    throw new TypeError(`Fault seed must be a number: ${describeValue(seed)}`);
  }
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_UINT32) {
    throw new RangeError(
      `Fault seed must be an integer from 0 to ${MAX_UINT32}: ${seed}`,
    );
  }
  return seed;
}
