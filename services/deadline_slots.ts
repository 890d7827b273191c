/**
 * Call deadlines on few timers. A server with a deadline on every call (grpc-go's clients
 * set one on each) would start and clear a timer per call, which costs a short call about a
 * tenth of its time under Deno; here every deadline falls into a 10 ms slot, and each slot
 * has one timer for all the calls in it. A deadline fires at the end of its slot: never early,
 * at most 10 ms late, well within what a deadline means to a caller.
 *
 * Short calls end within their slot, and the next calls to arrive usually fall into the same
 * one (the calls of a client mostly share one timeout): the slot started last keeps its timer
 * once its calls have ended, unreferenced, rather than clearing it and starting another for
 * the next call. Any other slot that empties clears its timer, and so does the kept one once
 * another slot starts, so at most one timer waits with no deadline in it.
 *
 * @module
 */
import { clearTimeout, setTimeout } from "node:timers";

/** The width of a slot, in milliseconds. */
const SLOT_MS = 10;

/** A slot's timer and the expirations it runs. */
interface Slot {
  readonly timer: ReturnType<typeof setTimeout>;
  readonly expirations: Set<() => void>;
}

const slots = new Map<number, Slot>();

/** The index of the slot started last. */
let latestIndex = -Infinity;

/**
 * Starts slot `index`'s timer. Made here, not in {@linkcode atDeadline}: a closure there would
 * share its scope with the first call's `expire`, and the timer would keep that call alive.
 */
function startSlot(index: number, now: number): Slot {
  const expirations = new Set<() => void>();
  const timer = setTimeout(() => {
    slots.delete(index);
    for (const each of expirations) each();
  }, index * SLOT_MS - now);
  return { timer, expirations };
}

function clearSlot(index: number, slot: Slot): void {
  clearTimeout(slot.timer);
  slots.delete(index);
}

/**
 * Runs `expire` once `timeoutMs` have passed, unless cancelled first.
 *
 * @param timeoutMs The timeout, in milliseconds; 0 or less expires in the next slot.
 * @param expire Run when the deadline passes.
 * @returns Cancels the deadline; calling it again, or after it fired, does nothing.
 */
export function atDeadline(timeoutMs: number, expire: () => void): () => void {
  const now = performance.now();
  const index = Math.ceil((now + Math.max(0, timeoutMs)) / SLOT_MS);
  let slot = slots.get(index);
  if (slot === undefined) {
    slot = startSlot(index, now);
    slots.set(index, slot);
    const latest = slots.get(latestIndex);
    if (latest !== undefined && latest.expirations.size === 0) {
      clearSlot(latestIndex, latest);
    }
    latestIndex = index;
  } else if (slot.expirations.size === 0) {
    slot.timer.ref();
  }
  const joined = slot;
  joined.expirations.add(expire);
  return () => {
    const { expirations } = joined;
    if (!expirations.delete(expire) || expirations.size > 0) return;
    if (slots.get(index) !== joined) return;
    // An empty timer holds no process open: only a deadline does.
    if (index === latestIndex) joined.timer.unref();
    else clearSlot(index, joined);
  };
}

/**
 * How many slots have a deadline in them.
 *
 * @returns The count.
 */
export function openSlots(): number {
  let open = 0;
  for (const slot of slots.values()) if (slot.expirations.size > 0) open++;
  return open;
}

/**
 * How many timers the slots have running: those of {@linkcode openSlots}, and at most one
 * more, the latest slot's after its deadlines ended.
 *
 * @returns The count.
 */
export function slotTimers(): number {
  return slots.size;
}
