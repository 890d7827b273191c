/**
 * grpc-js's logger, as its own modules see it. grpc-js exports `setLogger` but not the logger
 * in place, so a line grpc-js logs on its own can only be held back through its private
 * `logging` module: the one line is the `E No address added out of total N resolved` of a
 * failed bind, logged before the bind calls back with the same failure, which the server
 * reports in its own words. When the module or its `getLogger` is gone, the line is printed,
 * as it would have been.
 *
 * @module
 */
import * as logging from "./npm/grpc_js_logging.ts";

/** What grpc-js's logger offers: `console`'s three methods, each optional. */
type GrpcJsLogger = Partial<
  Pick<Console, "error" | "info" | "debug">
>;

/** The start of the line grpc-js logs for a bind that added no address. */
const BIND_FAILURE_LINE = "No address added out of total ";

/**
 * Runs `bind` with grpc-js's line for a failed bind held back, every other line passing to the
 * logger in place (the user's own, if they set one).
 *
 * @param bind The bind, which settles once grpc-js has called back.
 * @returns What `bind` returns.
 */
export async function withoutBindFailureLine<T>(
  bind: () => Promise<T>,
): Promise<T> {
  const view = logging as {
    getLogger?: () => GrpcJsLogger;
    setLogger?: (logger: GrpcJsLogger) => void;
  };
  if (
    typeof view.getLogger !== "function" || typeof view.setLogger !== "function"
  ) {
    return await bind();
  }
  const inPlace = view.getLogger();
  const filtering: GrpcJsLogger = {
    error(message?: unknown, ...rest: unknown[]): void {
      if (
        typeof message === "string" && message.startsWith(BIND_FAILURE_LINE)
      ) {
        return;
      }
      (inPlace.error ?? console.error).call(inPlace, message, ...rest);
    },
    info(message?: unknown, ...rest: unknown[]): void {
      (inPlace.info ?? inPlace.error)?.call(inPlace, message, ...rest);
    },
    debug(message?: unknown, ...rest: unknown[]): void {
      (inPlace.debug ?? inPlace.error)?.call(inPlace, message, ...rest);
    },
  };
  view.setLogger(filtering);
  try {
    return await bind();
  } finally {
    // A logger the user set meanwhile stays theirs.
    if (view.getLogger() === filtering) view.setLogger(inPlace);
  }
}
