/**
 * The client's deadline timer, shared by both transports.
 *
 * @module
 */
import { MAX_TIMER_MS } from "../proto/limits.ts";

/** A running deadline timer. */
export interface DeadlineTimer {
  /** Stops it; `onExpired` will not run. */
  clear(): void;
}

/**
 * Runs `onExpired` at `deadline`. A timer cannot wait longer than 2^31 - 1 ms (it would fire
 * at once), so a far deadline waits in steps.
 *
 * @param deadline When, in epoch milliseconds.
 * @param onExpired What to run then.
 * @returns The timer, to clear when the call ends first.
 */
export function startDeadlineTimer(
  deadline: number,
  onExpired: () => void,
): DeadlineTimer {
  let timer: ReturnType<typeof setTimeout>;
  function arm(): void {
    const remaining = Math.max(0, deadline - Date.now());
    timer = setTimeout(() => {
      if (Date.now() < deadline) arm();
      else onExpired();
    }, Math.min(remaining, MAX_TIMER_MS));
  }
  arm();
  return { clear: () => clearTimeout(timer) };
}
