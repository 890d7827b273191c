/**
 * `serve --fault RULE`: a fault rule (docs/faults.md) written on the command line, as
 * `[METHOD:]KEY=VALUE:KEY=VALUE…`, e.g. `Sum:after=3:status=UNAVAILABLE` or `Pow:delay=50`.
 *
 * @module
 */
import { type FaultMethod, type FaultRule, Status } from "../mod.ts";
import {
  checkRule,
  FAULT_METHODS,
  FAULT_RULE_KEYS,
} from "../services/fault_rules.ts";
import { UsageError } from "./args.ts";

const METHODS: readonly string[] = FAULT_METHODS;

/** A number the rule's check then puts in range; anything else is wrong as it stands. */
function numberIn(text: string): number {
  return /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i.test(text)
    ? Number(text)
    : NaN;
}

function statusIn(text: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  const code = (Status as Record<string, number>)[text.toUpperCase()];
  return code ?? NaN;
}

/**
 * Parses one `--fault` value into a checked rule.
 *
 * @param text The value of `--fault`.
 * @param usage The usage of `serve`, for the error.
 * @returns The rule, as `startServer({ faults })` takes it.
 * @throws {UsageError} If a part of the rule is wrong, naming the part.
 */
export function parseFaultRule(text: string, usage: string): FaultRule {
  function wrong(detail: string): never {
    throw new UsageError(
      `Fault rule ${JSON.stringify(text)}: ${detail}`,
      usage,
    );
  }
  const rule: {
    -readonly [Key in keyof FaultRule]: FaultRule[Key];
  } = {};
  let rest = text;
  const seen = new Set<string>();
  let first = true;
  while (rest !== "") {
    // `message=` takes the rest of the rule, colons and all.
    const messageStart = rest.startsWith("message=");
    const end = messageStart ? rest.length : rest.indexOf(":");
    const part = end === -1 ? rest : rest.slice(0, end);
    rest = end === -1 || end === rest.length ? "" : rest.slice(end + 1);
    const equals = part.indexOf("=");
    if (equals === -1) {
      if (first && METHODS.includes(part)) {
        rule.method = part as FaultMethod;
        first = false;
        continue;
      }
      wrong(
        first
          ? `${
            JSON.stringify(part)
          } is neither a method (Pow, Sum, Sqrt) nor KEY=VALUE`
          : `${JSON.stringify(part)} is not KEY=VALUE`,
      );
    }
    first = false;
    const key = part.slice(0, equals);
    const value = part.slice(equals + 1);
    if (!FAULT_RULE_KEYS.includes(key)) {
      wrong(
        `unknown key ${JSON.stringify(key)} (${FAULT_RULE_KEYS.join(", ")})`,
      );
    }
    if (seen.has(key)) wrong(`${key} given twice`);
    seen.add(key);
    if (value === "" && key !== "message") wrong(`${key} has no value`);
    switch (key) {
      case "after":
      case "delay":
      case "ratio": {
        const number = numberIn(value);
        if (Number.isNaN(number)) {
          wrong(`${key} must be a number: ${value}`);
        }
        rule[key] = number;
        break;
      }
      case "status": {
        const code = statusIn(value);
        if (Number.isNaN(code)) {
          wrong(
            `status must be a gRPC status name or code (UNAVAILABLE, 14): ${value}`,
          );
        }
        rule.status = code;
        break;
      }
      case "message":
        rule.message = value;
        break;
      case "drop":
        if (value !== "stream" && value !== "connection") {
          wrong(`drop must be stream or connection: ${value}`);
        }
        rule.drop = value;
        break;
    }
  }
  if (first) wrong("it is empty");
  try {
    checkRule(rule, 0);
  } catch (error) {
    if (!(error instanceof TypeError || error instanceof RangeError)) {
      throw error;
    }
    // The rule's check names it "Fault rule 1"; here the rule is named by its text.
    const detail = error.message.replace(/^Fault rule 1 /, "");
    wrong(detail.startsWith("has ") ? `it ${detail}` : detail);
  }
  return rule;
}
