/**
 * The streaming calls in flight, which a server's shutdown ends with a status of its choosing.
 *
 * Each call is added as it starts and removed as it ends, thousands of times a second: in a
 * `Map`, whose tables V8 rehashes in its old generation and leaves behind full of entries
 * (see `proto/http2/stream_map.ts`), every call's objects would outlive the young-generation
 * collections. Here a call holds a place in plain arrays, cleared when it ends and reused.
 *
 * @module
 */
import type * as grpc from "../internals/npm/grpc_js.ts";

/** Ends a call with `failure`. */
export type EndCall = (failure: grpc.StatusObject) => void;

/** A running call as a shutdown sees it: how to end it, and its name for the log. */
export interface RunningCall {
  /** Ends it. */
  end: EndCall;
  /** Its name, such as `Sum` or `Pow(3)`. */
  name: string;
}

/**
 * The calls in flight.
 *
 * @example
 * ```ts
 * import { RunningCalls } from "./running_calls.ts";
 *
 * const running = new RunningCalls();
 * const end = () => {};
 * const place = running.add(end, "Sum");
 * running.delete(place, end);
 * ```
 */
export class RunningCalls {
  #ends: (EndCall | undefined)[] = [];
  #names: string[] = [];
  #details: unknown[] = [];
  /** Places emptied, to fill before the arrays grow. */
  #free: number[] = [];
  #size = 0;

  /** How many calls are running. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds a call.
   *
   * @param end Ends it.
   * @param name Its method; with `detail`, its name is `name(detail)`, written only when a
   * shutdown logs it.
   * @param detail What tells it from the other calls of its method.
   * @returns Its place, to remove it with.
   */
  add(end: EndCall, name: string, detail?: unknown): number {
    const place = this.#free.pop() ?? this.#ends.length;
    this.#ends[place] = end;
    this.#names[place] = name;
    this.#details[place] = detail;
    this.#size++;
    return place;
  }

  /**
   * Removes the call at `place`, if it is still there: removing it twice does nothing, even
   * once another call has the place.
   *
   * @param place What {@linkcode RunningCalls.add} returned.
   * @param end The call's `end`, as added.
   */
  delete(place: number, end: EndCall): void {
    if (this.#ends[place] !== end) return;
    this.#ends[place] = undefined;
    this.#details[place] = undefined;
    this.#free.push(place);
    this.#size--;
  }

  /**
   * The running calls, in no particular order: a copy, which ending them does not change.
   *
   * @returns The calls.
   */
  list(): RunningCall[] {
    const calls: RunningCall[] = [];
    for (let place = 0; place < this.#ends.length; place++) {
      const end = this.#ends[place];
      if (end === undefined) continue;
      const detail = this.#details[place];
      const name = this.#names[place]!;
      calls.push({
        end,
        name: detail === undefined ? name : `${name}(${String(detail)})`,
      });
    }
    return calls;
  }
}
