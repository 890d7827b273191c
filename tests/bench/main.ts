/**
 * The benchmark of issue 4: how fast this module's client and server move the article's three
 * streams, against what plain grpc-js gives; how much memory a server holds for a slow reader;
 * and what streaming saves per item over unary calls. Every client and server runs as a
 * process of its own on 127.0.0.1, started with `Deno.execPath()`; the programs are in
 * `tests/bench/`, beside this runner and its sections (`throughput.ts`, `slow_reader.ts`,
 * `article.ts`, `limit.ts`), which `tables.ts` and `limit_tables.ts` render.
 *
 * Run it with `deno task bench` (a table on stdout), `deno task bench --json` (JSON on
 * stdout, the tables on stderr after the progress), or `--quick` for smaller counts;
 * `--only limit` runs the grpc-go section alone. Progress goes to stderr. It exits with 1
 * when a run gives a wrong answer or fails, and with 0 otherwise (a plain grpc-js run that
 * stalls is a measurement, not a failure).
 *
 * Memory is read from `/proc/<pid>/status` (`VmHWM`, `VmRSS`) through `cat`, because Deno
 * asks for `--allow-all` to read `/proc` itself. So the runner needs only `--allow-run`: for
 * `Deno.execPath()` (which names the real binary, so `--allow-run=deno` would not match it),
 * `cat`, and `git` (to name the commit measured); each program it starts gets
 * `--allow-net=127.0.0.1` and the `--allow-env` variables grpc-js reads.
 *
 * @module
 */
import { measureArticle } from "./article.ts";
import { callsHaveFailures, type CallsReport, measureCalls } from "./calls.ts";
import { renderCalls } from "./calls_tables.ts";
import {
  measureWarmup,
  renderWarmup,
  type WarmupCell,
  warmupHasFailures,
} from "./warmup.ts";
import { limitHasFailures, type LimitReport, measureLimit } from "./limit.ts";
import { buildGoPrograms } from "./limit_servers.ts";
import { renderLimit } from "./limit_tables.ts";
import { describeCode, describeMachine, loadAverage } from "./machine.ts";
import { endChildren, log } from "./processes.ts";
import { evaluateTargets, hasFailures, type Report } from "./report.ts";
import { readSettings } from "./settings.ts";
import { measureSlowReader } from "./slow_reader.ts";
import { measureThroughput } from "./throughput.ts";
import { renderReport } from "./tables.ts";

async function main(): Promise<number> {
  const settings = readSettings(Deno.args);
  const started = performance.now();
  const machine = await describeMachine();
  log(
    `Benchmarking on ${machine.cores} cores, Deno ${machine.deno}, ${machine.os}`,
  );
  const all = settings.only === undefined;
  const throughput = all ? await measureThroughput(settings) : [];
  const slowReader = all
    ? [
      await measureSlowReader("ours", settings),
      await measureSlowReader("baseline", settings),
    ]
    : [];
  const article = all ? await measureArticle(settings) : [];
  const limitSettings = {
    quick: settings.quick,
    repeat: settings.repeat,
    powCount: settings.quick ? 200_000 : 1_000_000,
    sumCount: settings.quick ? 200_000 : 1_000_000,
    sqrtCount: settings.quick ? 50_000 : 200_000,
    shortSeconds: settings.shortSeconds,
  };
  const noLimit: LimitReport = { streams: [], short: [] };
  const limit = settings.only === "calls" || settings.only === "warmup"
    ? noLimit
    : await measureLimit(limitSettings);
  const calls: CallsReport = settings.only === "limit" ||
      settings.only === "warmup"
    ? { servers: [], clients: [] }
    : await measureCalls({
      repeat: settings.repeat,
      seconds: settings.shortSeconds,
      connections: [1, 4],
    }, await buildGoPrograms());
  const warmupGo = all || settings.only === "warmup"
    ? await buildGoPrograms()
    : undefined;
  const warmup: WarmupCell[] = warmupGo === undefined || "missing" in warmupGo
    ? []
    : await measureWarmup({ repeat: settings.repeat }, warmupGo);
  machine.loadAtEnd = await loadAverage();
  const codeAtEnd = await describeCode();
  if (codeAtEnd !== machine.code) {
    machine.code += `; WARNING: by the end it was ${codeAtEnd}`;
  }
  const partial = { machine, settings, throughput, slowReader, article };
  const report: Report = {
    ...partial,
    targets: all ? evaluateTargets(partial) : [],
    limit,
    calls,
    warmup,
    seconds: (performance.now() - started) / 1000,
  };
  const tables = [
    ...(all ? [renderReport(report)] : []),
    ...(all || settings.only === "limit"
      ? [renderLimit(limit, limitSettings)]
      : []),
    ...(all || settings.only === "calls" ? [renderCalls(calls)] : []),
    ...(warmup.length > 0 ? [renderWarmup(warmup, settings.repeat)] : []),
  ].join("\n\n");
  if (settings.json) {
    console.log(JSON.stringify(report, null, 2));
    // One run gives both: the JSON to keep, and the tables to read after the progress lines.
    console.error(tables);
  } else console.log(tables);
  return hasFailures(report) || limitHasFailures(limit) ||
      callsHaveFailures(calls) || warmupHasFailures(warmup)
    ? 1
    : 0;
}

// An interrupted benchmark must not leave servers behind.
function onInterrupt(): void {
  endChildren();
  Deno.exit(130);
}

if (import.meta.main) {
  Deno.addSignalListener("SIGINT", onInterrupt);
  let code = 1;
  try {
    code = await main();
  } finally {
    endChildren();
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
  Deno.exit(code);
}
