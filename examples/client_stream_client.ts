/**
 * The article's client-streaming client (`client_stream_client.go`): streams 0 … 9 to
 * `stream.ClientStream/Sum` on 127.0.0.1:8081 and prints `sum: 45`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env=GRPC_* examples/client_stream_client.ts [--address 127.0.0.1:8081]
 * ```
 *
 * It exits 0 once it has the sum, and 1 with one `error: CODE_NAME: details` line when the
 * call fails (for example, when no server listens).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { sum } from "../mod.ts";

const USAGE = "Usage: client_stream_client.ts [--address HOST:PORT]";

async function main(args: string[]): Promise<number> {
  let address: string;
  try {
    ({ values: { address } } = parseArgs({
      args,
      options: { address: { type: "string", default: "127.0.0.1:8081" } },
    }));
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    console.error(USAGE);
    return 2;
  }
  try {
    const total = await sum([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], { address });
    console.log(`sum: ${total}`);
    return 0;
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
