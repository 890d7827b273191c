/**
 * The "what streaming saves" section: microseconds per item for a new connection per unary
 * call, unary calls on one connection, and one bidirectional stream (interactive and
 * pipelined), with no work and with 1 ms of work per item on the server.
 *
 * @module
 */
import { median } from "./figures.ts";
import { delay, log, runClient, ServerProcess } from "./processes.ts";
import type { Settings } from "./settings.ts";

/** How the items go: unary calls or one stream. */
export type ArticleMode =
  | "connection-per-call"
  | "shared-unary"
  | "stream-interactive"
  | "stream-pipelined";

/** The modes, in the order of the table's rows. */
export const ARTICLE_MODES: { mode: ArticleMode; label: string }[] = [
  { mode: "connection-per-call", label: "new connection per unary call" },
  { mode: "shared-unary", label: "unary calls on one shared connection" },
  {
    mode: "stream-interactive",
    label: "one bidirectional stream, send after each answer",
  },
  {
    mode: "stream-pipelined",
    label: "one bidirectional stream, pipelined",
  },
];

/** The runs of one mode under one amount of work. */
export interface ArticleCell {
  mode: ArticleMode;
  label: string;
  workMs: number;
  count: number;
  /** Microseconds per item, one per run that answered everything correctly. */
  runs: number[];
  medianMicroseconds: number | undefined;
  failures: string[];
  /** How the server ended when it died during or after this mode's runs. */
  serverExits: string[];
}

/** Runs the "what streaming saves" section. */
export async function measureArticle(
  settings: Settings,
): Promise<ArticleCell[]> {
  const conditions = [
    { workMs: 0, count: settings.articleCount },
    { workMs: 1, count: settings.articleWorkCount },
  ];
  const cells = conditions.flatMap(({ workMs, count }) =>
    ARTICLE_MODES.map(({ mode, label }): ArticleCell => ({
      mode,
      label,
      workMs,
      count,
      runs: [],
      medianMicroseconds: undefined,
      failures: [],
      serverExits: [],
    }))
  );
  for (let round = 1; round <= settings.repeat; round++) {
    for (const { workMs, count } of conditions) {
      let server: ServerProcess | undefined;
      try {
        for (const { mode } of ARTICLE_MODES) {
          if (server === undefined || !server.alive) {
            server = workMs === 0
              ? await ServerProcess.start("Our server", "our_server.ts")
              : await ServerProcess.start("Work server", "work_server.ts", [
                "--work",
                String(workMs),
              ]);
          }
          const result = await runClient(
            "article_client.ts",
            [mode, server.address, "--count", String(count)],
          );
          const cell = cells.find((candidate) =>
            candidate.mode === mode && candidate.workMs === workMs
          )!;
          if (result.ok) {
            cell.runs.push(result.seconds * 1e6 / count);
          } else {
            cell.failures.push(result.error ?? "Wrong answers");
          }
          // A server that died is replaced before the next mode; the death is reported.
          await delay(300);
          const exit = server.describeExit();
          if (exit !== undefined) {
            cell.serverExits.push(exit);
            await server.stop();
          }
          log(
            `Article run ${round}/${settings.repeat}, ${mode}, ${workMs} ms work: ${
              result.ok
                ? `${(result.seconds * 1e6 / count).toFixed(1)} µs per item`
                : `FAILED (${result.error})`
            }`,
          );
        }
      } finally {
        await server?.stop();
      }
    }
  }
  for (const cell of cells) cell.medianMicroseconds = median(cell.runs);
  return cells;
}
