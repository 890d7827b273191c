/**
 * The benchmark's "our server": `startServer` from `mod.ts` on a free port of 127.0.0.1,
 * quiet, serving until its stdin ends.
 *
 * Run: `deno run --allow-net=127.0.0.1 --allow-env=GRPC_* tests/bench/our_server.ts`
 *
 * @module
 */
import { startServer } from "../../mod.ts";
import { announcePort, stdinClosed } from "./common.ts";

// Calls in flight when the runner asks to stop are benchmark leftovers, not work to finish.
await using server = await startServer({ port: 0, gracePeriod: 0 });
announcePort(server.port);
await stdinClosed();
