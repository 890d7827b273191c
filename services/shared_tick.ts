/**
 * `process.nextTick` for many callbacks at the cost of one. Under Deno each `nextTick` makes a
 * tick object and asks for an async id (an op), and a short call paid five: the stream's
 * `'end'`, `'finish'` and `'close'`, its call's `'cancelled'`, and a resumed read. Callbacks
 * queued here run in order, in one `nextTick` queued with the first of them; one queued while
 * they run joins the same run, as a `nextTick` queued from a `nextTick` runs before any I/O.
 * A callback queued here runs before the `nextTick`s of other code queued after the first of
 * its run, which no caller here tells apart: each only needs its callback to run after the
 * code that queued it.
 *
 * @module
 */
import process from "node:process";

/** The callbacks waiting, each followed by its argument. */
const queue: unknown[] = [];

/** Where the run has reached in {@linkcode queue}; -1 when no `nextTick` is queued. */
let next = -1;

/**
 * Runs `callback(argument)` on the next tick, as `process.nextTick(callback, argument)` does.
 *
 * @param callback What to run.
 * @param argument What it is given.
 */
export function onNextTick<Argument>(
  callback: (argument: Argument) => void,
  argument: Argument,
): void {
  queue.push(callback, argument);
  if (next === -1) {
    next = 0;
    process.nextTick(runQueued);
  }
}

function runQueued(): void {
  try {
    while (next < queue.length) {
      const callback = queue[next] as (argument: unknown) => void;
      const argument = queue[next + 1];
      queue[next] = queue[next + 1] = undefined;
      next += 2;
      callback(argument);
    }
  } finally {
    // A callback that threw is reported as a `nextTick`'s would be; the rest still run.
    if (next < queue.length) process.nextTick(runQueued);
    else {
      queue.length = 0;
      next = -1;
    }
  }
}
