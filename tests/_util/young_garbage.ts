/**
 * Measures whether a collection of the call path lets go of what it removes before V8's next
 * young-generation collection, in a subprocess with `--expose-gc`: the collection is moved to
 * the old generation first (as in a server that has run a while), then 20,000 objects of about
 * a kilobyte each go through it, 100 at a time, with a young collection every 500. Whatever
 * the collection still reaches after removal is promoted, and the old generation grows by it:
 * about 8 MB for a `Map`, whose old tables keep their entries (see
 * `proto/http2/stream_map.ts`), next to nothing for a collection that lets go.
 *
 * @module
 */
import v8 from "node:v8";
import { RunningCalls } from "../../services/running_calls.ts";
import { StreamMap } from "../../proto/http2/stream_map.ts";

/** A collection under test: add an object under a key, remove it again. */
interface Churned {
  add(key: number, value: object): unknown;
  remove(entry: { key: number; ticket: unknown; value: object }): void;
}

/** What each kind measures. */
const KINDS: Record<string, () => Churned> = {
  map(): Churned {
    const map = new Map<number, object>();
    return {
      add: (key, value) => map.set(key, value),
      remove: ({ key }) => map.delete(key),
    };
  },
  stream_map(): Churned {
    const map = new StreamMap<object>();
    return {
      add: (key, value) => map.set(key, value),
      remove: ({ key }) => map.delete(key),
    };
  },
  running_calls(): Churned {
    const running = new RunningCalls();
    return {
      add: (_key, value) => running.add(value as () => void, "Sum"),
      remove: ({ ticket, value }) =>
        running.delete(ticket as number, value as () => void),
    };
  },
};

function oldSpaceBytes(): number {
  return v8.getHeapSpaceStatistics().find((space) =>
    space.space_name === "old_space"
  )!.space_used_size;
}

/** Runs one kind in this process (the subprocess); prints the old generation's growth. */
function measure(kind: string): void {
  const gc = (globalThis as unknown as { gc(options?: object): void }).gc;
  const collection = KINDS[kind]!();
  // Into the old generation, with some entries that come and go, as after a while of serving.
  for (let key = 1; key < 200; key += 2) collection.add(key, {});
  gc();
  gc();
  const inFlight: { key: number; ticket: unknown; value: object }[] = [];
  const before = oldSpaceBytes();
  for (let round = 0; round < 20_000; round++) {
    const key = 1_001 + 2 * round;
    // A call's objects: closures with some memory behind them.
    const memory = new Array(120).fill(round);
    const value = () => memory;
    inFlight.push({ key, ticket: collection.add(key, value), value });
    if (inFlight.length > 100) {
      const done = inFlight.shift()!;
      collection.remove(done);
    }
    if (round % 500 === 499) gc({ type: "minor" });
  }
  gc({ type: "minor" });
  gc({ type: "minor" });
  console.log(JSON.stringify({ stableBytes: oldSpaceBytes() - before }));
}

/**
 * Measures `kind` in a subprocess.
 *
 * @param kind `map` (the control), `stream_map` or `running_calls`.
 * @returns How many bytes the old generation grew by while 20 MB went through.
 */
export async function youngGarbageCheck(
  kind: "map" | "stream_map" | "running_calls",
): Promise<{ stableBytes: number }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--v8-flags=--expose-gc",
      new URL(import.meta.url).pathname,
      kind,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) {
    throw new Error(
      `Measuring ${kind} failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
  return JSON.parse(text);
}

if (import.meta.main) measure(Deno.args[0]!);
