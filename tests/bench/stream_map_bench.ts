/**
 * What a connection's stream table costs per frame when the peer picks its stream
 * identifiers to collide: 2,000 streams opened, each looked up ten times, then closed, with
 * identifiers one after another (as clients send them) and 2^20 apart (all in one slot under
 * a hash the peer could predict), beside a `Map` of the same. The two `StreamMap` rows stay
 * within a small factor of each other; a predictable hash made the second about 14x slower.
 *
 * Run: `deno bench tests/bench/stream_map_bench.ts`
 *
 * @module
 */
import { StreamMap } from "../../proto/http2/stream_map.ts";

const STREAMS = 2_000;
const SEQUENTIAL = Array.from({ length: STREAMS }, (_, index) => 1 + 2 * index);
const COLLIDING = Array.from(
  { length: STREAMS },
  (_, index) => 1 + index * 2 ** 20,
);

/** The operations a table needs here. */
interface Table {
  set(id: number, value: number): unknown;
  get(id: number): number | undefined;
  delete(id: number): unknown;
}

function churn(table: Table, ids: readonly number[]): number {
  for (const id of ids) table.set(id, id);
  let sum = 0;
  for (let round = 0; round < 10; round++) {
    for (const id of ids) sum += table.get(id)!;
  }
  for (const id of ids) table.delete(id);
  return sum;
}

Deno.bench("StreamMap, identifiers one after another", { group: "ids" }, () => {
  churn(new StreamMap<number>(), SEQUENTIAL);
});
Deno.bench("StreamMap, identifiers 2^20 apart", { group: "ids" }, () => {
  churn(new StreamMap<number>(), COLLIDING);
});
Deno.bench("Map, identifiers one after another", {
  group: "ids",
  baseline: true,
}, () => {
  churn(new Map<number, number>(), SEQUENTIAL);
});
Deno.bench("Map, identifiers 2^20 apart", { group: "ids" }, () => {
  churn(new Map<number, number>(), COLLIDING);
});
