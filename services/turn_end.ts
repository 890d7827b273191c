/**
 * Work that waits for the end of the current turn of the event loop, for every call of a turn
 * behind one `setImmediate`: under Deno each `setImmediate` costs an `Immediate` and an async
 * id, which short calls paid once or twice each.
 *
 * @module
 */
import { setImmediate } from "node:timers";

/** What runs at the end of this turn, in the order it was asked for. */
let waiting: (() => void)[] = [];

/**
 * Runs `task` once the current turn of the event loop is over, after the tasks asked for
 * before it; a task asked for while they run waits for the next turn.
 *
 * @param task What to run.
 */
export function atTurnEnd(task: () => void): void {
  if (waiting.length === 0) setImmediate(runWaiting);
  waiting.push(task);
}

function runWaiting(): void {
  const tasks = waiting;
  waiting = [];
  let next = 0;
  try {
    while (next < tasks.length) tasks[next++]!();
  } finally {
    // A task that threw is reported as an `Immediate`'s would be; the others still run (a
    // call whose flush waited behind it would hang), first at the end of the next turn.
    if (next < tasks.length) {
      if (waiting.length === 0) setImmediate(runWaiting);
      waiting = tasks.slice(next).concat(waiting);
    }
  }
}
